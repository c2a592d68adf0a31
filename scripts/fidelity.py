"""Measurement fidelity: does opbench measure what a bare timer measures?

1. Runs a handful of cases (about 10 us to 5 ms) through the real suite (pytest --benchmark-only, torch-eager)
   and compares each median with torch.utils.benchmark.Timer.blocked_autorange on the same module and input.
2. Times the overhead case's bare call in a plain loop on torch-eager and ort-cpu and compares it with
   opbench's median for that case: the difference is what the harness adds per call.

Run: make fidelity (or .venv/bin/python scripts/fidelity.py). Prints two tables. Not a test:
timings belong to benchmarks, and this machine's noise decides how close the numbers can be.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import torch.utils.benchmark as tb

from opbench.backends import RunConfig, get_backend
from opbench.cache import ArtifactCache
from opbench.observations import select_cases
from opbench.results import load_runs, to_dataframe

CASES = [
    "obs4/act/relu/c1792_h7",
    "obs2/mixer/pool/c224_h14",
    "obs3/proj/conv1x1_bn/c448_h7",
    "obs2/block/meta3d/c448_h7",
    "obs4/mlp/gelu_erf/c96_h28",
    "obs1/stem/efficientformer/c48",
]
OVERHEAD = "overhead/floor/add_one"
BACKENDS = ("torch-eager", "ort-cpu")
LOOP_CALLS = 20000


def opbench_medians(out: Path) -> pd.DataFrame:
    """The suite's own path: one pytest-benchmark session over the chosen cases."""
    cmd = [sys.executable, "-m", "pytest", "--benchmark-only", "cases/", "-q", "--benchmark-max-time=1"]
    cmd += [f"--opbench-backends={','.join(BACKENDS)}", f"--opbench-results-dir={out}"]
    for case in CASES + [OVERHEAD]:
        subprocess.run([*cmd, f"--opbench-cases={case}"], check=True, stdout=subprocess.DEVNULL)
    return to_dataframe(load_runs([out]))


def timer_median(case_id: str) -> float:
    case = next(c for c in select_cases(pattern=case_id))
    module, x = case.build(), case.example_input()
    with torch.inference_mode():
        timer = tb.Timer("module(x)", globals={"module": module, "x": x}, num_threads=1)
        return timer.blocked_autorange(min_run_time=2).median


def bare_loop(backend: str) -> float:
    """Seconds per call of the runtime's own call in a plain Python loop (what any harness must pay)."""
    case = next(c for c in select_cases(pattern=OVERHEAD))
    prepared = get_backend(backend).prepare(case, RunConfig(threads=1, cache=ArtifactCache()))
    run = prepared.run
    best = float("inf")
    with prepared.context():
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(LOOP_CALLS):
                run()
            best = min(best, (time.perf_counter() - start) / LOOP_CALLS)
    return best


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        df = opbench_medians(Path(tmp))
    medians = df.set_index(["case", "backend"])["median_s"]
    rows = []
    for case_id in CASES:
        ours, theirs = medians[case_id, "torch-eager"], timer_median(case_id)
        rows.append({"case": case_id, "opbench_us": ours * 1e6, "blocked_autorange_us": theirs * 1e6})
    table = pd.DataFrame(rows)
    table["diff_%"] = (table.opbench_us / table.blocked_autorange_us - 1) * 100
    print("## torch-eager median: opbench vs torch.utils.benchmark.Timer.blocked_autorange\n")
    print(table.round(2).to_string(index=False))
    overhead = pd.DataFrame(
        [{"backend": b, "opbench_us": medians[OVERHEAD, b] * 1e6, "bare_loop_us": bare_loop(b) * 1e6} for b in BACKENDS]
    )
    overhead["harness_adds_us"] = overhead.opbench_us - overhead.bare_loop_us
    print(f"\n## {OVERHEAD}: opbench median vs a bare loop of the runtime's call\n")
    print(overhead.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
