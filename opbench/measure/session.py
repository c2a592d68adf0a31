"""The state of one timed run: what the items measured so far, journaled as they finish, and the result file.

One RunState lives in the pytest config's stash for the whole session; each item (opbench.measure.case_run) adds
its results to it, and the session's end writes them as one run. Kept apart from the plugin's hooks so that what a
run keeps, and what it does when the disk is full or the run is killed, reads in one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from opbench.backends import Backend, RunConfig, unavailable_reason
from opbench.errors import OpbenchError
from opbench.measure import path as measuring
from opbench.measure import window
from opbench.results import (
    Journal,
    JournalError,
    Result,
    device_info,
    new_run,
    passes_text,
    software_versions,
    write_run,
)
from opbench.suite import floor_case, get_suite


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
    passes: int | None = None  # every suite's (--opbench-passes; 1 when nothing is timed), or None: each suite's own
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

    def passes_for(self, suite: str) -> int:
        """How many passes the suite's cases run: the run's, or the suite's own (Suite.passes); recorded in the
        protocol."""
        passes = self.passes or get_suite(suite).passes
        self.protocol.setdefault("passes", {})[suite] = passes
        return passes

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

    def finish(self) -> bool:
        """Write the run's result file if anything was timed, then drop its journal, and render the report if asked;
        False when the file could not be written (the journal keeps the results, and not_written says why)."""
        if self.journal is None:
            return True
        if not any(r.stats for r in self.results.values()):
            self.journal.close()
            return True
        run = dataclasses.replace(
            self.journal.header,
            results=list(self.results.values()),
            software=software_versions(self.software),
            unavailable_backends=self.unavailable,
        )
        try:
            self.written = str(write_run(run, self.results_dir))
        except (OSError, OpbenchError) as exc:
            why = exc.strerror or exc if isinstance(exc, OSError) else exc
            kept = self.journal.kept_text(len(run.results))
            self.not_written = f"the result file could not be written ({why}); {kept}"
            return False
        self.journal.close()
        if self.report:
            from opbench.report import render  # matplotlib and jinja2 only when reporting

            try:
                self.report = f"report written to {render([self.results_dir], self.report)}"
            except OpbenchError as exc:
                self.report = f"report not written: {exc}"
        return True

    def summary(self) -> list[str]:
        """The lines of the terminal summary: counts, what did not run and why, where the results went."""
        counts = {s: sum(r.status == s for r in self.results.values()) for s in ("ok", "unsupported", "failed")}
        several = any(n > 1 for n in self.protocol.get("passes", {}).values())
        passes = f" ({passes_text(self.protocol)})" if several else ""
        lines = [", ".join(f"{n} {s}" for s, n in counts.items()) + passes]
        failed = [r for r in self.results.values() if r.status != "ok"]
        lines += [f"{r.status}: {r.case} on {r.backend}: {r.reason[:300]}" for r in failed]
        lines += [f"unavailable: {name}: {reason}" for name, reason in self.unavailable.items()]
        lines.append(
            self.not_written
            or (f"results written to {self.written}" if self.written else "nothing timed, no result file written")
        )
        if self.report and self.written:
            lines.append(self.report)
        return lines
