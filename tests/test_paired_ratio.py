"""The paired ratio of two cases timed round by round in one window, on constructed timings whose answer is known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from builders import in_passes, in_window, samples

from opbench import stats
from opbench.verdict import Measured, Threshold, decide, geomean_of_rows

TRUE_RATIO = 1.1
ROUNDS = 200


def step_halfway(k: int, i: int) -> float:
    """The machine 20% slower from the middle of every window on."""
    return 1.2 if i >= ROUNDS // 2 else 1.0


def test_a_speed_step_halfway_through_a_window_leaves_the_paired_ratio_true_and_moves_the_unpaired_one():
    candidate, baseline = in_window([1.1e-3, 1e-3], step_halfway, rounds=ROUNDS, seed=3)
    paired = stats.ratio(candidate, baseline, windows=("w", "w"))
    assert paired.paired and paired.value == pytest.approx(TRUE_RATIO, rel=0.01)
    assert paired.low < TRUE_RATIO < paired.high and paired.high / paired.low - 1 < 0.02
    # the same machine timing each side in a block of its own, as a pass does: the baseline before the step, the
    # candidate after it
    half = ROUNDS // 2
    before = tuple(p[:half] for p in baseline)
    after = tuple(p[half:] for p in candidate)
    apart = stats.ratio(after, before)
    assert not apart.paired and apart.value > TRUE_RATIO * 1.15 and apart.low > TRUE_RATIO
    # the interleaved samples without their window: unpaired, and the step widens the interval several times over
    unpaired = stats.ratio(candidate, baseline)
    assert not unpaired.paired
    assert unpaired.high / unpaired.low - 1 > 3 * (paired.high / paired.low - 1)


def test_the_paired_ratio_is_the_exponential_of_the_mean_of_its_passes_median_log_ratios():
    candidate, baseline = in_window([2e-3, 1e-3], lambda k, i: (1.0, 1.3, 0.8)[k], rounds=51, spread=0.05, seed=4)
    e = stats.ratio(candidate, baseline, windows=("w", "w"))
    logs = [np.median(np.log(np.asarray(c) / np.asarray(b))) for c, b in zip(candidate, baseline, strict=True)]
    assert e.value == pytest.approx(float(np.exp(np.mean(logs))))
    assert e.passes == pytest.approx(np.exp(logs).tolist())


def test_an_aa_pair_in_one_window_never_holds_and_its_interval_holds_one():
    holds_1 = 0
    for seed in range(40):
        drift = np.random.default_rng(seed).uniform(0.8, 1.25, size=(3, 4))  # steps between tenths of a second
        a, b = in_window([1e-3, 1e-3], lambda k, i, d=drift: d[k, i * 4 // ROUNDS], rounds=ROUNDS, seed=100 + seed)
        e = stats.ratio(a, b, windows=("w", "w"))
        assert e.paired
        for side in ("above", "below"):
            assert decide(e, Threshold("aa", 1.0, "A/A", margin=0.02), side) != "holds"
        holds_1 += e.low <= 1.0 <= e.high
    assert holds_1 >= 38  # an honest 95% interval: about 38 of 40; here it holds 1 in (nearly) every one


def test_the_paired_form_is_used_only_when_both_sides_share_a_window_and_pass_lengths():
    candidate, baseline = in_window([1.1e-3, 1e-3], rounds=30, seed=5)
    assert stats.ratio(candidate, baseline, windows=("w", "w")).paired
    assert not stats.ratio(candidate, baseline, windows=("w", "v")).paired
    assert not stats.ratio(candidate, baseline, windows=(None, None)).paired
    assert not stats.ratio(candidate, baseline).paired
    shorter = tuple(p[:-1] for p in candidate)
    assert not stats.ratio(shorter, baseline, windows=("w", "w")).paired
    assert not stats.ratio(candidate, [1.0e-3], 1.1e-3, 1e-3, windows=("w", "w")).paired  # a point estimate


def test_a_window_pairs_only_within_its_run():
    candidate, baseline = in_window([1.1e-3, 1e-3], rounds=30, seed=6)
    c = Measured("c", samples=candidate, median_s=stats.center(candidate), run_id="r1", window="g")
    b = Measured("b", samples=baseline, median_s=stats.center(baseline), run_id="r1", window="g")
    assert stats.of_ratios([(c.sample_set, b.sample_set)], lambda r: r[0]).paired
    elsewhere = dataclasses.replace(b, run_id="r2")  # the same window name in another run
    assert not stats.of_ratios([(c.sample_set, elsewhere.sample_set)], lambda r: r[0], by_pass=False).paired


def test_a_geometric_mean_is_paired_when_every_ratio_in_it_is():
    @dataclasses.dataclass
    class Row:
        candidate: str
        baseline: str
        factor: float = 1.0

    base, one, two = in_window([1e-3, 1.2e-3, 1.5e-3], step_halfway, rounds=ROUNDS, seed=7)
    data = {
        name: Measured(name, samples=s, median_s=stats.center(s), run_id="r", window="g")
        for name, s in (("base", base), ("one", one), ("two", two))
    }
    rows = [Row("one", "base"), Row("two", "base")]
    both = geomean_of_rows(rows, data)
    assert both.paired and both.value == pytest.approx(np.sqrt(1.2 * 1.5), rel=0.01)
    data["two"] = dataclasses.replace(data["two"], window=None)
    assert not geomean_of_rows(rows, data).paired


def test_sets_timed_alone_keep_the_unpaired_ratio_of_their_centers():
    candidate, baseline = in_passes([1.1e-3] * 3).samples, in_passes([1e-3] * 3).samples
    e = stats.ratio(candidate, baseline)
    assert not e.paired and e.value == pytest.approx(stats.center(candidate) / stats.center(baseline))
    assert stats.median(samples(1e-3)).paired is False


def test_the_expansion_for_few_passes_is_hesterbergs_and_leaves_one_pass_alone():
    assert stats.expansion(1) == 1.0
    assert stats.expansion(3) == pytest.approx(2.689, abs=1e-3)
    assert stats.expansion(5) == pytest.approx(1.584, abs=1e-3)
    assert stats.expansion(3) > stats.expansion(5) > stats.expansion(10) > stats.expansion(100) > 1.0


def test_intervals_over_three_passes_hold_the_truth_when_each_pass_lands_somewhere_else():
    """Two identical cases whose instances sit somewhere else in memory each pass: every pass's paired ratio is off
    by a fixed amount of its own (sd 0.4%, as two prepared copies of one case measured here), plus round noise. The
    interval of a run must hold the true ratio, 1, in about 95% of runs; the plain percentile interval of three
    passes held it in 162 of these 200."""
    rng = np.random.default_rng(7)
    held = 0
    for run in range(200):
        offsets = rng.normal(0, 0.004, size=3)
        a = [list(1e-3 * np.exp(rng.normal(0, 0.01, size=50))) for _ in offsets]
        b = [list(np.asarray(p) * np.exp(o + rng.normal(0, 0.002, size=50))) for p, o in zip(a, offsets, strict=True)]
        e = stats.ratio(b, a, windows=(run, run))
        assert e.paired
        held += e.low <= 1.0 <= e.high
    assert held >= 0.9 * 200
