"""Suites: named sets of cases with their comparisons and, optionally, a verdict rule; one registry for all.

An observation is a suite whose rule decides the paper's claim; the overhead floor is a suite without a rule;
users register suites of their own with `register`. Everything generic (the plugin, `opbench list`, the report)
asks this registry and knows no suite by name.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from opbench.case import Case
from opbench.errors import OpbenchError, error_line
from opbench.plan import Plan

if TYPE_CHECKING:
    from opbench.verdict import Rule, Threshold

BUILTIN = (  # the modules that define opbench's own suites, each as a module-level SUITE, in display order
    "opbench.suites.obs1_patch_embedding",
    "opbench.suites.obs2_token_mixer",
    "opbench.suites.obs3_conv_bn",
    "opbench.suites.obs4_nonlinearity",
    "opbench.suites.overhead",
    "opbench.suites.models",
    "opbench.suites.block_table",
)


Schedule = Literal["interleaved", "by_backend"]
# A suite's passes unless it sets its own: six of --benchmark-max-time 0.05 s gave the same verdict in three runs for
# 32 of 34 (observation, backend) pairs on an AMD EPYC, three of 0.1 s for 24 of 34 (README, "How stable")
PASSES = 6


@dataclass(frozen=True)
class Suite:
    """A named set of cases. `claim` and `rule` make it an observation; without a rule it is measured and shown."""

    key: str
    title: str
    plan: Callable[[str], Plan]
    claim: str = ""
    rule: Rule | None = None
    description: str = ""
    profile: bool = False  # take a profiling pass of each case after timing it (whole models)
    # pytest-benchmark settings of this suite's cases over the run's, e.g. (("min_rounds", 5),); in the protocol
    timing: tuple[tuple[str, int | float], ...] = ()
    on_request: bool = False  # too long for every run: measured only when named (--opbench-suites) or its cases are
    floor: str | None = None  # the id of a case whose call does nothing: what timing one call costs is measured on it
    # how its passes are ordered, for every grid or per grid: interleaved with the other suites' (pass 1 of every
    # case, then pass 2...), or after them backend by backend, so only one backend's copies of its cases are loaded
    schedule: Schedule | Callable[[str], Schedule] = "interleaved"
    # suites timed in the same passes as this one when a run selects it with them (opbench.measure.order.sequence):
    # a by_backend one among them draws this suite and the other selected ones into its schedule, pass k of each
    # beside pass k of the others, backend by backend (the block table beside the models it predicts)
    same_window: tuple[str, ...] = ()
    # how many interleaved passes its cases run (--opbench-passes sets every suite's instead); in the protocol
    passes: int = PASSES

    def schedule_for(self, grid: str) -> Schedule:
        return self.schedule(grid) if callable(self.schedule) else self.schedule

    def runs_by_default(self, pattern: str | None) -> bool:
        """Whether a run that names no suite measures this one: every suite, except one run on request unless the
        run selects cases by id (then the pattern decides)."""
        return not self.on_request or pattern is not None

    @property
    def thresholds(self) -> tuple[Threshold, ...]:
        return self.rule.thresholds if self.rule else ()


_REGISTRY: dict[str, Suite] = {}


def register(suite: Suite) -> Suite:
    """Add a suite (after the built-in ones); a key already taken by another suite is an error."""
    known = suites()
    if suite.key in known and known[suite.key] is not suite:
        raise OpbenchError(f"a suite named {suite.key!r} is already registered; choose another key")
    _REGISTRY[suite.key] = suite
    return suite


def builtin_suites() -> dict[str, Suite]:
    """opbench's own suites by key (their modules imported on first use), in display order."""
    return {(suite := importlib.import_module(name).SUITE).key: suite for name in BUILTIN}


def suites() -> dict[str, Suite]:
    """Every registered suite by key: the built-in ones first, then users'."""
    builtin = builtin_suites()
    return {**builtin, **{k: s for k, s in _REGISTRY.items() if k not in builtin}}


def import_suite_files(paths: Sequence[str]) -> None:
    """Import the case modules a user names (`--suite-file`), so that their `define_suite` calls register their
    suites. The user asked for each: a file that is missing, does not import or registers no suite is an error."""
    for path in dict.fromkeys(str(Path(p).resolve()) for p in paths):
        spec = importlib.util.spec_from_file_location(f"opbench_user_suite_{len(_REGISTRY)}", path)
        if spec is None or spec.loader is None or not Path(path).is_file():
            raise OpbenchError(f"--suite-file {path}: no such file (a case module, e.g. benchmarks/test_mine.py)")
        before = set(suites())
        try:
            _run_file(spec, path)
        except Exception as exc:
            raise OpbenchError(f"--suite-file {path}: importing it failed ({error_line(exc)})") from exc
        if set(suites()) == before:
            raise OpbenchError(
                f"--suite-file {path} registered no suite (it must call opbench.define_suite(...).register())"
            )


def _run_file(spec, path: str) -> None:
    sys.path.insert(0, str(Path(path).parent))  # the module may import its neighbours, as under pytest
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    finally:
        sys.path.remove(str(Path(path).parent))


def get_suite(key: str) -> Suite:
    known = suites()
    if key not in known:
        raise OpbenchError(f"unknown suite {key!r}; choose from {', '.join(known)}")
    return known[key]


def parse_suites(spec: str | Sequence[str] | None) -> list[str] | None:
    """'obs1,overhead' -> those keys, checked against the registry; None or 'all' -> None (every suite)."""
    if spec is None:
        return None
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    if names == ["all"]:
        return None
    if not names:
        raise OpbenchError("no suite named; choose from " + ", ".join(suites()))
    for name in names:
        get_suite(name)
    return names


def plans(grid: str = "default", keys: Sequence[str] | None = None) -> dict[str, Plan]:
    return {key: get_suite(key).plan(grid) for key in (keys if keys is not None else suites())}


def floor_case(grid: str = "default") -> Case | None:
    """The first registered suite's floor case (Suite.floor), whichever suites a run selects; None without one."""
    for suite in suites().values():
        found = [c for c in suite.plan(grid).cases if c.id == suite.floor] if suite.floor else []
        if found:
            return found[0]
    return None


def select_cases(grid: str = "default", keys: Sequence[str] | None = None, pattern: str | None = None) -> list[Case]:
    """Cases of the chosen suites (all by default) in registry order, filtered by an id glob."""
    cases = [c for plan in plans(grid, keys).values() for c in plan.cases]
    return [c for c in cases if fnmatch.fnmatch(c.id, pattern)] if pattern else cases
