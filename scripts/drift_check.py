"""Drift check: how much does this machine's speed wander, and could a comparison's verdict be steady here?

Before comparison groups, a verdict compared two cases timed a few tenths of a second apart (the two sides of a
comparison, back to back in each pass). On a machine whose speed steps between tenths of a second (a VM sharing its
host), the two sides see different machines, and no number of samples within a pass removes that; so a comparison's
cases are now timed together, round-robin in one window (opbench.measure.window). This script measures both ways, on
one backend:

  drift      one case called for SECONDS: the median of every BLOCK_S block of calls (what one pass of the suite
             sees), their spread (5th to 95th percentile, against the overall median) and how far apart two
             consecutive blocks are (the median and 90th percentile of |ratio - 1|)
  pair       the two sides of a comparison (default: Obs 2's reshape share, the Meta3D stage with reshapes against
             the one without), REPEATS times each way, the same number of calls: in blocks (BLOCK_S of one side, then
             of the other: how a pass timed them before groups) and paired, round-robin call by call in the order a
             group's window uses (opbench.measure.order.round_orders: A B, B A, B A, A B ...); the spread of the ratio
             of medians over the repeats, each way

The pair's spread in blocks is what a single pass of a verdict near its threshold could move by on this machine when
each side was timed in its own block; the paired spread is what it moves by now. Run:
make drift-check (about a minute). Not a test: timings belong to benchmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable

import numpy as np

from opbench.backends import RunConfig, get_backend
from opbench.cache import ArtifactCache
from opbench.errors import OpbenchError
from opbench.measure.order import round_orders
from opbench.measure.path import prepare
from opbench.suite import select_cases

PAIR = ("obs2/stage/meta3d/c448_h7_d4", "obs2/stage/meta3d_reshaped/c448_h7_d4")
SECONDS = 30.0
BLOCK_S = 0.05  # what the default protocol times an observation case for in a pass (--benchmark-max-time)
REPEATS = 30


def call_of(case_id: str, backend: str, stack: contextlib.ExitStack) -> Callable[[], float]:
    """The checked, bound call of the suite's path for the case on the backend, inside its context (entered on
    `stack`), timed: seconds per call."""
    found = [c for c in select_cases() if c.id == case_id]
    if not found:
        raise SystemExit(f"{case_id}: no case of the default grid has this id (opbench list shows them)")
    outcome = prepare(found[0], get_backend(backend), RunConfig(threads=1, cache=ArtifactCache()))
    if outcome.status != "ok":
        raise SystemExit(f"{case_id} [{backend}]: {outcome.status}: {outcome.reason}")
    stack.enter_context(outcome.prepared.context())
    run = outcome.prepared.run

    def timed() -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    for _ in range(10):
        timed()
    return timed


def drift(call: Callable[[], float]) -> str:
    samples = []
    end = time.perf_counter() + SECONDS
    while time.perf_counter() < end:
        samples.append(call())
    per_block = max(1, round(BLOCK_S / float(np.median(samples))))
    blocks = np.median(np.array(samples[: len(samples) // per_block * per_block]).reshape(-1, per_block), axis=1)
    low, high = np.percentile(blocks, [5, 95]) / np.median(samples) - 1
    steps = np.abs(blocks[1:] / blocks[:-1] - 1)
    return (
        f"drift: {len(blocks)} blocks of {per_block} calls ({BLOCK_S} s) over {SECONDS:.0f} s; block medians from "
        f"{low:+.1%} to {high:+.1%} of the overall median (5th to 95th percentile); consecutive blocks differ by "
        f"{np.median(steps):.1%} (median), {np.percentile(steps, 90):.1%} (90th percentile)"
    )


def pair(first: Callable[[], float], second: Callable[[], float]) -> str:
    calls = max(1, round(BLOCK_S / float(np.median([first() for _ in range(5)]))))
    ratios: dict[str, list[float]] = {"in blocks": [], "paired": []}
    sides = (first, second)
    for _ in range(REPEATS):
        a, b = [first() for _ in range(calls)], [second() for _ in range(calls)]
        ratios["in blocks"].append(float(np.median(b) / np.median(a)))
        samples: tuple[list[float], list[float]] = ([], [])
        orders = round_orders(2)
        for _ in range(calls):  # a group's window: every side once a round, in a balanced order
            for i in next(orders):
                samples[i].append(sides[i]())
        ratios["paired"].append(float(np.median(samples[1]) / np.median(samples[0])))
    lines = [f"pair: {REPEATS} repeats of {calls} calls a side; ratio of medians (second / first) over the repeats:"]
    for way, values in ratios.items():
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        lines.append(f"  {way:12s} median {p50:.3f}, 10th-90th percentile {p10:.3f}-{p90:.3f} ({p90 / p10 - 1:.1%})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="torch-eager")
    parser.add_argument("--pair", nargs=2, default=PAIR, metavar=("FIRST", "SECOND"), help="two case ids")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        try:
            first, second = (call_of(c, args.backend, stack) for c in args.pair)
        except OpbenchError as exc:  # an unknown or unavailable backend: its message, not a traceback
            raise SystemExit(str(exc)) from None
        print(f"{args.backend}; first {args.pair[0]}, second {args.pair[1]}")
        print(drift(first))
        print(pair(first, second))


if __name__ == "__main__":
    main()
