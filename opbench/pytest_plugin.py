"""The opbench pytest plugin: options, case x backend x pass parametrization, the order items run in, and the hooks
that write one result file per run.

Timing is pytest-benchmark's; this plugin only chooses what to time and hands each item to
opbench.measure.case_run (which checks it first through opbench.measure.path, labels it and records it in the run's
opbench.measure.session.RunState). Before the first item, a timed run exports every selected case in worker
processes (opbench.measure.export_ahead), so that a cold run's exports use every core.
"""

from __future__ import annotations

import os
import signal
import threading
import warnings
from pathlib import Path

import pytest

from opbench import options
from opbench.backends import RunConfig, parse_backends
from opbench.cache import DEFAULT_ROOT, ArtifactCache
from opbench.errors import OpbenchError
from opbench.files import check_folder
from opbench.measure import allocator, cold, window
from opbench.measure.case_run import CaseRun, export_jobs, run_order
from opbench.measure.export_ahead import export_ahead
from opbench.measure.order import groups
from opbench.measure.session import RunState
from opbench.results import DEFAULT_DIR, device_info, slugify, software_versions
from opbench.shapes import GRIDS
from opbench.suite import PASSES, builtin_suites, get_suite, parse_suites, select_cases

STATE = pytest.StashKey[RunState]()
EXPORT_WORKERS = 4  # the default's cap: a worker lowering a large model takes several GB


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
        default=None,
        help="run every (case, backend) this many times in interleaved passes (pass 1 of all, then pass 2, ...), "
        "each timed for --benchmark-max-time; the samples of each pass are kept (default: each suite's own, "
        f"{PASSES} unless the suite sets fewer, as the whole models do)",
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
    """How the run is timed, recorded in its result file: threads, grid, the order of passes, the allocator's
    configuration, how cold cases are timed and pytest-benchmark's settings (each suite's passes are added as its
    cases are collected: RunState.passes_for)."""
    protocol = {
        "threads": config.getoption("opbench_threads"),
        "grid": config.getoption("opbench_grid"),
        "timer": "time.perf_counter",
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
    if (passes := config.getoption("opbench_passes")) is not None and passes < 1:
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
    passes = state.passes_for(key) if timed else 0  # a suite not selected is not in the protocol
    runs = [CaseRun(g, b, state, k) for k in range(1, passes + 1) for g in timed for b in backends]
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
        items[:] = _run_order(items, state)
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


def _run_order(items: list[pytest.Item], state: RunState) -> list[pytest.Item]:
    """Other items first, as collected; then the cases in the order case_run.run_order gives."""
    runs = [(item, run) for item in items if (run := _case_run(item)) is not None]
    others = [item for item in items if _case_run(item) is None]
    return others + [runs[i][0] for i in run_order([run for _, run in runs], state.grid)]


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
    if state is not None and not state.finish():
        session.exitstatus = session.exitstatus or pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not (state.results or state.unavailable):
        return
    terminalreporter.section("opbench")
    for line in state.summary():
        terminalreporter.write_line(line)
