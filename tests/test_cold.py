"""Cold-weight timing (opbench.measure.cold): a constructed backend that counts which copy ran, the copy count from
the last-level cache, its record in the result file, and the order that times the block table beside the models."""

from __future__ import annotations

import contextlib
import io

import pytest
from builders import COUNTING_CONFTEST
from torch import nn

from opbench import export
from opbench.backends import export_format
from opbench.backends.base import RunConfig
from opbench.backends.torch_eager import TorchEager
from opbench.cache import ArtifactCache
from opbench.case import COLD_SUFFIX, make_case
from opbench.lookup.table import cold_id, table
from opbench.measure import cold, window
from opbench.measure.order import Slot, anchors, sequence
from opbench.measure.path import prepare, prepare_cold, time_pass, to_result
from opbench.plan import Plan
from opbench.results import ColdWeights, Device, load_run, new_run, validate, write_run
from opbench.suite import Suite
from opbench.suites import block_table

LLC = cold.LastLevelCache(4096, "constructed")
CONFIG = RunConfig()


def linear():
    return nn.Linear(8, 8)  # 8 x 8 + 8 weights: 288 bytes


CASE = make_case("t", "f", "linear", linear, (1, 8), "t")


class FakeBenchmark:
    """pytest-benchmark's fixture as window.py uses it: no time per case, five rounds after one warm-up round."""

    _max_time, _min_rounds, _warmup = 0.0, 5, 1

    def pedantic(self, target, rounds, iterations, warmup_rounds):
        for _ in range(rounds):
            target()


class Counting(TorchEager):
    """torch-eager whose every prepared copy logs its number when it runs, enters its context and is checked; the
    copy numbered `wrong` answers the check wrongly."""

    def __init__(self, wrong: int | None = None) -> None:
        self.ran, self.entered, self.checked, self.wrong = [], [], [], wrong

    def prepare(self, case, config):
        prepared, copy = super().prepare(case, config), len(self.checked)
        assert config.copy == copy  # a backend that keeps what it prepared can tell the copies apart
        self.checked.append(0)
        run, infer, context = prepared.run, prepared.infer, prepared.context

        def counted():
            self.ran.append(copy)
            return run()

        def checked():
            self.checked[copy] += 1
            return infer() + (1.0 if copy == self.wrong else 0.0)

        @contextlib.contextmanager
        def entered():
            self.entered.append(copy)
            with context():
                yield

        prepared.run, prepared.infer, prepared.context = counted, checked, entered
        return prepared


def test_a_cold_case_is_its_hot_twin_with_the_id_suffix_its_fingerprint_and_its_costs():
    twin = CASE.cold()
    assert twin.id == CASE.id + COLD_SUFFIX and twin.weights == "cold" and twin.hot is CASE
    assert twin.fingerprint == CASE.fingerprint and twin.costs == CASE.costs
    assert CASE.hot is CASE and CASE.costs.weight_bytes == (64 + 8) * 4


def test_every_timed_call_goes_to_the_next_copy_round_robin_through_all_of_them():
    backend = Counting()
    outcome = prepare_cold(CASE.cold(), backend, CONFIG, LLC)
    copies = cold.copies_needed(CASE.costs.weight_bytes, LLC.bytes)
    assert outcome.status == "ok" and copies == 29 and outcome.weights.copies == copies
    assert backend.checked == [1] * copies  # every copy checked against eager, once

    timed_from = []

    def timer(run):  # pytest-benchmark's loop, three times round
        timed_from.append(len(backend.ran))
        for _ in range(3 * copies):
            run()

    assert time_pass(outcome, backend, timer).status == "ok"
    (start,) = timed_from
    assert backend.ran[start:] == list(range(copies)) * 3
    assert sorted(backend.entered) == list(range(copies))  # every copy's context entered around the timing


def test_every_copy_runs_warm_before_the_first_timed_call():
    backend = Counting()
    outcome = prepare_cold(CASE.cold(), backend, CONFIG, LLC)
    copies = outcome.weights.copies
    warmed = []
    time_pass(outcome, backend, lambda run: warmed.append(list(backend.ran)))
    (before,) = warmed
    assert set(before) == set(range(copies))  # each copy called before the timer saw any
    assert before == list(range(copies)) * cold.WARM_CALLS


def test_a_window_times_a_cold_member_on_another_copy_each_round():
    backend = Counting()
    cold_member = prepare_cold(CASE.cold(), backend, CONFIG, LLC)
    hot = prepare(make_case("t", "f", "hot", linear, (1, 8), "t"), TorchEager(), CONFIG)
    bench = FakeBenchmark()
    outcomes, samples = window.time_group([cold_member, hot], backend, bench)
    assert [o.status for o in outcomes] == ["ok", "ok"] and len(samples[0]) == len(samples[1]) == 5
    warm = 29 * cold.WARM_CALLS  # every copy warmed when the window enters its context
    assert backend.ran == [i % 29 for i in range(len(backend.ran))] and len(backend.ran) == warm + 6  # 1 round + 5


def test_a_copy_that_fails_its_check_fails_the_cold_case_and_names_the_copy():
    outcome = prepare_cold(CASE.cold(), Counting(wrong=2), CONFIG, LLC)
    assert outcome.status == "failed" and outcome.reason.startswith("copy 3 of 29 (weights cold): torch-eager output")


@pytest.mark.parametrize(
    ("weight_bytes", "llc", "expected"),
    [(2**20, 32 * 2**20, 64), (2 * 2**20, 32 * 2**20, 32), (3 * 2**20, 32 * 2**20, 22), (100_000, 32 * 2**20, 64),
     (100 * 2**20, 32 * 2**20, 2), (0, 32 * 2**20, 2)],
)  # fmt: skip
def test_copies_hold_twice_the_last_level_cache_from_two_to_the_cap(weight_bytes, llc, expected):
    copies = cold.copies_needed(weight_bytes, llc)
    assert copies == expected
    assert copies * weight_bytes <= max(4 * llc, cold.MIN_COPIES * weight_bytes)  # the memory the copies take


def cache_dir(root, *indices):
    for i, (level, kind, size) in enumerate(indices):
        (folder := root / f"index{i}").mkdir(parents=True)
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (folder / name).write_text(f"{value}\n")
    return root


def test_the_last_level_cache_is_level_3_from_sysfs_else_the_largest_else_a_fallback_with_the_reason(tmp_path):
    three = cache_dir(tmp_path / "a", (1, "Data", "48K"), (2, "Unified", "1024K"), (3, "Unified", "32768K"))
    assert cold.last_level_cache(three) == cold.LastLevelCache(32 * 2**20, str(three / "index2" / "size"))
    two = cache_dir(tmp_path / "b", (1, "Instruction", "64M"), (2, "Unified", "2M"), (1, "Data", "32K"))
    assert cold.last_level_cache(two).bytes == 2 * 2**20
    broken = cache_dir(tmp_path / "c", (3, "Unified", "lots"))
    fallback = cold.last_level_cache(broken)
    assert fallback.bytes == cold.FALLBACK_LLC_BYTES and fallback.source.startswith("fallback 32 MiB: no readable")
    assert cold.last_level_cache(tmp_path / "missing").bytes == cold.FALLBACK_LLC_BYTES


@pytest.mark.parametrize("text", ["", "K", "-1K", "0", "12T", "1.5M"])
def test_a_cache_size_sysfs_would_not_write_is_refused(text):
    with pytest.raises(ValueError, match="not a cache size"):
        cold.parse_size(text)


def test_the_cold_record_round_trips_through_the_result_file_and_a_hot_result_has_none(tmp_path):
    backend = TorchEager()
    twin = CASE.cold()
    outcome = prepare_cold(twin, backend, CONFIG, LLC)
    timed = to_result(twin, backend, outcome, CONFIG, None, None)
    hot = to_result(CASE, backend, prepare(CASE, backend, CONFIG), CONFIG, None, None)
    path = write_run(
        new_run(Device("Box", "box", "host", "x", 2, 1.0, "y"), [timed, hot], "pytest-benchmark"), tmp_path
    )
    loaded, loaded_hot = load_run(path).results
    assert loaded.weights == timed.weights == ColdWeights(29, 288, 4096, "constructed", outcome.weights.prepare_s)
    assert loaded.case.removesuffix(COLD_SUFFIX) == loaded_hot.case and loaded_hot.weights is None
    data = loaded.to_json()["weights"]
    assert data["total_weight_bytes"] == 29 * 288 and data["reaches_2x_llc"] is True and data["state"] == "cold"
    assert "weights" not in loaded_hot.to_json()


def test_a_schema_3_file_loads_with_every_result_hot(tmp_path):
    result = to_result(CASE, TorchEager(), prepare(CASE, TorchEager(), CONFIG), CONFIG, None, None)
    data = new_run(Device("Box", "box", "host", "x", 2, 1.0, "y"), [result], "pytest-benchmark").to_json()
    data["schema"] = "opbench-results/3"
    assert validate(data, "old file")["results"][0].get("weights") is None


def suite(key: str, schedule: str = "interleaved", same_window: tuple[str, ...] = ()) -> Suite:
    return Suite(key, key, lambda grid: Plan(), schedule=schedule, same_window=same_window)


SUITES = {
    "obs1": suite("obs1"),
    "overhead": suite("overhead"),
    "blocks": suite("blocks", same_window=("models", "overhead")),
    "models": suite("models", "by_backend"),
}


def slots(keys, backends=("a", "b"), passes=2):
    return [Slot(k, b, p, 0) for p in range(1, passes + 1) for k in keys for b in backends]


def ordered(keys):
    given = slots(keys)
    return [(s.suite, s.backend, s.pass_index) for s in (given[i] for i in sequence(given, SUITES, "default"))]


def test_the_block_table_the_models_and_the_floor_run_in_the_same_passes_backend_by_backend():
    order = ordered(["obs1", "overhead", "blocks", "models"])
    joint = [
        (k, b, p) for b in "ab" for p in (1, 2) for k in (["overhead", "blocks", "models"][:: 3 - 2 * p])
    ]  # pass 2 runs the suites in the reverse order
    assert order == [("obs1", b, p) for p in (1, 2) for b in "ab"] + joint


def test_without_the_models_the_table_and_the_floor_stay_interleaved():
    assert anchors(["overhead", "blocks"], SUITES, "default") == {"overhead": None, "blocks": None}
    assert ordered(["overhead", "blocks"]) == [(k, b, p) for p in (1, 2) for k in ("overhead", "blocks") for b in "ab"]


def test_without_the_table_the_floor_stays_interleaved_and_the_models_run_last():
    assert anchors(["overhead", "models"], SUITES, "default") == {"overhead": None, "models": "models"}
    assert ordered(["models", "overhead"]) == [("overhead", b, p) for p in (1, 2) for b in "ab"] + [
        ("models", b, p) for b in "ab" for p in (1, 2)
    ]


COLD_CONFTEST = (
    """
import dataclasses
import opbench.suites.overhead as overhead
from opbench.backends import REGISTRY
from opbench.backends.torch_eager import TorchEager

hot_plan = overhead.SUITE.plan

def plan(grid):
    p = hot_plan(grid)
    for case in list(p.cases):
        p.add(case.cold())
    return p

overhead.SUITE = dataclasses.replace(overhead.SUITE, plan=plan)

"""
    + COUNTING_CONFTEST
)


def test_a_timed_run_prepares_a_cold_case_s_copies_again_each_pass_and_records_them(pytester):
    """A cold case's copies are made again each pass, as every case is (every cold block's copies held until its last
    pass would not fit in memory), of the hot twin, whose export they share; the result names the cold case and
    carries its record."""
    pytester.makeconftest(COLD_CONFTEST)
    pytester.makepyfile(test_overhead='SUITE = "overhead"\n\n\ndef test_cases(opbench_case, benchmark):\n'
                        "    opbench_case.measure(benchmark)\n")  # fmt: skip
    out = pytester.path / "results"
    result = pytester.runpytest_subprocess(
        "--opbench-backends=counting", "--opbench-passes=2", "--opbench-cases=overhead/floor/add_one*",
        "--benchmark-max-time=0.001", "--benchmark-min-rounds=3", "--opbench-export-workers=0", "-p",
        "no:cacheprovider", f"--opbench-cache-dir={pytester.path / 'cache'}", f"--opbench-results-dir={out}",
    )  # fmt: skip
    result.assert_outcomes(passed=4)
    prepared = (pytester.path / "prepared.txt").read_text().split()
    assert prepared == ["overhead/floor/add_one"] * 2 * (1 + cold.MIN_COPIES)  # each pass: the hot case, two copies
    (path,) = out.rglob("*.json")
    by_id = {r.case: r for r in load_run(path).results}
    hot, timed = by_id["overhead/floor/add_one"], by_id["overhead/floor/add_one" + COLD_SUFFIX]
    assert hot.weights is None and len(hot.stats.passes_s) == len(timed.stats.passes_s) == 2
    assert timed.weights.copies == cold.MIN_COPIES and timed.weights.copy_weight_bytes == 0
    assert timed.weights.llc_bytes > 0 and timed.weights.llc_source
    assert load_run(path).protocol["cold_weights"]["llc_bytes"] == timed.weights.llc_bytes


def test_an_export_for_another_device_leaves_a_cold_case_out(tmp_path):
    """A device's tool times one package, hot; a cold case's package would be its hot twin's again."""
    fmt = export_format("onnx", "float32")
    manifest = export.export_cases(
        [CASE, CASE.cold()], fmt, tmp_path / "out", ArtifactCache(tmp_path), log=io.StringIO()
    )
    assert [e["case"] for e in manifest["entries"]] == [CASE.id]


def test_the_blocks_suite_keeps_every_table_case_as_it_was_with_its_cold_twin_after_it():
    """The hot ids (and so their fingerprints and cached exports) do not move; each cold twin runs next to its hot
    case in a pass, never in its window (a window's other members would evict the hot case's weights)."""
    cases = block_table.plan("default")
    hot = table(block_table.KEY).cases
    assert cases.cases == [c for h in hot for c in (h, h.cold())] and not cases.comparisons
    assert all(c.id.endswith(COLD_SUFFIX) == (c.weights == "cold") for c in cases.cases)
    assert [c.id for c in cases.cases if c.weights == "cold"] == [cold_id(h.id) for h in hot]  # what predict reads
