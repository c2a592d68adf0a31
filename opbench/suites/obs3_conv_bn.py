"""Observation 3: CONV-BN is more latency-favorable than LN (GN)-Linear.

At every stage shape: the projection C -> 4C as Conv1x1 + BN (4D, BN foldable), LN + Linear (3D) and
GroupNorm(1) + Conv1x1 (4D, PoolFormer); then the whole MLP in the same three forms.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from opbench import blocks
from opbench.case import image, make_case, tokens
from opbench.plan import SUPPORTING, Breakdowns, Plan
from opbench.shapes import stages
from opbench.suite import Suite
from opbench.suites.models import model_case
from opbench.verdict import PartSpec, PartsRule, Threshold

KEY = "obs3"


def conv1x1_bn(c: int) -> nn.Module:
    """Conv1x1 (C -> 4C) + BN, 4D"""
    return blocks.conv_bn(c, 4 * c, 1)


def ln_linear(c: int) -> nn.Module:
    """LN + Linear (C -> 4C), 3D tokens"""
    return nn.Sequential(nn.LayerNorm(c), nn.Linear(c, 4 * c))


def gn_conv1x1(c: int) -> nn.Module:
    """GroupNorm(1) + Conv1x1 (C -> 4C), 4D"""
    return nn.Sequential(nn.GroupNorm(1, c), nn.Conv2d(c, 4 * c, 1))


LN, GN = "LN-Linear", "GN-Conv"  # the rule's parts, and the roles of the comparisons that feed them


@dataclass(frozen=True)
class Form:
    """One normalized projection: a factory of C, whether it takes 4D input, its name, and the rule part its
    comparison against Conv-BN feeds (SUPPORTING: shown and quantified, not judged)."""

    factory: Callable[[int], nn.Module]
    four_d: bool
    name: str
    role: str = SUPPORTING


# family -> variant -> form; the first form of each family is the Conv-BN baseline
FORMS = {
    "proj": {
        "conv1x1_bn": Form(conv1x1_bn, True, "Conv-BN"),
        "ln_linear": Form(ln_linear, False, LN, LN),
        "gn_conv1x1": Form(gn_conv1x1, True, GN, GN),
    },
    "mlp": {
        "conv_bn": Form(blocks.conv_mlp, True, "Conv-BN"),
        "ln_linear": Form(blocks.linear_mlp, False, LN, LN),
        "gn_conv": Form(blocks.gn_conv_mlp, True, GN, GN),
    },
}
WHAT = {"proj": "projection C->4C", "mlp": "MLP"}


def plan(grid: str) -> Plan:
    p = Plan()
    for s in stages(grid):
        c, h = s.width, s.resolution
        for family, forms in FORMS.items():
            group = f"obs3 {family} c{c} {h}x{h}"
            shape = {True: image(c, h), False: tokens(c, h)}
            (base_form, baseline), *others = (
                (form, make_case(
                    KEY, family, variant, functools.partial(form.factory, c), shape[form.four_d], group,
                    form.factory.__doc__.strip().splitlines()[0], c=c, h=h,
                ))
                for variant, form in forms.items()
            )  # fmt: skip
            for form, case in others:
                name = f"{form.name} vs {base_form.name} {WHAT[family]} ({s.label})"
                p.compare(name, baseline, case, form.role)
    p.extras.append(
        Breakdowns(
            "In whole models: the normalization share",
            "Share of each model's profiled time in normalization operators the runtime still runs on their own "
            "(LN in DeiT-S, GN in PoolFormer-S12, BN in EfficientFormer-L1 unless folded into its convolution).",
            [model_case(n) for n in ("deit_s", "poolformer_s12", "efficientformer_l1")],
            ("normalization",),
        )
    )
    return p


RATIO = Threshold(
    "obs3.ratio",
    1.0,
    "Obs 3 holds when LN-Linear and GN-Conv are each slower than Conv-BN (geometric mean over stage shapes, "
    "projection and MLP): both intervals above this.",
    margin=0.02,
    margin_reason=(
        "A ratio against 1.0: a normalization that costs under 2% more is not a latency reason to choose Conv-BN, "
        "and 2% is the median interval width the paired protocol aims at."
    ),
)
RULE = PartsRule(
    text=(
        "Two parts, both needed: LN + Linear (3D) and GroupNorm + Conv1x1 (4D) are each slower than Conv1x1 + BN at "
        "matched shapes: the geometric mean of their latency ratios over every stage shape, projection and whole "
        "MLP, has its 95% interval above 1 by its margin of 2% (above 1.02). Does not hold when either interval is "
        "below 1 by the margin; inconclusive when one straddles an edge of that band, inconclusive: at the threshold "
        "when the undecided ones lie inside it. The accuracy half of the claim is not a latency question and is not "
        "tested. Compare ort-cpu with ort-cpu-noopt to see what folding BN is worth."
    ),
    parts=tuple(
        PartSpec(
            name, f"latency, {name} / Conv-BN", RATIO, "above", fails_means=f"Conv-BN is not faster than {name} here."
        )
        for name in (LN, GN)
    ),
    holds_means="Conv-BN is the faster normalized projection here, as the paper found.",
)

SUITE = Suite(
    key=KEY,
    title="Obs 3. CONV-BN against LN (GN)-Linear",
    claim="CONV-BN is more latency-favorable than LN (GN)-Linear and the accuracy drawback is generally acceptable.",
    plan=plan,
    rule=RULE,
)
