"""One timed item: a pass of one (group, backend), prepared, checked, timed and recorded through the one path.

Groups (opbench.measure.order): the cases a suite compares form a group, timed together: one item per (group,
backend, pass) times its members round-robin in one window, call by call (opbench.measure.window), and each member's
samples land in its own Result, with the window's name. A case in no comparison is a group of one: its item per
(case, backend, pass) is timed by pytest-benchmark's own calibrated loop.

Passes (Suite.passes, or --opbench-passes N for every suite): every (group, backend) runs N times, in interleaved
order: pass 1 of every selected (group, backend), then pass 2, and so on; each item is one pass, timed (and warmed)
afresh, and the samples of every pass land in one Result per case. Within a pass the groups run in Plan.run_order
(per backend), reversed in every other pass.
A case is prepared (loaded from the export cache, compiled, checked) afresh in every pass, so that its instance's
place in memory varies between passes, and profiled after its last (a cold case, Case.weights: its N copies, each
pass, opbench.measure.cold). A suite scheduled `by_backend` (Suite.schedule: the whole models) runs its passes
backend by backend instead, after the interleaved suites, so that one backend's runtime at a time holds its cases'
memory; a selected suite that names it in Suite.same_window (the block table) runs in the same passes
(opbench.measure.order.sequence).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from opbench.backends import Backend, RunConfig, get_backend, unavailable_reason
from opbench.case import Case
from opbench.errors import BackendUnavailable
from opbench.measure import path as measuring
from opbench.measure import window
from opbench.measure.export_ahead import Job
from opbench.measure.order import Group, Slot, sequence
from opbench.measure.profile_pass import profile_pass
from opbench.measure.session import RunState
from opbench.results import Result, Stats
from opbench.suite import get_suite


@dataclass(frozen=True)
class CaseRun:
    """One pass of one (group, backend) pair of the parametrization; measure() is all a case module calls."""

    group: Group
    backend: str
    state: RunState = field(repr=False, compare=False)
    pass_index: int = 1  # 1-based

    @property
    def case(self) -> Case:
        """The first member: where the run order puts the item."""
        return self.group.members[0]

    @property
    def id(self) -> str:
        return f"{self.group.id}-{self.backend}" + (f"-pass{self.pass_index}" if self.passes > 1 else "")

    @property
    def passes(self) -> int:
        return self.state.passes_for(self.case.suite)

    def measure(self, benchmark) -> None:
        try:
            backend = get_backend(self.backend)
        except BackendUnavailable as exc:
            self.state.unavailable[self.backend] = str(exc)
            pytest.skip(str(exc))
        self._label(benchmark, backend)
        self.state.software.update(backend.versions())
        earlier = [r for c in self.group.members if (r := self.state.results.get((c.id, self.backend))) is not None]
        gone = {r.case: r for r in earlier if r.status != "ok"}  # unsupported or failed in an earlier pass
        members = [c for c in self.group.members if c.id not in gone]
        if not members:
            pytest.skip(
                "; ".join(f"{r.status} on {backend.name} in an earlier pass: {r.reason}" for r in gone.values())
            )
        outcomes = [self._prepare(c, backend) for c in members]
        checks = {c.id: o.check.to_json() for c, o in zip(members, outcomes, strict=True) if o.check}
        if checks and len(self.group.members) == 1:
            benchmark.extra_info["check"] = checks[self.case.id]
        elif checks:
            benchmark.extra_info["checks"] = checks
        outcomes, samples = self._time(members, outcomes, backend, benchmark)
        for case, outcome, timed in zip(members, outcomes, samples, strict=True):
            key, last = (case.id, self.backend), self.pass_index == self.passes
            if timed and outcome.status == "ok":
                self.state.samples.setdefault(key, []).append(timed)
            self.state.record(self._record(case, backend, outcome, last), timed=not benchmark.disabled)
        problems = {c.id: o for c, o in zip(members, outcomes, strict=True) if o.status != "ok"}
        if failed := [f"{case}: {o.reason}" for case, o in problems.items() if o.status == "failed"]:
            pytest.fail(
                "; ".join(failed) if len(self.group.members) > 1 else problems[self.case.id].reason, pytrace=False
            )
        if len(problems) == len(members):
            pytest.skip("; ".join(f"unsupported on {backend.name}: {o.reason}" for o in problems.values()))

    def _prepare(self, case: Case, backend: Backend) -> measuring.Outcome:
        """The case prepared afresh for this pass, so that where its instance lands in memory varies from pass to
        pass and enters the spread of the passes (kept one instance for the run, two identical cases differed by up
        to 0.8% from run to run, with intervals of a run that did not cover it); recorded with its first
        preparation's export time and notes."""
        outcome = measuring.prepare(case, backend, self.config(case))
        key = (case.id, self.backend)
        if outcome.prepared is not None and key not in self.state.preparations:
            self.state.preparations[key] = measuring.Preparation.of(outcome.prepared)
        first = self.state.preparations.get(key)
        return first.onto(outcome) if first else outcome

    def _label(self, benchmark, backend: Backend) -> None:
        """pytest-benchmark's group, name and extra_info of the item: its case, or its group and the members."""
        passes, members = self.passes, self.group.members
        benchmark.group = " / ".join(dict.fromkeys(c.group for c in members))
        which = f" pass {self.pass_index}/{passes}" if passes > 1 else ""
        benchmark.name = f"{self.group.id} [{self.backend}]{which}"
        benchmark.extra_info.update(
            case=self.case.id,
            backend=backend.name,
            threads=self.state.config.threads,
            precision=backend.precision,
            macs=sum(c.macs or 0 for c in members),  # a broken member counts none
            **({"pass": self.pass_index} if passes > 1 else {}),
            **(
                {"members": [c.id for c in members], "window": self.group.window(self.backend)}
                if len(members) > 1
                else {}
            ),
        )

    def _time(
        self, members: list[Case], outcomes: list[measuring.Outcome], backend: Backend, benchmark
    ) -> tuple[list[measuring.Outcome], list[tuple[list[float], int] | None]]:
        """A group of one timed by pytest-benchmark's calibrated loop, as before groups; a larger group in one window
        (window.time_group). Each member's outcome and samples with calls per sample (None: nothing timed)."""
        if len(self.group.members) == 1:
            (outcome,) = outcomes
            if outcome.status != "ok":
                return outcomes, [None]
            return [measuring.time_pass(outcome, backend, benchmark)], [timed_samples(benchmark)]
        cost = 0.0 if benchmark.disabled else self.state.call_cost(backend)
        outcomes, samples = window.time_group(outcomes, backend, benchmark, cost)
        if benchmark.disabled:
            return outcomes, [None] * len(outcomes)
        benchmark.extra_info["medians_s"] = {
            c.id: statistics.median(s) for c, s in zip(members, samples, strict=True) if s
        }
        return outcomes, [(s, 1) if s else None for s in samples]

    def _record(self, case: Case, backend: Backend, outcome: measuring.Outcome, last: bool) -> Result:
        """The result of every pass so far; a failed case keeps no partial timings; profiled after its last pass,
        against that pass's median."""
        passes = self.state.samples.get((case.id, self.backend)) if outcome.status == "ok" else None
        grouped = self.group.window(self.backend) if len(self.group.members) > 1 else None
        stats = Stats.from_passes([p for p, _ in passes], max(n for _, n in passes), grouped) if passes else None
        profiled = None
        if stats and last and self.profiled(case):
            profiled = profile_pass(case, backend, self.config(case), statistics.median(passes[-1][0]))
        return measuring.to_result(case, backend, outcome, self.config(case), stats, profiled)

    @staticmethod
    def profiled(case: Case) -> bool:
        return get_suite(case.suite).profile

    def config(self, case: Case) -> RunConfig:
        return dataclasses.replace(self.state.config, profiled=self.profiled(case))


def timed_samples(benchmark) -> tuple[list[float], int] | None:
    """This pass's raw per-call samples and calls per round, read through pytest-benchmark's own export (what
    --benchmark-json writes); None when nothing was timed (--benchmark-disable, or no call reached the timer)."""
    metadata = getattr(benchmark, "stats", None)
    if not metadata:
        return None
    timed = metadata.as_dict(include_data=True)["stats"]
    return list(timed["data"]), timed["iterations"]


def run_order(runs: Sequence[CaseRun], grid: str) -> list[int]:
    """The order the runs go in, as indices into `runs` (opbench.measure.order.sequence): pass after pass, by suite
    (as given), backend and the suite's Plan.run_order; suites scheduled by_backend (Suite.schedule) last, backend by
    backend, with the suites selected beside them that name them in Suite.same_window."""
    keys = list(dict.fromkeys(run.case.suite for run in runs))
    rank = {key: {c.id: i for i, c in enumerate(get_suite(key).plan(grid).run_order())} for key in keys}
    slots = [Slot(r.case.suite, r.backend, r.pass_index, rank[r.case.suite].get(r.case.id, -1)) for r in runs]
    return sequence(slots, {key: get_suite(key) for key in keys}, grid)


def export_jobs(runs: list[CaseRun]) -> list[Job]:
    """A job per case with the backends that have something to export for it (available ones), largest first."""
    names = dict.fromkeys(run.backend for run in runs)
    backends = {n for n in names if unavailable_reason(n) is None and type(get_backend(n)).export is not Backend.export}
    by_case: dict[str, tuple[Case, CaseRun, list[str]]] = {}
    for run in runs:
        if run.backend in backends and run.pass_index == 1:
            for case in (member.hot for member in run.group.members):  # a cold case prepares its hot twin
                if not case.problem:  # a broken case fails in the run
                    by_case.setdefault(case.id, (case, run, []))[2].append(run.backend)
    largest = sorted(by_case.values(), key=lambda job: -job[0].param_count)
    return [Job(case.id, case.suite, tuple(names), run.config(case)) for case, run, names in largest]
