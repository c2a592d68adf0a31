"""Timing a group's members in one window, round-robin, every call timed on its own.

Each round calls every member once, in the order opbench.measure.order.round_orders gives it, so sample i of every
member was taken within one round: beside the others', on the same machine. pytest-benchmark times the rounds
(`benchmark.pedantic`, so its table and JSON show one row per group and pass); the per-call samples are ours.

What timing one call on its own costs (a clock read and a list append, against a loop of calls) is measured on the
cheapest call a backend has (its per-call floor, `call_cost`); above COST_KEPT_S it is subtracted from every sample.
A cost not below the window's fastest call is a measurement the machine's load spoiled (a call cannot take less than
timing it adds), so that window keeps its samples as timed rather than subtract it into zeros.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opbench.backends.base import Backend, RunConfig
from opbench.case import Case
from opbench.errors import error_text
from opbench.measure.order import round_orders
from opbench.measure.path import Outcome, prepare

MAX_ROUNDS = 1000  # per pass: a window of tiny members ends here, before members x its time per case
COST_KEPT_S = 2e-7  # a per-call timing cost below this stays in the samples (it is within their noise)


@dataclass(frozen=True)
class Settings:
    """How long a window lasts and how it is warmed, from pytest-benchmark's settings for the group's items (the
    command line's, or the suite's own through its `benchmark` marker: Suite.timing)."""

    per_case_s: float  # what one case alone is timed for in a pass (--benchmark-max-time): the window is members x it
    min_rounds: int
    warmup_rounds: int  # untimed rounds first; at least one, which also sizes the window

    @classmethod
    def of(cls, benchmark) -> Settings:
        """Read from the fixture, where pytest-benchmark has merged the command line and the item's marker."""
        return cls(benchmark._max_time, benchmark._min_rounds, max(1, int(benchmark._warmup or 0)))

    def rounds(self, members: int, round_s: float) -> int:
        wanted = math.ceil(members * self.per_case_s / max(round_s, 1e-9))
        return max(self.min_rounds, min(MAX_ROUNDS, wanted))


class MemberFailed(Exception):
    """A member's call raised while its window was timed: which one, and the error (as the cause)."""

    def __init__(self, member: int) -> None:
        super().__init__(f"member {member} failed while timed")
        self.member = member


def rounds_of(runs: Sequence[Callable[[], object]]) -> tuple[Callable[[], None], list[list[float]]]:
    """A function that runs one round (every member once, each call timed on its own with time.perf_counter) and
    the samples it appends to, one list per member."""
    samples: list[list[float]] = [[] for _ in runs]
    orders = round_orders(len(runs))
    clock = time.perf_counter

    def one_round() -> None:
        for i in next(orders):
            run, into = runs[i], samples[i]
            try:
                start = clock()
                run()
                into.append(clock() - start)
            except Exception as exc:
                raise MemberFailed(i) from exc

    return one_round, samples


def time_window(
    runs: Sequence[Callable[[], object]],
    contexts: Sequence[Callable[[], contextlib.AbstractContextManager]],
    pedantic: Callable[..., object],
    settings: Settings,
    cost_s: float = 0.0,
) -> list[list[float]]:
    """Time the members round-robin in one window inside all their contexts, the rounds run by `pedantic`
    (pytest-benchmark's); each member's per-call samples, less cost_s when it is above COST_KEPT_S. MemberFailed when
    a member raises."""
    one_round, samples = rounds_of(runs)
    with contextlib.ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context())
        for _ in range(settings.warmup_rounds):
            one_round()
        rounds = settings.rounds(len(runs), sum(statistics.median(s) for s in samples))
        for s in samples:
            s.clear()
        pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=0)
    return [[x - cost_s for x in s] for s in samples] if subtracted(cost_s, samples) else samples


def subtracted(cost_s: float, samples: Sequence[Sequence[float]]) -> bool:
    """Whether a window's samples lose the timing cost: above COST_KEPT_S and below its fastest call."""
    return COST_KEPT_S < cost_s < min((min(s) for s in samples if s), default=0.0)


def call_cost(run: Callable[[], object], calls: int = 200, blocks: int = 25, tries: int = 3) -> float:
    """What timing each call on its own adds per call, in seconds: the mean of `calls` calls timed one by one (as a
    window times them) less the mean of as many in an untimed loop, alternating, the median over the blocks (so
    drift between blocks cancels); the least of `tries` such medians, so that a busy spell during one does not set
    the cost (beside `make test`, OpenVINO's came out near its whole 10 us call, against 0.06 us quiet)."""
    one_round, (samples,) = rounds_of([run])
    clock = time.perf_counter

    def median_difference() -> float:
        differences = []
        for _ in range(blocks):
            samples.clear()
            start = clock()
            for _ in range(calls):
                run()
            loop_s = (clock() - start) / calls
            for _ in range(calls):
                one_round()
            differences.append(statistics.fmean(samples) - loop_s)
        return statistics.median(differences)

    return min(median_difference() for _ in range(tries))


def time_group(
    outcomes: Sequence[Outcome], backend: Backend, benchmark, cost_s: float = 0.0
) -> tuple[list[Outcome], list[list[float]]]:
    """Time a group's checked members (status ok) in one window; the others stay as they are. A member that raises
    is `failed` with its error and the window is timed again without it (by a plain loop: pytest-benchmark's fixture
    times once). Each member's outcome and samples (empty for a member not timed)."""
    outcomes, settings, used = list(outcomes), Settings.of(benchmark), []

    def pedantic(round_fn, rounds, **options) -> None:
        if used:
            for _ in range(rounds):
                round_fn()
        else:
            used.append(True)
            benchmark.pedantic(round_fn, rounds=rounds, **options)

    while live := [i for i, o in enumerate(outcomes) if o.status == "ok" and o.prepared is not None]:
        prepared = [outcomes[i].prepared for i in live]
        try:
            timed = time_window([p.run for p in prepared], [p.context for p in prepared], pedantic, settings, cost_s)
        except MemberFailed as exc:
            failed = outcomes[live[exc.member]]
            reason = f"{backend.name} failed while timed: {error_text(exc.__cause__)}"
            outcomes[live[exc.member]] = Outcome("failed", reason, failed.check, failed.prepared)
            continue
        samples: list[list[float]] = [[] for _ in outcomes]
        for i, s in zip(live, timed, strict=True):
            samples[i] = s
        return outcomes, samples
    return outcomes, [[] for _ in outcomes]


def floor_cost(floor: Case, backend: Backend, config: RunConfig) -> float | None:
    """call_cost on the backend's per-call floor (prepared and checked as every case is); None where it is not ok."""
    outcome = prepare(floor, backend, config)
    if outcome.status != "ok" or outcome.prepared is None:
        return None
    with outcome.prepared.context():
        return call_cost(outcome.prepared.run)
