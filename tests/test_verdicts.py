"""Verdict rules on constructed samples whose answer is known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from builders import MACS, in_passes, measured, samples

from opbench import stats
from opbench.stats import Estimate
from opbench.suite import get_suite, plans, suites
from opbench.verdict import STATUS_LABELS, Evidence, Measured, Target, Threshold, decide, fmt, share

TORCH = Target("host", "torch-eager", "Host")
ORT = Target("host", "ort-cpu", "Host")
PHONE = Target("phone", "coreml", "Phone", "import")


def judge(key: str, data: dict, target: Target = TORCH):
    (verdict,) = verdicts(key, {target: data})
    return verdict


def verdicts(key: str, by_target: dict):
    """The suite's rule on constructed data, through the one interface the report uses."""
    return get_suite(key).rule.verdicts(key, plans("default", [key])[key], Evidence(by_target))


def at(value: float, margin: float = 0.0) -> Threshold:
    """A constructed threshold (no margin unless given)."""
    return Threshold("constructed", value, "a constructed threshold", margin)


def threshold(key: str, name: str) -> float:
    return next(t.value for t in get_suite(key).thresholds if t.key == name)


# ---- the statistics underneath ----


def test_of_medians_matches_the_ratio_of_two_medians():
    a, b = np.asarray(samples(2e-3, spread=0.05, seed=11)), np.asarray(samples(1e-3, spread=0.05, seed=12))
    joint = stats.of_medians([a, b], [None, None], lambda m: m[0] / m[1])
    single = stats.ratio(a, b)
    assert joint.value == pytest.approx(single.value)
    assert joint.low == pytest.approx(single.low, rel=0.02) and joint.high == pytest.approx(single.high, rel=0.02)
    assert joint.low < 2.0 < joint.high


def test_drift_shared_by_both_sides_of_a_ratio_cancels_when_their_passes_line_up():
    drift = [1.0, 1.3, 0.8]  # the machine's speed in each pass of one run
    baseline = [samples(1e-3 * d, n=50) for d in drift]
    candidate = [samples(1.1e-3 * d, n=50) for d in drift]
    paired = stats.ratio(candidate, baseline)
    assert 1.05 < paired.low < 1.1 < paired.high < 1.15
    assert paired.passes == pytest.approx([1.1] * 3, rel=0.02)
    latency = stats.median(baseline)  # one set alone carries the drift
    assert latency.low < 0.9e-3 and latency.high > 1.2e-3
    apart = stats.ratio(candidate, baseline, by_pass=False)  # as if from two runs: passes drawn independently
    assert apart.low < 1.0 and apart.high > 1.3 and apart.passes == ()


def test_of_medians_without_samples_is_a_point_estimate():
    e = stats.of_medians([np.asarray(samples(2e-3)), None], [None, 1e-3], lambda m: m[0] / m[1])
    assert not e.has_interval and e.value == pytest.approx(2.0, rel=0.01)


def test_decide_straddles_and_sides():
    assert decide(Estimate(1.5, 1.2, 1.8), at(1.0), "above") == "holds"
    assert decide(Estimate(0.8, 0.7, 0.9), at(1.0), "above") == "does_not_hold"
    assert decide(Estimate(1.05, 0.95, 1.15), at(1.0), "above") == "inconclusive"
    assert decide(Estimate(1.5, 1.2, 1.8), at(2.0), "below") == "holds"
    assert decide(None, at(1.0), "above") == "not_measured"


def test_decide_apart_is_a_factor_either_way():
    assert decide(Estimate(1.3, 1.2, 1.4), at(1.1), "apart") == "holds"
    assert decide(Estimate(0.7, 0.6, 0.8), at(1.1), "apart") == "holds"
    assert decide(Estimate(1.02, 0.98, 1.05), at(1.1), "apart") == "does_not_hold"
    assert decide(Estimate(1.1, 1.0, 1.2), at(1.1), "apart") == "inconclusive"


# ---- Obs 1: large-kernel embedding slower per MAC ----


def obs1_latency(patch: float):
    """Patch embeddings `patch` times the stems (same MACs everywhere, so per MAC = latency ratio)."""
    return lambda case: 1e-3 * (patch if case.family in ("patch_embed",) or "patch_k" in case.variant else 1.0)


def test_obs1_clear_holds():
    v = judge("obs1", measured("obs1", obs1_latency(3.0)))
    assert v.status == "holds"
    assert v.key.value == pytest.approx(3.0, rel=0.02) and v.key.low > 1.0
    assert "obs1/patch_embed/deit_k16s16/c384" in v.case_ids and "obs1/stem/levit/c256" in v.case_ids
    assert "Holds on Host / torch-eager" in v.explanation and "3.0" in v.explanation
    assert not v.missing


def test_obs1_clear_does_not_hold():
    v = judge("obs1", measured("obs1", obs1_latency(0.4)))
    assert v.status == "does_not_hold"
    assert v.key.high < 1.0


def test_obs1_interval_straddling_the_threshold_is_inconclusive():
    # every case drawn from the same noisy distribution: ratios near 1 with intervals around it (a 95% interval
    # excludes 1 for about one draw in twenty: seed 0 is such a draw, 19 of seeds 0..19 straddle)
    v = judge("obs1", measured("obs1", lambda c: 1e-3, spread=0.3, seed=1))
    assert v.status == "inconclusive", v.explanation
    assert v.key.low < 1.0 < v.key.high
    assert "cannot tell" in v.explanation


def test_obs1_per_mac_uses_the_macs():
    data = measured("obs1", obs1_latency(1.0))  # same latency ...
    for cid, m in list(data.items()):
        if "/patch_embed/" in cid:  # ... for a quarter of the work: 4x the time per MAC
            data[cid] = Measured(cid, "ok", samples=m.samples, median_s=m.median_s, macs=MACS // 4)
    v = judge("obs1", data)
    assert v.status == "holds" and v.key.value == pytest.approx(4.0, rel=0.03)


def test_obs1_missing_cases_are_not_measured_and_listed():
    v = judge("obs1", {})
    assert v.status == "not_measured" and v.key is None
    assert any(m == "obs1/patch_embed/deit_k16s16/c384: not in any result" for m in v.missing)


def test_obs1_unsupported_case_is_missing_with_its_reason_and_the_rest_still_judged():
    data = measured("obs1", obs1_latency(3.0))
    data["obs1/patch_embed/deit_k16s16/c384"] = Measured("obs1/patch_embed/deit_k16s16/c384", "unsupported", "no op")
    v = judge("obs1", data)
    assert v.status == "holds"
    assert "obs1/patch_embed/deit_k16s16/c384: unsupported (no op)" in v.missing
    assert "Missing from this verdict" in v.explanation


def test_median_only_results_give_a_marked_point_estimate():
    data = {
        cid: Measured(cid, "ok", median_s=m.median_s, macs=MACS)
        for cid, m in measured("obs1", obs1_latency(2.0)).items()
    }
    v = judge("obs1", data, PHONE)
    assert v.status == "holds" and v.point_only and not v.key.has_interval
    assert "point estimate" in v.key_text and "point estimate" in v.explanation


# ---- Obs 2: reshapes cost a share of the stage, MHSA not a bottleneck ----


def obs2_latency(reshaped: float, mhsa_block: float):
    def latency(case):
        if case.family == "stage" and case.variant == "meta3d_reshaped":
            return 1e-3 * reshaped
        if case.family == "block" and case.variant == "meta3d":
            return 1e-3 * mhsa_block
        return 1e-3

    return latency


def test_obs2_holds_when_reshapes_cost_and_mhsa_is_cheap():
    v = judge("obs2", measured("obs2", obs2_latency(1.5, 1.2)))
    assert v.status == "holds", v.explanation
    assert v.key_unit == "share" and v.key.value == pytest.approx(1 / 3, rel=0.05)
    assert [p.status for p in v.parts] == ["holds", "holds"]


def test_obs2_does_not_hold_when_reshapes_are_free():
    v = judge("obs2", measured("obs2", obs2_latency(1.0, 1.2), spread=0.005))
    assert v.status == "does_not_hold", v.explanation
    assert v.parts[0].status == "does_not_hold" and "nearly free" in v.explanation


def test_obs2_does_not_hold_when_mhsa_is_the_bottleneck():
    v = judge("obs2", measured("obs2", obs2_latency(1.5, 5.0)))
    assert v.status == "does_not_hold" and v.parts[1].status == "does_not_hold"
    assert "MHSA itself is the bottleneck" in v.explanation


def test_obs2_missing_part_is_not_measured():
    latency = obs2_latency(1.5, 1.2)
    v = judge("obs2", measured("obs2", lambda c: None if c.family == "block" else latency(c)))
    assert v.status == "not_measured" and v.parts[0].status == "holds"
    assert any(m.startswith("obs2/block/meta3d") for m in v.missing)


# ---- stability: passes that disagree make any verdict inconclusive ----

RESHAPED = "obs2/stage/meta3d_reshaped/c448_h7_d4"


def obs2_in_passes(reshaped: list[float]):
    """Obs 2 measured in len(reshaped) passes of one run: the reshaped stage's time per pass, all else 1 ms."""
    data = measured("obs2", obs2_latency(1.0, 1.2), passes=len(reshaped))
    data[RESHAPED] = dataclasses.replace(in_passes([1e-3 * r for r in reshaped]), case=RESHAPED)
    return judge("obs2", data)


def test_a_steady_ten_percent_difference_holds_in_every_pass():
    v = obs2_in_passes([1.1, 1.1, 1.1, 1.1])
    assert v.status == "holds", v.explanation
    assert v.by_pass == ["holds"] * 4 and v.passes_agree
    assert v.parts[0].by_pass == ["holds"] * 4 and v.key.passes == pytest.approx([1 / 11] * 4, rel=0.1)


def test_a_drifting_pair_is_inconclusive_because_its_passes_disagree():
    v = obs2_in_passes([1.0, 1.0, 1.1, 1.1])  # the second half of the candidate's passes 10% slower
    assert v.status == "inconclusive", v.explanation
    assert v.by_pass == ["does_not_hold", "does_not_hold", "holds", "holds"] and v.passes_agree is False
    assert "passes disagree" in v.explanation and "does not hold in passes 1, 2" in v.explanation


def test_disagreeing_passes_overrule_a_clear_interval_and_one_pass_changes_nothing():
    assert decide(Estimate(1.5, 1.2, 1.8, passes=(1.6, 1.4)), at(1.0), "above") == "holds"
    assert decide(Estimate(1.5, 1.2, 1.8, passes=(1.6, 0.9)), at(1.0), "above") == "inconclusive"
    assert decide(Estimate(1.5, 1.2, 1.8), at(1.0), "above") == "holds"


def test_passes_of_different_runs_do_not_line_up():
    data = measured("obs2", obs2_latency(1.1, 1.2), passes=3)
    data[RESHAPED] = dataclasses.replace(data[RESHAPED], run_id="another run")
    v = judge("obs2", data)
    assert v.status == "holds" and v.by_pass == [] and v.passes_agree is None


# ---- Obs 3: Conv-BN faster than LN-Linear and GN-Conv ----


def obs3_latency(ln: float, gn: float):
    return lambda c: 1e-3 * (ln if c.variant == "ln_linear" else gn if c.variant.startswith("gn_") else 1.0)


def test_obs3_clear_holds():
    v = judge("obs3", measured("obs3", obs3_latency(1.3, 1.2)))
    assert v.status == "holds"
    assert v.key.value == pytest.approx(1.3, rel=0.02) and v.key.low > threshold("obs3", "obs3.ratio")
    assert len(v.parts[0].measured_rows) == 8  # 4 stages x (projection, MLP)


def test_obs3_does_not_hold_when_ln_linear_is_faster():
    v = judge("obs3", measured("obs3", obs3_latency(0.8, 1.2)))
    assert v.status == "does_not_hold" and "LN-Linear" in v.explanation


def test_obs3_straddling_is_inconclusive():
    v = judge("obs3", measured("obs3", obs3_latency(1.3, 1.0), spread=0.3))
    assert v.status == "inconclusive", v.explanation


def test_obs3_inside_the_margin_is_inconclusive_at_the_threshold():
    v = judge("obs3", measured("obs3", obs3_latency(1.005, 1.005), spread=0.002, passes=3))
    assert v.status == "at_threshold" and v.status_label == "inconclusive: at the threshold", v.explanation
    assert [p.status for p in v.parts] == ["at_threshold"] * 2
    assert "at the threshold" in v.explanation and "needs to be above 1 (margin 2%)" in v.explanation


# ---- margins: a side is decided only beyond the threshold's band ----


def test_a_margin_decides_only_beyond_its_band_and_an_interval_inside_it_is_at_the_threshold():
    t = at(1.0, margin=0.02)  # band [0.980, 1.020]
    assert decide(Estimate(1.03, 1.021, 1.04), t, "above") == "holds"
    assert decide(Estimate(1.01, 1.005, 1.015), t, "above") == "at_threshold"  # just inside the band
    assert decide(Estimate(1.01, 1.005, 1.015), at(1.0), "above") == "holds"  # which no margin would call
    assert decide(Estimate(1.02, 1.01, 1.03), t, "above") == "inconclusive"  # straddles an edge of the band
    assert decide(Estimate(0.985, 0.981, 0.99), t, "above") == "at_threshold"
    assert decide(Estimate(0.97, 0.965, 0.979), t, "above") == "does_not_hold"
    assert decide(Estimate(0.97, 0.965, 0.979), t, "below") == "holds"
    assert decide(Estimate(1.01), t, "below") == "at_threshold"  # a point estimate decides by its value
    assert STATUS_LABELS["at_threshold"] == "inconclusive: at the threshold"


def test_a_margin_bands_both_thresholds_of_apart():
    t = at(1.1, margin=0.02)  # bands [1.078, 1.122] and [0.891, 0.928]
    assert decide(Estimate(1.13, 1.125, 1.14), t, "apart") == "holds"
    assert decide(Estimate(1.1, 1.09, 1.11), t, "apart") == "at_threshold"
    assert decide(Estimate(0.91, 0.905, 0.915), t, "apart") == "at_threshold"
    assert decide(Estimate(1.05, 1.0, 1.07), t, "apart") == "does_not_hold"
    assert decide(Estimate(1.08, 1.06, 1.1), t, "apart") == "inconclusive"


def test_a_share_threshold_decides_as_the_ratio_it_stands_for():
    t = at(0.05, margin=0.01)
    low, high = t.band("share")
    assert low == pytest.approx(0.0405, abs=1e-4) and high == pytest.approx(0.0594, abs=1e-4)
    as_ratio = dataclasses.replace(t, value=1 / 0.95)
    for e in (Estimate(1.05, 1.045, 1.055), Estimate(1.1, 1.07, 1.12), Estimate(1.03, 1.02, 1.04)):
        assert decide(share(e), t, "above", "share") == decide(e, as_ratio, "above")
    assert decide(share(Estimate(1.0526, 1.046, 1.06)), t, "above", "share") == "at_threshold"


def test_every_built_in_threshold_states_its_margin_and_why():
    for suite in suites().values():
        for t in suite.thresholds:
            assert t.margin > 0 and len(t.margin_reason) > 40, t.key


# ---- Obs 4: across (device, backend) pairs ----


def obs4_data(hardswish: float, spread: float = 0.01, seed: int = 0):
    return measured("obs4", lambda c: 1e-4 * (hardswish if c.variant == "hardswish" else 1.0), spread, seed)


def judge4(by_target: dict):
    (verdict,) = verdicts("obs4", by_target)
    return verdict


def test_obs4_single_pair_needs_another_backend():
    v = judge4({TORCH: obs4_data(2.0)})
    assert v.status == "inconclusive" and v.target is None
    assert "needs another backend" in v.explanation
    shown = dict(item.split(" ") for item in v.by_target[TORCH].split(", "))
    assert float(shown["hardswish"].rstrip("x")) == pytest.approx(2.0, abs=0.03)


def test_obs4_holds_when_an_activation_ratio_differs_between_pairs():
    v = judge4({TORCH: obs4_data(1.0), ORT: obs4_data(2.0, seed=1)})
    assert v.status == "holds", v.explanation
    assert v.key.value == pytest.approx(2.0, rel=0.03) and v.key.low > threshold("obs4", "obs4.difference")
    assert "hardswish" in v.key_label and "Host / ort-cpu over Host / torch-eager" in v.key_label


def test_obs4_does_not_hold_when_every_ratio_agrees():
    v = judge4({TORCH: obs4_data(1.5), ORT: obs4_data(1.5, seed=1)})
    assert v.status == "does_not_hold", v.explanation
    assert all(p.status == "does_not_hold" for p in v.parts)


def test_obs4_noisy_difference_is_inconclusive():
    v = judge4({TORCH: obs4_data(1.0, spread=0.4), ORT: obs4_data(1.15, spread=0.4, seed=1)})
    assert v.status == "inconclusive", v.explanation


def test_obs4_ranking_swap_holds_even_below_the_difference_threshold():
    def data(gelu: float, silu: float, seed: int):
        rates = {"gelu_erf": gelu, "silu": silu}
        return measured("obs4", lambda c: 1e-4 * rates.get(c.variant, 1.0), spread=0.002, seed=seed)

    v = judge4({TORCH: data(1.30, 1.35, 0), ORT: data(1.35, 1.30, 1)})  # each ratio differs by < 1.1x, order swaps
    assert v.status == "holds", v.explanation
    assert "faster than" in v.explanation


def test_obs4_nothing_measured():
    v = judge4({TORCH: {}})
    assert v.status == "not_measured"


def test_fmt_marks_point_estimates_and_shares():
    assert fmt(Estimate(2.0, 1.9, 2.1)) == "2.00x [1.90, 2.10]"
    assert fmt(Estimate(2.0)) == "2.00x (point estimate)"
    assert fmt(Estimate(0.25, 0.2, 0.3), "share") == "25.0% [20.0%, 30.0%]"


def test_every_observation_has_a_rule_and_its_thresholds_exist():
    observations = [s for s in suites().values() if s.claim]
    assert [s.key for s in observations] == ["obs1", "obs2", "obs3", "obs4", "models"]
    for suite in observations:
        assert suite.rule is not None and suite.rule.text
        assert suite.thresholds and all(t.key.startswith(suite.key + ".") for t in suite.thresholds)


def test_every_comparison_a_rule_uses_names_one_of_its_parts():
    """A role that names no part would silently drop the comparison from the verdict."""
    for key, suite in suites().items():
        parts = {p.name for p in getattr(suite.rule, "parts", ())}
        for comparison in plans("default", [key])[key].comparisons:
            assert comparison.role == "supporting" or comparison.role in parts or not parts, comparison
