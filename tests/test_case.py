"""Cases: construction at the paper's shapes, stable ids, cost counting."""

import pytest
import torch

from opbench.errors import OpbenchError
from opbench.shapes import stages
from opbench.suite import plans, select_cases, suites


def by_id(cases):
    return {c.id: c for c in cases}


def test_every_case_builds_and_runs_at_batch_one():
    for case in select_cases():
        with torch.inference_mode():
            out = case.build()(case.example_input())
        assert case.input_shape[0] == 1 and out.shape[0] == 1, case.id
        assert torch.isfinite(out).all(), case.id


def test_ids_are_unique_and_stable():
    ids = [c.id for c in select_cases(grid="full")]
    assert len(ids) == len(set(ids))
    known = {
        "obs1/patch_embed/deit_k16s16/c384",
        "obs1/stem/levit/c256",
        "obs1/stem/efficientformer/c48",
        "obs1/sweep/patch_k8s8/c64",
        "obs2/mixer/mhsa_3d/c448_h7",
        "obs2/stage/alternating/c448_h7_d4",
        "obs3/mlp/ln_linear/c224_h14",
        "obs4/act/hardswish/c1792_h7",
        "overhead/floor/add_one",
    }
    assert known <= set(ids)
    assert [c.id for c in select_cases()] == [c.id for c in select_cases()]


def test_macs_and_params_counted_by_flop_counter():
    cases = by_id(select_cases(keys=["obs1"]))
    deit = cases["obs1/patch_embed/deit_k16s16/c384"].costs
    assert deit.macs == 14 * 14 * 384 * 3 * 16 * 16
    assert deit.param_count == 384 * 3 * 16 * 16 + 384
    poolformer = cases["obs1/patch_embed/poolformer_k7s4p2/c64"].costs
    assert poolformer.macs == 56 * 56 * 64 * 3 * 7 * 7
    assert cases["obs1/sweep/patch_k2s2/c64"].costs.bytes > 3 * 224 * 224 * 4


def test_matched_output_comparisons():
    for plan in plans().values():
        for comparison in plan.comparisons:
            with torch.inference_mode():
                a = comparison.baseline.build()(comparison.baseline.example_input())
                b = comparison.candidate.build()(comparison.candidate.example_input())
            if comparison.baseline.suite in ("obs1",):
                assert a.shape[-2:] == b.shape[-2:], comparison.name
            elif comparison.baseline.family != "reshape" and comparison.candidate.family != "reshape":
                assert a.numel() == b.numel(), comparison.name


def test_default_grid_is_l1_and_full_adds_l3_l7():
    assert [(s.width, s.resolution) for s in stages("default")] == [(48, 56), (96, 28), (224, 14), (448, 7)]
    assert len(stages("full")) == 12
    assert len(select_cases(grid="full")) > len(select_cases())
    with pytest.raises(OpbenchError, match="unknown grid"):
        stages("huge")


def test_selection_by_suite_and_glob():
    assert {c.suite for c in select_cases(keys=["obs3"])} == {"obs3"}
    assert {c.id for c in select_cases(keys=["overhead"])} == {
        "overhead/floor/add_one",
        "overhead/aa/conv1x1_bn/c448_h7",
        "overhead/aa/conv1x1_bn_copy/c448_h7",
    }
    assert all(c.id.startswith("obs4/act/") for c in select_cases(pattern="obs4/act/*"))
    with pytest.raises(OpbenchError, match="unknown suite"):
        select_cases(keys=["obs9"])


def test_build_is_deterministic_and_randomizes_bn_statistics():
    case = by_id(select_cases(keys=["obs3"]))["obs3/proj/conv1x1_bn/c48_h56"]
    a, b = case.build(), case.build()
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    assert not torch.equal(a[1].running_var, torch.ones_like(a[1].running_var))
    assert not any(p.requires_grad for p in a.parameters())
    assert case.fingerprint == by_id(select_cases(keys=["obs3"]))[case.id].fingerprint


def test_stage_variants_share_their_blocks():
    cases = by_id(select_cases(keys=["obs2"]))
    count = {
        v: cases[f"obs2/stage/{v}/c448_h7_d4"].costs for v in ("meta3d", "meta3d_reshaped", "alternating", "grouped")
    }
    assert count["meta3d"].param_count == count["meta3d_reshaped"].param_count
    assert count["meta3d"].macs == count["meta3d_reshaped"].macs
    assert count["alternating"].param_count == count["grouped"].param_count


def test_every_observation_has_claim_and_comparisons():
    for key, suite in suites().items():
        if not suite.rule:
            continue
        plan = suite.plan("default")
        assert suite.claim and plan.comparisons, key
        ids = {c.id for c in plan.cases}
        assert all(c.baseline.id in ids and c.candidate.id in ids for c in plan.comparisons)
