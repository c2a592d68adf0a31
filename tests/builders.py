"""Builders of constructed results: samples whose answer is known, as Measured data or as result files."""

from __future__ import annotations

import dataclasses
import itertools
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from opbench import stats
from opbench.backends import REGISTRY
from opbench.case import Case
from opbench.results import Device, Result, Run, Stats, new_run, slugify, write_run
from opbench.suite import plans, select_cases
from opbench.verdict import Measured

MACS = 1_000_000  # the same for every constructed case, so a time-per-MAC ratio equals the latency ratio
_seeds = itertools.count(1)  # each test starts its own sequence (reseed, from conftest.py)
MARKUP_DEVICE = "Lab <b>box</b> <script>alert('x')</script> $5"  # a device name that must show as text


def reseed(key: str) -> None:
    """Start the seeds from `key` (a test's id), so a test's samples do not depend on which tests ran before it in
    the process (pytest-xdist shares the tests among workers in no fixed order)."""
    global _seeds
    _seeds = itertools.count(zlib.crc32(key.encode()))


def next_seed() -> int:
    return next(_seeds)


def samples(median_s: float, n: int = 60, spread: float = 0.01, seed: int | None = None) -> tuple[float, ...]:
    """n samples around median_s with a relative spread (log-normal), reproducible."""
    rng = np.random.default_rng(next_seed() if seed is None else seed)
    return tuple(float(x) for x in median_s * np.exp(rng.normal(0.0, spread, n)))


def in_passes(medians_s: Sequence[float], n: int = 30, spread: float = 0.01, seed: int | None = None) -> Measured:
    """Samples of one case in passes of one run, each pass around its own median (drift between passes)."""
    seeds = [None] * len(medians_s) if seed is None else [seed + k for k in range(len(medians_s))]
    passes = tuple(samples(m, n=n, spread=spread, seed=s) for m, s in zip(medians_s, seeds, strict=True))
    return Measured("", "ok", samples=passes, median_s=stats.center(passes), macs=MACS)


def in_window(
    latencies_s: Sequence[float],
    speed: Callable[[int, int], float] = lambda k, i: 1.0,
    rounds: int = 200,
    passes: int = 3,
    spread: float = 0.01,
    seed: int | None = None,
) -> list[tuple[tuple[float, ...], ...]]:
    """The members of one timing window, timed round by round: sample i of pass k of member m is latencies_s[m]
    times the machine's speed(k, i) in that round, times its own noise (log-normal). One set of passes per member."""
    rng = np.random.default_rng(next_seed() if seed is None else seed)
    factor = np.array([[speed(k, i) for i in range(rounds)] for k in range(passes)])
    return [
        tuple(tuple(float(x) for x in row) for row in t * factor * np.exp(rng.normal(0.0, spread, factor.shape)))
        for t in latencies_s
    ]


def measured(
    plan_key: str, latency: Callable[[Case], float | None], spread: float = 0.01, seed: int = 0, passes: int = 1
) -> dict[str, Measured]:
    """Measured data for every case of a suite's default plan; latency(case) None leaves a case out. Each case's
    noise depends on its id and `seed` only, not on what other tests drew before (give each target its own seed).
    With several passes every pass has the same median (a steady machine)."""
    data = {}
    for case in plans("default", [plan_key])[plan_key].cases:
        t = latency(case)
        if t is not None:
            case_seed = zlib.crc32(f"{case.id}|{seed}".encode())
            m = in_passes([t] * passes, n=60 if passes == 1 else 30, spread=spread, seed=case_seed)
            data[case.id] = dataclasses.replace(m, case=case.id)
    return data


def result(
    case: Case,
    backend: str,
    median_s: float | None,
    status: str = "ok",
    spread: float = 0.02,
    passes: Sequence[float] = (1.0,),
) -> Result:
    """One result as the plugin records it (median_s None: unsupported, no stats), without counting MACs (that
    runs the module): every constructed case has MACS. `passes`: each pass's median as a multiple of median_s."""
    stats = None
    if status == "ok" and median_s is not None:
        stats = Stats.from_passes([samples(median_s * f, n=40 // len(passes), spread=spread) for f in passes])
    return Result(
        case=case.id,
        suite=case.suite,
        family=case.family,
        variant=case.variant,
        params=dict(case.params),
        input_shape=case.input_shape,
        macs=MACS,
        backend=backend,
        status=status,
        reason="" if status == "ok" else "constructed: the exporter refused this case",
        stats=stats,
    )


def device(name: str) -> Device:
    slug = slugify(name) if any(c.isalnum() for c in name) else "device"
    return Device(name, slug, "host", "constructed cpu", 2, 8.0, "TestOS")


def make_run(name: str, results: list[Result], source: str = "pytest-benchmark", **extra) -> Run:
    return new_run(device(name), results, source, {"threads": 1, "grid": "default", "warmup": True}, **extra)


def all_results(
    backend: str, speed: float = 1.0, keys: tuple[str, ...] = ("obs1", "obs2", "obs3", "obs4", "overhead")
) -> list:
    """Every case of the chosen observations on one backend; latency from the case's position, scaled."""
    out = []
    for key in keys:
        for i, case in enumerate(plans("default", [key])[key].cases):
            out.append(result(case, backend, speed * 1e-4 * (1 + (i % 7) / 3)))
    return out


def write(run: Run, folder: Path) -> Path:
    return write_run(run, folder)


def case(case_id: str) -> Case:
    """A built-in case of the default grid by id."""
    (found,) = [c for c in select_cases() if c.id == case_id]
    return found


def available(name: str):
    """The backend, or skip the test with the reason it cannot run here."""
    backend = REGISTRY[name]()
    reason = backend.unavailable_reason()
    if reason:
        pytest.skip(f"{name} unavailable here: {reason}")
    return backend


def timer(calls: list[int]):
    """A stand-in for pytest-benchmark's timer: three calls, counted in `calls`."""

    def time_it(fn):
        for _ in range(3):
            fn()
        calls.append(3)

    return time_it


# a conftest's end: torch-eager as backend "counting", logging each case it prepares to prepared.txt
COUNTING_CONFTEST = """
class Counting(TorchEager):
    name = "counting"
    def prepare(self, case, config):
        with open("prepared.txt", "a") as log:
            log.write(case.id + "\\n")
        return super().prepare(case, config)

REGISTRY["counting"] = Counting
pytest_plugins = ["opbench.pytest_plugin"]
"""
