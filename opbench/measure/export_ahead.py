"""Export every selected case for every backend in worker processes, before the first case is timed.

A cold run spends most of its time exporting and compiling (torch.export, the ONNX exporter, OpenVINO's converter,
ExecuTorch's lowering, Inductor's compile): work of one core each, done while nothing is timed, so it can use every
core. Each worker fills the artifact cache (opbench.cache: an artifact appears whole or not at all, an exporter's
refusal is cached with its message), and the timed process then finds what it needs there. Best effort: what a
worker could not do (it crashed, or could not import a user's suite) the timed process does as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

from opbench.backends import RunConfig, get_backend
from opbench.cache import ArtifactCache
from opbench.errors import OpbenchError, UnsupportedCase, error_text
from opbench.suite import import_suite_files, select_cases


@dataclass(frozen=True)
class Job:
    """One case, exported for each of its backends in turn (backends sharing an artifact find it made)."""

    case_id: str
    suite: str
    backends: tuple[str, ...]
    config: RunConfig


def export_ahead(
    jobs: Sequence[Job], grid: str, origins: dict[str, str], workers: int, say: Callable[[str], None]
) -> list[str]:
    """Run the jobs in `workers` processes, largest first as given; `say` gets a progress line per finished case.
    Returns what could not be done ahead (the timed process does it), as lines."""
    problems: list[str] = []
    start = time.perf_counter()
    say(f"exporting {len(jobs)} cases in {workers} worker processes before anything is timed")
    # spawn: a fresh interpreter, no fork of a process with torch's threads. Workers are not recycled: with
    # max_tasks_per_child, Python 3.11-3.13 stop scheduling once a recycled worker exits (CPython gh-115634).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending: dict[Future, Job] = {pool.submit(export_case, job, grid, origins): job for job in jobs}
        done_count = 0
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                done_count += 1
                try:
                    seconds, failed = future.result()
                except Exception as exc:  # the worker died (out of memory...) or the job could not be sent
                    seconds, failed = 0.0, [f"{job.case_id}: {error_text(exc)}"]
                problems += failed
                say(f"[{done_count}/{len(jobs)}] {job.case_id} ({len(job.backends)} backends, {seconds:.1f} s)")
    left = f"; {len(problems)} left to the run" if problems else ""
    say(f"exported ahead in {time.perf_counter() - start:.0f} s{left}")
    return problems


def export_case(job: Job, grid: str, origins: dict[str, str]) -> tuple[float, list[str]]:
    """In a worker: the job's case exported for each backend. (seconds, what failed other than an exporter's
    refusal, which the cache keeps for the run to report)."""
    start = time.perf_counter()
    with contextlib.suppress(OpbenchError):  # a suite that does not import is left to the run
        import_suite_files([path for key, path in origins.items() if key == job.suite])  # the ones this run collected
    found = [c for c in select_cases(grid, [job.suite]) if c.id == job.case_id]
    if not found:
        return 0.0, [f"{job.case_id}: not found in suite {job.suite!r} by a worker"]
    problems = []
    config = dataclasses.replace(job.config, cache=ArtifactCache(job.config.cache.root, pass_on_repairs=True))
    for name in job.backends:
        try:
            get_backend(name).export(found[0], config)
        except UnsupportedCase:
            pass
        except Exception as exc:
            problems.append(f"{job.case_id} on {name}: {error_text(exc)}")
    return time.perf_counter() - start, problems
