"""Comparison groups and their round-robin windows, with constructed plans and fake prepared cases (no real timing)."""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
from pathlib import Path

import pytest
from torch import nn

from opbench.backends.base import Prepared
from opbench.backends.torch_eager import TorchEager
from opbench.case import make_case
from opbench.measure import window
from opbench.measure.order import Group, groups, round_orders
from opbench.measure.path import Outcome
from opbench.plan import Plan
from opbench.results import Device, Result, Stats, load_run, new_run, write_run
from opbench.suite import Suite


def case(name: str):
    return make_case("t", "f", name, nn.Identity, (1, 1), "t")


class FakeBenchmark:
    """pytest-benchmark's fixture as window.py uses it: its merged settings and pedantic, which runs the rounds."""

    def __init__(self, max_time: float = 0.1, min_rounds: int = 4, warmup: int = 2) -> None:
        self._max_time, self._min_rounds, self._warmup = max_time, min_rounds, warmup
        self.pedantic_calls = []

    def pedantic(self, target, rounds, iterations, warmup_rounds):
        self.pedantic_calls.append((rounds, iterations, warmup_rounds))
        for _ in range(warmup_rounds + rounds):
            target()


class Recorder:
    """Prepared-like members that log their calls and whether every member's context was entered around them."""

    def __init__(self, fail_at: dict[str, int] | None = None) -> None:
        self.calls: list[str] = []
        self.entered: set[str] = set()
        self.fail_at = fail_at or {}

    def run(self, name: str):
        def call() -> None:
            self.calls.append(name)
            if self.calls.count(name) == self.fail_at.get(name):
                raise RuntimeError(f"{name} crashed")

        return call

    def context(self, name: str):
        @contextlib.contextmanager
        def entered():
            self.entered.add(name)
            yield
            self.entered.discard(name)

        return entered


def test_groups_are_the_connected_components_of_the_comparisons_among_the_selected_cases():
    a, b, c, d, e, lone = (case(n) for n in ("a", "b", "c", "d", "e", "lone"))
    plan = Plan()
    plan.compare("b vs a", a, b)
    plan.compare("c vs a", a, c)  # a baseline shared by two candidates: one group
    plan.compare("e vs d", d, e)
    plan.add(lone)
    found = groups(plan, plan.cases)
    assert [[m.id for m in g.members] for g in found] == [[a.id, b.id, c.id], [d.id, e.id], [lone.id]]
    assert found[0].id == f"{a.id}+2" and found[2].id == lone.id
    assert found[0].window("ort-cpu") == f"{a.id}+2 [ort-cpu]"
    # a comparison with one side left out of the selection joins nothing: d is timed alone
    assert [[m.id for m in g.members] for g in groups(plan, [a, c, d])] == [[a.id, c.id], [d.id]]


def test_round_orders_put_every_member_first_and_in_every_position_equally_often():
    for members in (2, 3, 5):
        rounds = [next(orders) for orders in [round_orders(members)] for _ in range(2 * members)]
        assert all(sorted(r) == list(range(members)) for r in rounds)
        for position in range(members):
            assert collections.Counter(r[position] for r in rounds) == {m: 2 for m in range(members)}
    two = round_orders(2)
    assert [next(two) for _ in range(4)] == [(0, 1), (1, 0), (1, 0), (0, 1)]


def test_a_window_times_every_member_once_a_round_in_a_balanced_order_inside_all_their_contexts():
    names = ["base", "cand", "other"]
    log = Recorder()
    seen_inside = []

    def run(name):
        inner = log.run(name)

        def call():
            seen_inside.append(set(log.entered))
            inner()

        return call

    bench = FakeBenchmark(max_time=0.0, min_rounds=12, warmup=2)
    samples = window.time_window(
        [run(n) for n in names], [log.context(n) for n in names], bench.pedantic, window.Settings.of(bench)
    )
    assert bench.pedantic_calls == [(12, 1, 0)]  # the warm-up rounds are run before, untimed
    assert [len(s) for s in samples] == [12, 12, 12] and all(x >= 0 for s in samples for x in s)
    rounds = [log.calls[i : i + 3] for i in range(0, len(log.calls), 3)]
    assert len(rounds) == 2 + 12 and all(sorted(r) == sorted(names) for r in rounds)
    assert collections.Counter(r[0] for r in rounds[2:]) == {n: 4 for n in names}  # no member always first
    assert all(inside == set(names) for inside in seen_inside) and not log.entered


def test_a_window_lasts_members_times_the_time_per_case_within_its_bounds():
    settings = window.Settings(per_case_s=0.1, min_rounds=10, warmup_rounds=1)
    assert settings.rounds(members=2, round_s=0.002) == 100  # 0.2 s of rounds of 2 ms
    assert settings.rounds(members=2, round_s=0.1) == 10  # at least min_rounds
    assert settings.rounds(members=5, round_s=1e-6) == window.MAX_ROUNDS


def test_a_timing_cost_above_the_kept_threshold_is_subtracted_from_every_sample(monkeypatch):
    ticks = iter(float(t) for t in range(10_000))
    monkeypatch.setattr(window.time, "perf_counter", lambda: next(ticks))  # every call lasts 1 tick
    bench = FakeBenchmark(max_time=0.0, min_rounds=3, warmup=1)
    runs, contexts = [lambda: None] * 2, [contextlib.nullcontext] * 2
    kept = window.time_window(runs, contexts, bench.pedantic, window.Settings.of(bench), cost_s=window.COST_KEPT_S)
    less = window.time_window(runs, contexts, bench.pedantic, window.Settings.of(bench), cost_s=0.25)
    assert kept == [[1.0] * 3] * 2 and less == [[0.75] * 3] * 2
    spoiled = window.time_window(runs, contexts, bench.pedantic, window.Settings.of(bench), cost_s=1.0)
    assert spoiled == [[1.0] * 3] * 2  # a cost as large as the fastest call is not subtracted into zeros
    assert not window.subtracted(0.5, [[1.0, 0.4], [2.0]]) and window.subtracted(0.5, [[1.0, 0.6], [2.0], []])


def test_the_call_cost_is_the_least_of_its_tries_so_a_busy_spell_does_not_inflate_it(monkeypatch):
    timed_call = iter([5.0] * 4 + [1.0] * 100)  # the first try's timed calls took 5 ticks each, then 1 as the loop's
    clock = {"now": 0.0}

    def perf_counter():
        return clock["now"]

    def run():
        clock["now"] += next(timed_call, 1.0) if clock.get("timing") else 1.0

    monkeypatch.setattr(window.time, "perf_counter", perf_counter)
    real_rounds_of = window.rounds_of

    def rounds_of(runs):
        one_round, samples = real_rounds_of(runs)

        def timed_round():
            clock["timing"] = True
            one_round()
            clock["timing"] = False

        return timed_round, samples

    monkeypatch.setattr(window, "rounds_of", rounds_of)
    assert window.call_cost(run, calls=2, blocks=2, tries=3) == 0.0  # the first try alone would say 4 ticks


def test_a_member_that_raises_while_timed_fails_alone_and_the_others_are_timed_again():
    names = ["base", "cand", "other"]
    log = Recorder(fail_at={"cand": 3})  # its first two calls are the warm-up, the third is timed
    prepared = [window_member(log, n) for n in names]
    skipped = Outcome("unsupported", "no exporter")
    bench = FakeBenchmark(max_time=0.0, min_rounds=5, warmup=2)
    outcomes, samples = window.time_group([*prepared, skipped], TorchEager(), bench)
    assert [o.status for o in outcomes] == ["ok", "failed", "ok", "unsupported"]
    assert "cand crashed" in outcomes[1].reason and outcomes[1].reason.startswith("torch-eager failed while timed")
    assert [len(s) for s in samples] == [5, 0, 5, 0]
    assert len(bench.pedantic_calls) == 1  # the fixture times once; the second window runs its rounds itself


def window_member(log: Recorder, name: str) -> Outcome:
    return Outcome("ok", prepared=Prepared(run=log.run(name), infer=lambda: None, context=log.context(name)))


@pytest.mark.parametrize("members", [1, 2])
def test_a_group_is_named_by_its_first_member(members):
    cases = tuple(case(n) for n in "xy"[:members])
    assert Group(cases).id == ("t/f/x" if members == 1 else "t/f/x+1")


def test_each_member_s_samples_round_trip_through_the_result_file_with_their_window(tmp_path):
    """Two passes of a two-member window, as the plugin records them: equal counts per pass, one window name."""
    log, bench = Recorder(), FakeBenchmark(max_time=0.0, min_rounds=4, warmup=1)
    a, b = case("a"), case("b")
    group = Group((a, b))
    passes = [window.time_group([window_member(log, "a"), window_member(log, "b")], TorchEager(), bench)[1]]
    bench = FakeBenchmark(max_time=0.0, min_rounds=6, warmup=1)  # a fresh item: its own rounds
    passes.append(window.time_group([window_member(log, "a"), window_member(log, "b")], TorchEager(), bench)[1])
    results = [
        Result(case=c.id, suite=c.suite, backend="torch-eager", stats=Stats.from_passes(
            [p[i] for p in passes], 1, group.window("torch-eager")))
        for i, c in enumerate((a, b))
    ]  # fmt: skip
    path = write_run(new_run(Device("Box", "box", "host", "x", 2, 1.0, "y"), results, "pytest-benchmark"), tmp_path)
    loaded = [r.stats for r in load_run(path).results]
    assert [s.window for s in loaded] == [f"{a.id}+1 [torch-eager]"] * 2
    assert [[len(p) for p in s.passes_s] for s in loaded] == [[4, 6], [4, 6]]


PAIR_MODULE = """
from opbench.suite import register
from test_window import PAIR_SUITE

register(PAIR_SUITE)
SUITE = "pair"


def test_pair(opbench_case, benchmark):
    opbench_case.measure(benchmark)
"""


def pair_plan(grid: str) -> Plan:
    p = Plan()
    narrow, wide, alone = (
        make_case("pair", "linear", v, functools.partial(nn.Linear, 8, width), (1, 8), "pair", v)
        for v, width in (("narrow", 8), ("wide", 512), ("alone", 16))
    )
    p.compare("wide vs narrow linear", narrow, wide)
    p.add(alone)
    return p


PAIR_SUITE = Suite("pair", "Two linears timed together", pair_plan)


def test_a_comparison_s_two_cases_are_one_item_per_pass_and_share_a_window_with_equal_counts(pytester, monkeypatch):
    """The case in no comparison keeps its own item, timed alone (no window); pytest-benchmark's JSON names the
    group's members."""
    here = [str(Path(__file__).parent), str(Path(__file__).parents[1])]  # PAIR_SUITE, and this tree's opbench
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(here))
    pytester.makeconftest('pytest_plugins = ["opbench.pytest_plugin"]')
    pytester.makepyfile(test_pair=PAIR_MODULE)
    out = pytester.path / "results"
    listed = pytester.runpytest_subprocess(*timed_args(pytester, out), "--collect-only", "-q")
    items = [line.split("[", 1)[1].rstrip("]") for line in listed.stdout.lines if "::test_pair[" in line]
    assert sorted(items) == sorted(
        f"pair/linear/{first}-{b}-pass{k}" for first in ("narrow+1", "alone") for b in ("torch-eager", "ort-cpu")
        for k in (1, 2)
    )  # fmt: skip
    timed = pytester.runpytest_subprocess(*timed_args(pytester, out))
    timed.assert_outcomes(passed=8)
    (path,) = out.rglob("*.json")
    run = load_run(path)
    by = {(r.case, r.backend): r.stats for r in run.results}
    for backend in ("torch-eager", "ort-cpu"):
        narrow, wide = by[("pair/linear/narrow", backend)], by[("pair/linear/wide", backend)]
        assert narrow.window == wide.window == f"pair/linear/narrow+1 [{backend}]"
        assert [len(p) for p in narrow.passes_s] == [len(p) for p in wide.passes_s] and len(narrow.passes_s) == 2
        assert by[("pair/linear/alone", backend)].window is None
        assert run.protocol["call_cost_s"][backend] is not None  # measured on the overhead suite's floor case
    bench = json.loads((pytester.path / "bench.json").read_text())
    grouped = [b for b in bench["benchmarks"] if "members" in b["extra_info"]]
    assert len(grouped) == 4 and all(
        b["extra_info"]["members"] == ["pair/linear/narrow", "pair/linear/wide"] and b["stats"]["iterations"] == 1
        for b in grouped
    )


def timed_args(pytester, out) -> list[str]:
    return [
        "-p", "no:cacheprovider", f"--opbench-results-dir={out}", f"--opbench-cache-dir={pytester.path / 'cache'}",
        "--benchmark-only", "--opbench-backends=torch-eager,ort-cpu", "--opbench-passes=2",
        "--opbench-export-workers=0", "--benchmark-max-time=0.002", "--benchmark-min-rounds=5",
        "--benchmark-warmup-iterations=1", "--benchmark-json=bench.json",
    ]  # fmt: skip
