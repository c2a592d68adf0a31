"""The opbench pytest plugin: options, case x backend x pass parametrization, the order items run in, and one
result file per run.

Timing is pytest-benchmark's; this plugin only chooses what to time, checks it first (opbench.measure.path),
labels it (group, extra_info, machine info) and writes what was measured to device_results/.

Groups (opbench.measure.order): the cases a suite compares form a group, timed together: one item per (group,
backend, pass) times its members round-robin in one window, call by call (opbench.measure.window), and each member's
samples land in its own Result, with the window's name. A case in no comparison is a group of one: its item per
(case, backend, pass) is timed by pytest-benchmark's own calibrated loop, as before groups.

Passes (--opbench-passes N): every (group, backend) runs N times, in interleaved order: pass 1 of every selected
(group, backend), then pass 2, and so on; each item is one pass, timed (and warmed) afresh, and the samples of every
pass land in one Result per case. Within a pass the groups run in Plan.run_order (per backend), reversed in every
other pass.
A case is prepared (loaded from the export cache, compiled, checked) afresh in every pass, so that its instance's
place in memory varies between passes, and profiled after its last (a cold case, Case.weights: its N copies, each
pass, opbench.measure.cold). A suite scheduled `by_backend` (Suite.schedule: the whole models) runs its passes
backend by backend instead, after the interleaved suites, so that one backend's runtime at a time holds its cases'
memory; a selected suite that names it in Suite.same_window (the block table) runs in the same passes
(opbench.measure.order.sequence). Before the first item,
a timed run exports every selected case in worker processes (opbench.measure.export_ahead), so that a cold run's
exports use every core.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import statistics
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from opbench import options
from opbench.backends import Backend, RunConfig, get_backend, parse_backends, unavailable_reason
from opbench.cache import DEFAULT_ROOT, ArtifactCache
from opbench.case import Case
from opbench.errors import BackendUnavailable, OpbenchError
from opbench.files import check_folder
from opbench.measure import allocator, cold, window
from opbench.measure import path as measuring
from opbench.measure.export_ahead import Job, export_ahead
from opbench.measure.order import Group, Slot, groups, sequence
from opbench.measure.profile_pass import profile_pass
from opbench.results import (
    DEFAULT_DIR,
    Journal,
    JournalError,
    Result,
    Stats,
    device_info,
    new_run,
    slugify,
    software_versions,
    write_run,
)  # fmt: skip
from opbench.shapes import GRIDS
from opbench.suite import builtin_suites, floor_case, get_suite, parse_suites, select_cases

STATE = pytest.StashKey["RunState"]()
EXPORT_WORKERS = 4  # the default's cap: a worker lowering a large model takes several GB


@dataclass
class RunState:
    backends: list[str]
    config: RunConfig
    grid: str
    pattern: str | None
    suites: list[str] | None  # None: every suite
    device_name: str | None
    results_dir: str
    protocol: dict = field(default_factory=dict)
    passes: int = 1  # 1 when nothing is timed (--benchmark-disable)
    results: dict[tuple[str, str], Result] = field(default_factory=dict)  # (case, backend) -> result, all passes
    samples: dict[tuple[str, str], list[list[float]]] = field(default_factory=dict)  # the samples of each pass
    preparations: dict[tuple[str, str], measuring.Preparation] = field(default_factory=dict)  # the first pass's
    call_costs: dict[str, float | None] = field(default_factory=dict)  # backend -> what timing one call costs
    journal: Journal | None = None  # the run written as it goes, so a killed run keeps what it finished
    unavailable: dict[str, str] = field(default_factory=dict)
    software: dict[str, str] = field(default_factory=dict)
    written: str | None = None
    not_written: str | None = None  # why the result file could not be written (the journal keeps the results)
    report: str | None = None  # the path to render the report to (--opbench-report), then what happened
    only_available: bool = False  # 'all': drop the backends that cannot run here, with their reason

    def record(self, result: Result, timed: bool) -> None:
        """Keep the result (every pass so far) and, in a timed run, journal it at once (the run's header first, on
        its first result; a later line of the same case and backend replaces the earlier one)."""
        self.results[(result.case, result.backend)] = result
        if not timed:
            return
        if self.journal is None:
            header = new_run(device_info(self.device_name), [], "pytest-benchmark", self.protocol)
            self.journal = Journal(header, self.results_dir)
        try:
            self.journal.append(result)
        except JournalError as exc:  # a full disk: timing more would lose more
            pytest.exit(str(exc), returncode=pytest.ExitCode.TESTS_FAILED)

    def call_cost(self, backend: Backend) -> float:
        """What timing one call costs on the backend (window.floor_cost on the floor case, once per run and backend;
        0 without a floor), recorded in the protocol."""
        if backend.name not in self.call_costs:
            floor = floor_case(self.grid)
            cost = window.floor_cost(floor, backend, self.config) if floor else None
            self.call_costs[backend.name] = cost
            self.protocol.setdefault("call_cost_s", {})[backend.name] = None if cost is None else float(f"{cost:.3g}")
        return self.call_costs[backend.name] or 0.0

    def runnable_backends(self) -> list[str]:
        """The backends to parametrize over. Checked when the first case module is collected, not at startup
        (checking imports optional libraries); backends named explicitly are skipped per test instead."""
        if self.only_available:
            self.unavailable.update({name: reason for name in self.backends if (reason := unavailable_reason(name))})
            self.backends = [name for name in self.backends if name not in self.unavailable]
            self.only_available = False
        return self.backends


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("opbench", "opbench operator benchmarks")
    group.addoption(
        "--opbench-backends",
        default="all",
        help="comma-separated backends to run, or 'all': every registered backend available on this machine, the "
        "others listed with their reason in the result file (default: %(default)s)",
    )
    group.addoption("--opbench-threads", type=int, default=1, help="intra-op threads for every backend (default: 1)")
    group.addoption(
        "--opbench-passes",
        type=int,
        default=1,
        help="run every (case, backend) this many times in interleaved passes (pass 1 of all, then pass 2, ...), "
        "each timed for --benchmark-max-time; the samples of each pass are kept (default: %(default)s; "
        "pyproject.toml's addopts sets the protocol's)",
    )
    group.addoption(
        "--opbench-export-workers",
        type=int,
        default=min(os.cpu_count() or 1, EXPORT_WORKERS),
        help="before anything is timed, export every selected case in this many worker processes (0: export each "
        f"case in the timed process when it first runs; default: one per core, at most {EXPORT_WORKERS}: %(default)s)",
    )
    group.addoption("--opbench-device", default=None, help="name of this device (default: the processor's brand)")
    group.addoption(
        "--opbench-results-dir", default=str(DEFAULT_DIR), help="where result files go (default: %(default)s)"
    )
    group.addoption("--opbench-grid", default="default", choices=list(GRIDS), help="stage shapes: default (L1) or full")
    group.addoption(
        "--opbench-suites",
        default=None,
        help="comma-separated suites to run (`opbench list --suites` names them; default: every suite but those "
        "run on request, e.g. blocks)",
    )
    group.addoption("--opbench-cases", default=None, help="only case ids matching this glob, e.g. 'obs3/*/c448*'")
    group.addoption("--opbench-cache-dir", default=str(DEFAULT_ROOT), help="exported artifacts (default: %(default)s)")
    group.addoption(
        "--opbench-report",
        action="store_true",
        help="after writing the result file, render the report over every result file in --opbench-results-dir",
    )
    group.addoption(
        "--opbench-report-out",
        default="reports/index.html",
        help="where --opbench-report writes (default: %(default)s)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Every option that can be checked is checked here, before the first case is timed: a usage error."""
    try:
        check_options(config)
    except OpbenchError as exc:
        raise pytest.UsageError(str(exc)) from exc
    spec = config.getoption("opbench_backends")
    chosen = config.getoption("opbench_suites")
    suites = [n.strip() for n in chosen.split(",") if n.strip()] if chosen and chosen.strip() != "all" else None
    config.stash[STATE] = RunState(
        backends=parse_backends(spec),
        config=RunConfig(
            threads=config.getoption("opbench_threads"), cache=ArtifactCache(config.getoption("opbench_cache_dir"))
        ),
        grid=config.getoption("opbench_grid"),
        pattern=config.getoption("opbench_cases"),
        suites=suites,
        device_name=config.getoption("opbench_device"),
        results_dir=config.getoption("opbench_results_dir"),
        passes=config.getoption("opbench_passes") if _timing(config) else 1,
        report=config.getoption("opbench_report_out") if config.getoption("opbench_report") else None,
        only_available=spec.strip() == "all",
        protocol=timing_protocol(config),
    )


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _timing(config: pytest.Config) -> bool:
    return not config.getoption("benchmark_disable", False)


ORDER = (
    "interleaved passes; every case prepared afresh each pass; a comparison group's members round-robin in one "
    "window, call by call; every other pass reversed; suites scheduled by_backend last, their passes interleaved "
    "within each backend, beside the passes of the selected suites that name them in same_window"
)


def timing_protocol(config: pytest.Config) -> dict:
    """How the run is timed, recorded in its result file: threads, grid, passes and their order, the allocator's
    configuration, how cold cases are timed and pytest-benchmark's settings."""
    protocol = {
        "threads": config.getoption("opbench_threads"),
        "grid": config.getoption("opbench_grid"),
        "timer": "time.perf_counter",
        "passes": config.getoption("opbench_passes") if _timing(config) else 1,
        "order": ORDER,
        "window": {
            "round_order": "rotated every two rounds, every other round reversed",
            "max_rounds": window.MAX_ROUNDS,
            "call_cost_subtracted_above_s": window.COST_KEPT_S,
        },  # fmt: skip
        "allocator": allocator.configuration(),
        "cold_weights": cold.protocol(),
    }
    for option, kind in (("warmup", str), ("warmup_iterations", int), ("min_rounds", int), ("min_time", float),
                         ("max_time", float)):  # fmt: skip
        value = config.getoption(f"benchmark_{option}", None)
        protocol[option] = None if value is None else kind(value)
    return protocol


def check_options(config: pytest.Config) -> None:
    """OpbenchError for an option that would only fail at the end of the run, or waste it."""
    options.threads(config.getoption("opbench_threads"), "--opbench-threads")
    if (workers := config.getoption("opbench_export_workers")) < 0:
        raise OpbenchError(f"--opbench-export-workers must be 0 or more, got {workers}")
    if (passes := config.getoption("opbench_passes")) < 1:
        raise OpbenchError(f"--opbench-passes must be 1 or more, got {passes}")
    parse_backends(config.getoption("opbench_backends"))
    pattern = config.getoption("opbench_cases")
    if pattern is not None and not pattern.strip():
        raise OpbenchError("--opbench-cases is empty: give a glob of case ids, e.g. 'obs4/*', or leave it out")
    if pattern and not select_cases(config.getoption("opbench_grid"), None, pattern):
        raise OpbenchError(f"--opbench-cases {pattern!r} matches no case; `opbench list` shows the case ids")
    device = config.getoption("opbench_device")
    if device is not None:
        slugify(device)
    check_folder(config.getoption("opbench_results_dir"), "--opbench-results-dir")
    check_folder(config.getoption("opbench_cache_dir"), "--opbench-cache-dir")
    if config.getoption("opbench_report"):
        check_folder(Path(config.getoption("opbench_report_out")).parent, "the folder of --opbench-report-out")


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
        return f"{self.group.id}-{self.backend}" + (f"-pass{self.pass_index}" if self.state.passes > 1 else "")

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
            key, last = (case.id, self.backend), self.pass_index == self.state.passes
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
        passes, members = self.state.passes, self.group.members
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


@pytest.fixture
def opbench_case(request: pytest.FixtureRequest) -> CaseRun:
    return request.param


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `opbench_case` over the module's SUITE's cases x the selected backends (no case when the suite
    is not among --opbench-suites)."""
    if "opbench_case" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash[STATE]
    key = getattr(metafunc.module, "SUITE", None)
    if key is None:
        raise pytest.UsageError(f"{metafunc.module.__name__} uses opbench_case but sets no SUITE")
    try:
        chosen = key in state.suites if state.suites is not None else get_suite(key).runs_by_default(state.pattern)
        cases = select_cases(state.grid, [key], state.pattern) if chosen else []
    except OpbenchError as exc:
        raise pytest.UsageError(f"{metafunc.module.__name__}: {exc}") from exc
    if key not in builtin_suites():  # where a user's suite is defined, so that `opbench report` can judge it
        state.protocol.setdefault("suites", {})[key] = str(Path(metafunc.module.__file__).resolve())
    backends = state.runnable_backends()
    timed = groups(get_suite(key).plan(state.grid), cases)
    runs = [CaseRun(g, b, state, k) for k in range(1, state.passes + 1) for g in timed for b in backends]
    metafunc.parametrize("opbench_case", runs, ids=[r.id for r in runs], indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check --opbench-suites against the registry (users' case modules register their suites when collected),
    deselect case modules left with no case (instead of an 'empty parameter set' skip), then put the cases in the
    order passes run them (run_order)."""
    state = config.stash.get(STATE, None)
    if state is not None and state.suites is not None:
        try:
            parse_suites(state.suites)
        except OpbenchError as exc:
            raise pytest.UsageError(f"--opbench-suites: {exc}") from exc
    empty = [item for item in items if "opbench_case" in getattr(item, "fixturenames", ()) and not _case_run(item)]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]
    if state is not None:
        items[:] = run_order(items, state)
        suite_timing(items, state)
        if _timing(config) and any(map(_case_run, items)) and (message := allocator.warning(allocator.configuration())):
            warnings.warn(message, UserWarning, stacklevel=1)


def suite_timing(items: list[pytest.Item], state: RunState) -> None:
    """A suite's own pytest-benchmark settings (Suite.timing) as a `benchmark` marker on its cases, which
    pytest-benchmark puts over the command line's; recorded in the run's protocol."""
    for item in items:
        if (run := _case_run(item)) is not None and (timing := get_suite(run.case.suite).timing):
            item.add_marker(pytest.mark.benchmark(**dict(timing)))
            state.protocol.setdefault("suite_timing", {})[run.case.suite] = dict(timing)


def _case_run(item: pytest.Item) -> CaseRun | None:
    param = getattr(getattr(item, "callspec", None), "params", {}).get("opbench_case")
    return param if isinstance(param, CaseRun) else None


def run_order(items: list[pytest.Item], state: RunState) -> list[pytest.Item]:
    """Other items first, as collected; then the cases in the order opbench.measure.order.sequence gives: pass after
    pass, by suite (as collected), backend and the suite's Plan.run_order; suites scheduled by_backend (Suite.schedule)
    last, backend by backend, with the suites selected beside them that name them in Suite.same_window."""
    runs = [(item, run) for item in items if (run := _case_run(item)) is not None]
    keys = list(dict.fromkeys(run.case.suite for _, run in runs))
    rank = {key: {c.id: i for i, c in enumerate(get_suite(key).plan(state.grid).run_order())} for key in keys}
    slots = [
        Slot(run.case.suite, run.backend, run.pass_index, rank[run.case.suite].get(run.case.id, -1)) for _, run in runs
    ]
    order = sequence(slots, {key: get_suite(key) for key in keys}, state.grid)
    others = [item for item in items if _case_run(item) is None]
    return others + [runs[i][0] for i in order]


def pytest_collection_finish(session: pytest.Session) -> None:
    """In a timed run, export every selected (case, backend) in worker processes first
    (opbench.measure.export_ahead), so
    that a cold run's exports use every core while nothing is timed."""
    config = session.config
    state, workers = config.stash.get(STATE, None), config.getoption("opbench_export_workers")
    if state is None or not any(map(_case_run, session.items)):
        return  # inert in a session without opbench cases: no signal handler, no files
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupted)  # end the session as Ctrl-C does: finished results are written
    if not workers or not _timing(config) or config.getoption("collectonly"):
        return
    jobs = export_jobs([run for run in map(_case_run, session.items) if run is not None])
    if not jobs:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if reporter is not None:
            reporter.write_line(f"opbench: {line}")

    for problem in export_ahead(jobs, state.grid, state.protocol.get("suites", {}), workers, say):
        say(f"not exported ahead (the run exports it): {problem[:300]}")


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


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        machine_info["opbench"] = {
            "threads": state.config.threads,
            "device": device_info(state.device_name).to_json(),
            "software": software_versions(),
        }


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the run's result file if anything was timed (not with --benchmark-disable), then drop its journal.
    A Ctrl-C or SIGTERM ends the session here too, with the cases finished so far."""
    state = session.config.stash.get(STATE, None)
    if state is None or state.journal is None:
        return
    if not any(r.stats for r in state.results.values()):
        state.journal.close()
        return
    software = software_versions(state.software)
    run = dataclasses.replace(
        state.journal.header,
        results=list(state.results.values()),
        software=software,
        unavailable_backends=state.unavailable,
    )
    try:
        state.written = str(write_run(run, state.results_dir))
    except (OSError, OpbenchError) as exc:
        why = exc.strerror or exc if isinstance(exc, OSError) else exc
        state.not_written = f"the result file could not be written ({why}); {state.journal.kept_text(len(run.results))}"
        session.exitstatus = session.exitstatus or pytest.ExitCode.TESTS_FAILED
        return
    state.journal.close()
    if state.report:
        from opbench.report import render  # matplotlib and jinja2 only when reporting

        try:
            state.report = f"report written to {render([state.results_dir], state.report)}"
        except OpbenchError as exc:
            state.report = f"report not written: {exc}"


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not (state.results or state.unavailable):
        return
    counts = {s: sum(r.status == s for r in state.results.values()) for s in ("ok", "unsupported", "failed")}
    terminalreporter.section("opbench")
    passes = f" ({state.passes} passes each)" if state.passes > 1 else ""
    terminalreporter.write_line(", ".join(f"{n} {s}" for s, n in counts.items()) + passes)
    for r in state.results.values():
        if r.status != "ok":
            terminalreporter.write_line(f"{r.status}: {r.case} on {r.backend}: {r.reason[:300]}")
    for name, reason in state.unavailable.items():
        terminalreporter.write_line(f"unavailable: {name}: {reason}")
    where = state.not_written or (
        f"results written to {state.written}" if state.written else "nothing timed, no result file written"
    )
    terminalreporter.write_line(where)
    if state.report and state.written:
        terminalreporter.write_line(state.report)
