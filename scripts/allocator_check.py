"""Allocator check: does a case's latency depend on what ran before it in the process? (opbench/measure/allocator.py)

For six cases of different sizes (a few us to tens of ms), torch-eager, each timed:
  alone      the suite (pytest --benchmark-only cases/, the default protocol) on that case alone, in a fresh process
  in run     the same case inside one session over every default case on torch-eager (a larger selection: bigger
             blocks freed before it, other cases interleaved)
  timer      torch.utils.benchmark.Timer.blocked_autorange on the same module and input, in a fresh process
  alone, glibc default   as `alone`, but without the fixed malloc thresholds (what opbench measured before)
The first three run with the allocator configuration `make bench` exports (allocator.RECOMMENDED). The methods
alternate REPEATS times and the median over repeats is shown, with the spread over repeats, so that the drift of a
shared machine hits them alike. Two statistics of each measurement: its median (what opbench reports) and its fastest
round (the least disturbed by other processes on a busy machine; the allocator's cost, page faults on every call, is
in every round, so it shows there too). Run: make allocator-check (ten to thirty minutes on two cores). Not a test:
timings belong to benchmarks.
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
    from opbench.measure.allocator import RECOMMENDED

    env = {k: v for k, v in os.environ.items() if k not in (*RECOMMENDED, "GLIBC_TUNABLES")}
    return {**env, **RECOMMENDED} if fixed else env


def suite_medians(pattern: str | None, fixed: bool = True) -> dict[str, tuple[float, float]]:
    """One fresh benchmark session of the real suite on torch-eager; case -> (median, fastest round) in seconds."""
    from opbench.results import load_runs

    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "pytest", "--benchmark-only", "-q", "cases/", "--opbench-backends=torch-eager"]
        command += [f"--opbench-results-dir={out}"] + ([f"--opbench-cases={pattern}"] if pattern else [])
        done = subprocess.run(command, cwd=ROOT, env=environment(fixed), capture_output=True, text=True)
        if done.returncode != 0:
            what = pattern or "every case"
            raise SystemExit(f"the suite failed ({what}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        (run,) = load_runs([out])
        return {r.case: (r.stats.median_s, r.stats.min_s) for r in run.results if r.ok}


def timer_median(case_id: str) -> tuple[float, float]:
    """blocked_autorange in a fresh process with the fixed allocator configuration: (median, fastest block)."""
    command = [sys.executable, __file__, "--timer", case_id]
    done = subprocess.run(command, cwd=ROOT, env=environment(True), capture_output=True, text=True, check=True)
    median, fastest = map(float, done.stdout.split())
    return median, fastest


def time_here(case_id: str) -> tuple[float, float]:
    import torch
    import torch.utils.benchmark as tb

    from opbench.suite import select_cases

    torch.set_num_threads(1)
    (case,) = select_cases(pattern=case_id)
    module, x = case.build(), case.example_input()
    with torch.inference_mode():
        timer = tb.Timer("module(x)", globals={"module": module, "x": x}, num_threads=1)
        measurement = timer.blocked_autorange(min_run_time=TIMER_SECONDS)
        return measurement.median, min(measurement.times)


def table(columns: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    rows = []
    for case_id in CASES:
        row = {"case": case_id}
        for name, values in columns.items():
            row[f"{name} us"] = statistics.median(values[case_id]) * 1e6
        for name, values in columns.items():
            row[f"{name} spread %"] = (max(values[case_id]) / min(values[case_id]) - 1) * 100
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.insert(5, "in run / alone - 1 %", (frame["in run us"] / frame["alone us"] - 1) * 100)
    frame.insert(6, "alone / timer - 1 %", (frame["alone us"] / frame["timer us"] - 1) * 100)
    frame.insert(7, "default / alone - 1 %", (frame["alone, glibc default us"] / frame["alone us"] - 1) * 100)
    return frame.round(1)


def main() -> None:
    from opbench.measure.allocator import RECOMMENDED

    names = ("alone", "in run", "timer", "alone, glibc default")
    medians = {name: {c: [] for c in CASES} for name in names}
    fastest = {name: {c: [] for c in CASES} for name in names}

    def add(name: str, case_id: str, measured: tuple[float, float]) -> None:
        medians[name][case_id].append(measured[0])
        fastest[name][case_id].append(measured[1])

    for repeat in range(REPEATS):
        for case_id in CASES:
            add("alone", case_id, suite_medians(case_id)[case_id])
            add("timer", case_id, timer_median(case_id))
            add("alone, glibc default", case_id, suite_medians(case_id, fixed=False)[case_id])
        in_run = suite_medians(None)
        for case_id in CASES:
            add("in run", case_id, in_run[case_id])
        print(f"repeat {repeat + 1} of {REPEATS} done", file=sys.stderr)
    settings = " ".join(f"{k}={v}" for k, v in RECOMMENDED.items())
    print(f"torch-eager, {REPEATS} alternating repeats; allocator: {settings} (but the glibc default column)")
    print("each cell: the median over repeats; spread: max / min - 1 over repeats")
    with pd.option_context("display.width", 300, "display.max_columns", None):
        for title, columns in (("median per call", medians), ("fastest round per call", fastest)):
            print(f"\n{title}\n{table(columns).to_string(index=False)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timer", metavar="CASE", help=argparse.SUPPRESS)  # the child process of timer_median
    args = parser.parse_args()
    if args.timer:
        print(*time_here(args.timer))
    else:
        main()
