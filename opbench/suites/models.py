"""The `models` suite: every zoo model as a case (`models/<name>`), the papers' headline claims as its rule, and
where each model's latency goes (a profiling pass per backend, shown as a breakdown by category).

The claims compare whole models end to end, at batch 1 and 224x224, on each (device, backend). Their thresholds
live here with the claims; the published iPhone 12 ratios come from device_results/reference/ and are shown beside
(never judged).
"""

from __future__ import annotations

import functools

from opbench.case import Case, make_case
from opbench.plan import Breakdowns, Comparison, ModelMap, Plan
from opbench.suite import Suite
from opbench.verdict import PartSpec, PartsRule, Threshold
from opbench.zoo import ZOO

KEY = "models"


@functools.cache
def model_case(name: str) -> Case:
    """The zoo model as a case: id models/<name>, the model's own input (224x224 at batch 1)."""
    model = ZOO[name]
    return make_case(KEY, "", name, model.factory, model.input_shape, KEY, model.title)


def model_comparison(name: str, baseline: str, candidate: str, role: str = "supporting") -> Comparison:
    """Two zoo models compared end to end (candidate / baseline latency), for this suite or another's evidence."""
    return Comparison(name, model_case(baseline), model_case(candidate), role)


WHOLE_MODEL_MARGIN = (
    "Whole models against each other: 2% is less than a runtime update moves a model's latency, so a difference "
    "that small decides no claim of speed."
)
AS_FAST = Threshold(
    "models.as_fast",
    1.1,
    "'Runs at the speed of': the candidate's latency over the baseline's stays below this.",
    margin=0.02,
    margin_reason=WHOLE_MODEL_MARGIN,
)
FASTER = Threshold(
    "models.faster",
    1.0,
    "'Faster than': the candidate's latency over the baseline's is below this.",
    margin=0.02,
    margin_reason=WHOLE_MODEL_MARGIN,
)
# (part name, candidate, baseline, threshold, what the paper says)
CLAIMS = (
    ("L1 at MobileNetV2 x1.4 speed", "efficientformer_l1", "mobilenetv2_x1.4", AS_FAST,
     "EfficientFormer-L1 runs as fast as MobileNetV2 x1.4 (1.6 ms each on iPhone 12)"),
    ("L1 faster than EfficientNet-B0", "efficientformer_l1", "efficientnet_b0", FASTER,
     "EfficientFormer-L1 runs 40% faster than EfficientNet-B0"),
    ("L7 faster than MobileViT-XS", "efficientformer_l7", "mobilevit_xs", FASTER,
     "EfficientFormer-L7 runs 0.2 ms faster than MobileViT-XS"),
    ("V2-S1 at MobileNetV2 x1.0 speed", "efficientformerv2_s1", "mobilenetv2_x1.0", AS_FAST,
     "EfficientFormerV2-S1 runs at MobileNetV2 x1.0 speed"),
    ("V2-S2 at MobileNetV2 x1.4 speed", "efficientformerv2_s2", "mobilenetv2_x1.4", AS_FAST,
     "EfficientFormerV2-S2 runs at MobileNetV2 x1.4 speed"),
)  # fmt: skip
# supporting evidence: what the observations predict at model level
SUPPORTING = (
    ("LeViT-256 HardSwish vs GELU (Obs 4; 44.5 vs 11.9 ms reported on iPhone 12)", "levit_256_gelu", "levit_256"),
    ("PoolFormer-S12 (7x7 s4 patch embedding, GN) vs EfficientFormer-L1", "efficientformer_l1", "poolformer_s12"),
    ("DeiT-S (16x16 patch embedding, LN, MHSA) vs LeViT-256 (GELU)", "levit_256_gelu", "deit_s"),
)


def plan(grid: str) -> Plan:
    p = Plan()
    for name in ZOO:
        p.add(model_case(name))
    for part, candidate, baseline, _, _ in CLAIMS:
        p.comparisons.append(model_comparison(f"{part}: {candidate} / {baseline}", baseline, candidate, part))
    for name, baseline, candidate in SUPPORTING:
        p.comparisons.append(model_comparison(name, baseline, candidate))
    p.extras.append(
        ModelMap(
            "Latency against accuracy (the paper's Figure 1)",
            "Each model's median latency here against its published ImageNet top-1, one panel per (device, "
            "backend); published iPhone 12 latencies in panels of their own, labelled published.",
            [(model_case(n), m.top1) for n, m in ZOO.items()],
        )
    )
    p.extras.append(
        Breakdowns(
            "Where the latency goes (the paper's Figure 2)",
            "Each model's profiled time by category on every backend with a profiler: stem / patch embedding, "
            "downsampling, token mixer, normalization, projections, activations, reshapes, head, other. Fused "
            "operators count where the runtime put them (BN folded into a convolution counts as the convolution). "
            "In brackets and in the table: coverage, profiled time over the end-to-end median of the same pass.",
            [model_case(n) for n in ZOO],
        )
    )
    return p


RULE = PartsRule(
    text=(
        "The papers' headline claims, each on its own: the candidate's latency over the baseline's, from the raw "
        "samples with a 95% interval. 'As fast as' holds when the interval lies below 1.1, 'faster than' when it "
        "lies below 1. The verdict holds when every claim holds; a claim that clearly fails makes it not hold. "
        "Claims: " + "; ".join(f"{c[4]}" for c in CLAIMS) + "."
    ),
    parts=tuple(
        PartSpec(
            part,
            f"{candidate} / {baseline}",
            threshold,
            "below",
            fails_means=f"{part.replace(' at ', ' is not at ').replace(' faster', ' is not faster')} here.",
        )
        for part, candidate, baseline, threshold, _ in CLAIMS
    ),  # fmt: skip
    holds_means="Every headline claim holds on this (device, backend).",
)

SUITE = Suite(
    key=KEY,
    title="Whole models: the papers' headline claims",
    claim="; ".join(c[4] for c in CLAIMS) + ".",
    plan=plan,
    rule=RULE,
    description=(
        "Every zoo model end to end (batch 1, 224x224, random weights), verified against eager on every backend, "
        "with where its latency goes on each backend that has a profiler."
    ),
    profile=True,
    # seven backends' copies of every zoo model, all held until their last pass, took 22 GB, and preparing them again
    # in every pass took minutes
    schedule="by_backend",
    # a model takes 5-300 ms a call and the claims' ratios are far from their thresholds: 4 rounds a pass, not 10;
    # no warm-up calls: pytest-benchmark's calibration call is one, and a model is warm after one call (it ran in its
    # check or the pass before), so a pass of a model is 6 calls (1 to calibrate, 4 timed, the result's), not 13
    timing=(("min_rounds", 4), ("warmup", False), ("max_time", 0.1)),
    # each pass loads every model again on every backend (1-14 s a backend): three passes of 0.1 s, not six of 0.05
    passes=3,
)
