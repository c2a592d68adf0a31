"""Allocator check: does a case's latency depend on what ran before it in the process? (opbench/allocator.py)

For six cases of different sizes (a few us to tens of ms), torch-eager, each timed:
  alone      the suite (pytest --benchmark-only cases/, the default protocol) on that case alone, in a fresh process
  in run     the same case inside one session over every default case on torch-eager (a larger selection: bigger
             blocks freed before it, other cases interleaved)
  timer      torch.utils.benchmark.Timer.blocked_autorange on the same module and input, in a fresh process
  alone, glibc default   as `alone`, but without the fixed malloc thresholds (what opbench measured before)
The first three run with the allocator configuration `make bench` exports (allocator.RECOMMENDED). The methods
alternate REPEATS times and the median of each is shown, with the spread over repeats, so that the drift of a shared
machine hits them alike. Run: make allocator-check (about ten minutes on two cores). Not a test: timings belong to
benchmarks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CASES = [
    "obs1/stem/efficientformer/c96",
    "overhead/floor/add_one",
    "obs4/act/relu/c1792_h7",
    "obs3/proj/conv1x1_bn/c448_h7",
    "obs1/patch_embed/deit_k16s16/c384",
    "obs2/stage/meta3d/c448_h7_d4",
]
REPEATS = 3
TIMER_SECONDS = 1.0


def environment(fixed: bool) -> dict[str, str]:
    from opbench.allocator import RECOMMENDED

    env = {k: v for k, v in os.environ.items() if k not in (*RECOMMENDED, "GLIBC_TUNABLES")}
    return {**env, **RECOMMENDED} if fixed else env


def suite_medians(pattern: str | None, fixed: bool = True) -> dict[str, float]:
    """One fresh benchmark session of the real suite on torch-eager; case -> median in seconds."""
    from opbench.results import load_runs

    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "pytest", "--benchmark-only", "-q", "cases/", "--opbench-backends=torch-eager"]
        command += [f"--opbench-results-dir={out}"] + ([f"--opbench-cases={pattern}"] if pattern else [])
        done = subprocess.run(command, cwd=ROOT, env=environment(fixed), capture_output=True, text=True)
        if done.returncode != 0:
            what = pattern or "every case"
            raise SystemExit(f"the suite failed ({what}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        (run,) = load_runs([out])
        return {r.case: r.stats.median_s for r in run.results if r.ok}


def timer_median(case_id: str) -> float:
    """blocked_autorange in a fresh process with the fixed allocator configuration."""
    command = [sys.executable, __file__, "--timer", case_id]
    done = subprocess.run(command, cwd=ROOT, env=environment(True), capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def time_here(case_id: str) -> float:
    import torch
    import torch.utils.benchmark as tb

    from opbench.suite import select_cases

    torch.set_num_threads(1)
    (case,) = select_cases(pattern=case_id)
    module, x = case.build(), case.example_input()
    with torch.inference_mode():
        timer = tb.Timer("module(x)", globals={"module": module, "x": x}, num_threads=1)
        return timer.blocked_autorange(min_run_time=TIMER_SECONDS).median


def main() -> None:
    columns = {name: {c: [] for c in CASES} for name in ("alone", "in run", "timer", "alone, glibc default")}
    for repeat in range(REPEATS):
        for case_id in CASES:
            columns["alone"][case_id].append(suite_medians(case_id)[case_id])
            columns["timer"][case_id].append(timer_median(case_id))
            columns["alone, glibc default"][case_id].append(suite_medians(case_id, fixed=False)[case_id])
        in_run = suite_medians(None)
        for case_id in CASES:
            columns["in run"][case_id].append(in_run[case_id])
        print(f"repeat {repeat + 1} of {REPEATS} done", file=sys.stderr)
    rows = []
    for case_id in CASES:
        row = {"case": case_id}
        for name, values in columns.items():
            row[f"{name} us"] = statistics.median(values[case_id]) * 1e6
            row[f"{name} spread %"] = (max(values[case_id]) / min(values[case_id]) - 1) * 100
        rows.append(row)
    table = pd.DataFrame(rows)
    table["in run / alone - 1 %"] = (table["in run us"] / table["alone us"] - 1) * 100
    table["alone / timer - 1 %"] = (table["alone us"] / table["timer us"] - 1) * 100
    table["default / alone - 1 %"] = (table["alone, glibc default us"] / table["alone us"] - 1) * 100
    from opbench.allocator import RECOMMENDED

    print(f"torch-eager, median of {REPEATS} alternating repeats (spread: max/min - 1 over repeats); allocator: "
          + " ".join(f"{k}={v}" for k, v in RECOMMENDED.items()) + "\n")  # fmt: skip
    shown = ["case", "alone us", "in run us", "timer us", "alone, glibc default us"]
    shown += ["in run / alone - 1 %", "alone / timer - 1 %", "default / alone - 1 %"]
    shown += [f"{n} spread %" for n in columns]
    with pd.option_context("display.width", 250, "display.max_columns", None):
        print(table[shown].round(1).to_string(index=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timer", metavar="CASE", help=argparse.SUPPRESS)  # the child process of timer_median
    args = parser.parse_args()
    if args.timer:
        print(time_here(args.timer))
    else:
        main()
