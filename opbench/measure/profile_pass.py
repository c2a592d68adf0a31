"""The profiling pass: where a case's time goes on a backend, taken after its timing and never mixed into it."""

from __future__ import annotations

import statistics
import time

from opbench.attribution import Breakdown, OpRow, breakdown, merge_rows
from opbench.backends.base import Backend, Prepared, RunConfig
from opbench.case import Case
from opbench.errors import ProfilerUnavailable, error_text


def _timed(prepared: Prepared, rounds: int, warmup: int) -> list[float]:
    """Seconds per call of a prepared case, timed plainly with perf_counter (no profiler)."""
    samples = []
    with prepared.context():
        for _ in range(warmup):
            prepared.run()
        for _ in range(rounds):
            start = time.perf_counter()
            prepared.run()
            samples.append(time.perf_counter() - start)
    return samples


def profile_case(
    backend: Backend,
    case: Case,
    config: RunConfig,
    runs: int = 20,
    e2e_median_s: float | None = None,
    rounds: int = 30,
    chunks: int = 5,
) -> tuple[list[OpRow], Breakdown]:
    """Profile the case on the backend (a pass of its own) and break it down against the end-to-end median.

    Unless the median is given (the suite's measurement, when there is one), the case is prepared here and timed
    plainly in `chunks` bursts of rounds, alternating with the backend's profile of `runs / chunks` runs at a time
    (profile, time, profile, time...); the rows of the chunks are averaged by name. A machine whose speed drifts during
    the pass then moves the profile and the median alike instead of making the coverage depend on when each was taken.
    Raises ProfilerUnavailable when the backend has no profiler here, UnsupportedCase when it cannot run the case.
    """
    chunks = max(1, min(chunks, runs))
    # the first chunk comes first: a backend without a profiler says so before anything is compiled to be timed
    profiles = [backend.profile(case, config, runs // chunks + (runs % chunks > 0))]
    prepared = backend.prepare(case, config) if e2e_median_s is None else None
    samples: list[float] = []
    for chunk in range(1, chunks + 1):
        if prepared is not None:
            samples += _timed(prepared, rounds // chunks or 1, warmup=5 if chunk == 1 else 1)
        if chunk < chunks:
            profiles.append(backend.profile(case, config, runs // chunks + (chunk < runs % chunks)))
    rows = merge_rows(profiles)
    if prepared is not None:
        e2e_median_s = statistics.median(samples)
    return rows, breakdown(rows, e2e_median_s)


# Runs of the profiler in the pass after timing, in one session: a session's fixed cost (a profiling ORT session, the
# ETDump program loaded, torch's profiler started and its events parsed) is 1-2.5 s for a large model, as much as its
# runs; the rows are the interquartile mean of the runs (typical_mean).
PROFILE_RUNS = 4


def profile_pass(
    case: Case, backend: Backend, config: RunConfig, e2e_median_s: float, runs: int = PROFILE_RUNS
) -> dict:
    """Where the case's time goes on the backend, as a result keeps it: a pass of its own after the timing (it never
    changes a reported latency), against `e2e_median_s`, the median of the pass timed just before (seconds before the
    profiler's runs, so that a drifting machine moves both alike). {"rows", "e2e_median_s", "runs"}, or
    {"unavailable": why}."""
    try:
        rows, found = profile_case(backend, case, config, runs=runs, e2e_median_s=e2e_median_s, chunks=1)
    except ProfilerUnavailable as exc:
        return {"unavailable": exc.reason}
    except Exception as exc:  # a profiler failing on one case must not lose the measurement
        return {"unavailable": f"the profiling pass failed: {error_text(exc)}"}
    return {"rows": [r.to_json() for r in rows], "e2e_median_s": found.e2e_median_s, "runs": runs}
