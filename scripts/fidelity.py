"""Measurement fidelity: does opbench measure what a bare timer measures?

1. For a handful of cases (about 10 us to 5 ms), the suite's own path (pytest --benchmark-only cases/, torch-eager,
   run in this process) against torch.utils.benchmark.Timer.blocked_autorange on the same module and input.
2. The overhead case's opbench median against a bare Python loop of the runtime's own call (torch-eager, ort-cpu):
   the difference is what the harness adds per call.

The two methods alternate REPEATS times and the median of each is compared, so that drift of a shared machine
hits both alike. Run: make fidelity. Not a test: timings belong to benchmarks.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
import time
from collections.abc import Callable

import pandas as pd
import pytest
import torch
import torch.utils.benchmark as tb

from opbench.backends import RunConfig, get_backend
from opbench.cache import ArtifactCache
from opbench.results import load_runs
from opbench.suite import select_cases

CASES = [
    "obs4/act/relu/c1792_h7",
    "obs4/act/gelu_erf/c384_h28",
    "obs2/mixer/pool/c224_h14",
    "obs3/proj/conv1x1_bn/c448_h7",
    "obs4/mlp/gelu_erf/c96_h28",
    "obs1/stem/efficientformer/c48",
    "obs2/block/meta3d/c448_h7",
]
OVERHEAD = "overhead/floor/add_one"
BACKENDS = ("torch-eager", "ort-cpu")
REPEATS = 3
SECONDS = 1.0


def opbench_median(case_id: str, backend: str) -> float:
    """One benchmark session of the real suite over one (case, backend); its median in seconds."""
    with tempfile.TemporaryDirectory() as out:
        args = ["--benchmark-only", "cases/", f"--benchmark-max-time={SECONDS}", f"--opbench-backends={backend}"]
        args += [f"--opbench-cases={case_id}", f"--opbench-results-dir={out}"]
        with contextlib.redirect_stdout(io.StringIO()):
            code = pytest.main(args)
        if code != 0:
            raise SystemExit(f"the suite failed on {case_id} [{backend}] (exit {code})")
        ((result,),) = [run.results for run in load_runs([out])]
        return result.stats.median_s


def timer_median(case_id: str) -> float:
    case = select_cases(pattern=case_id)[0]
    module, x = case.build(), case.example_input()
    with torch.inference_mode():
        timer = tb.Timer("module(x)", globals={"module": module, "x": x}, num_threads=1)
        return timer.blocked_autorange(min_run_time=SECONDS).median


def bare_loop(backend: str) -> float:
    """Seconds per call of the runtime's own call in a plain Python loop: what any harness must pay."""
    case = select_cases(pattern=OVERHEAD)[0]
    prepared = get_backend(backend).prepare(case, RunConfig(threads=1, cache=ArtifactCache()))
    run, calls, best = prepared.run, 20_000, float("inf")
    with prepared.context():
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(calls):
                run()
            best = min(best, (time.perf_counter() - start) / calls)
    return best


def alternate(first: Callable[[], float], second: Callable[[], float]) -> tuple[float, float]:
    pairs = [(first(), second()) for _ in range(REPEATS)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for case_id in CASES:
        ours, theirs = alternate(lambda c=case_id: opbench_median(c, "torch-eager"), lambda c=case_id: timer_median(c))
        rows.append({"case": case_id, "opbench_us": ours * 1e6, "blocked_autorange_us": theirs * 1e6})
    table = pd.DataFrame(rows)
    table["diff_%"] = (table.opbench_us / table.blocked_autorange_us - 1) * 100
    print(f"torch-eager median, opbench vs torch.utils.benchmark.Timer.blocked_autorange (median of {REPEATS})\n")
    print(table.round(2).to_string(index=False))
    rows = []
    for backend in BACKENDS:
        ours, bare = alternate(lambda b=backend: opbench_median(OVERHEAD, b), lambda b=backend: bare_loop(b))
        rows.append({"backend": backend, "opbench_us": ours * 1e6, "bare_loop_us": bare * 1e6})
    overhead = pd.DataFrame(rows)
    overhead["harness_adds_us"] = overhead.opbench_us - overhead.bare_loop_us
    print(f"\n{OVERHEAD}: opbench median vs the best of 5 bare loops of the runtime's call\n")
    print(overhead.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
