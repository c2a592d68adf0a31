"""Observation 3: CONV-BN is more latency-favorable than LN (GN)-Linear.

At every stage shape: the projection C -> 4C as Conv1x1 + BN (4D, BN foldable), LN + Linear (3D) and
GroupNorm(1) + Conv1x1 (4D, PoolFormer); then the whole MLP in the same three forms.
"""

from __future__ import annotations

import functools

from torch import nn

from opbench import blocks
from opbench.case import image, make_case, tokens
from opbench.observations.base import Observation, Plan
from opbench.shapes import stages
from opbench.verdict import Data, Part, Status, Target, Verdict, part, status_phrase, verdict_from_parts

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


# family -> variant -> (factory of C, input is 4D); the first form of each family is the Conv-BN baseline
FORMS = {
    "proj": {"conv1x1_bn": (conv1x1_bn, True), "ln_linear": (ln_linear, False), "gn_conv1x1": (gn_conv1x1, True)},
    "mlp": {
        "conv_bn": (blocks.conv_mlp, True),
        "ln_linear": (blocks.linear_mlp, False),
        "gn_conv": (blocks.gn_conv_mlp, True),
    },
}
WHAT = {"proj": "projection C->4C", "mlp": "MLP"}
NAMES = {"ln_linear": "LN-Linear", "gn_conv1x1": "GN-Conv", "gn_conv": "GN-Conv"}


def plan(grid: str) -> Plan:
    p = Plan()
    for s in stages(grid):
        c, h = s.width, s.resolution
        for family, forms in FORMS.items():
            group = f"obs3 {family} c{c} {h}x{h}"
            baseline, *others = (
                make_case(
                    KEY,
                    family,
                    variant,
                    functools.partial(fn, c),
                    image(c, h) if four_d else tokens(c, h),
                    group,
                    fn.__doc__.strip().splitlines()[0],
                    c=c,
                    h=h,
                )
                for variant, (fn, four_d) in forms.items()
            )
            for other in others:
                p.compare(f"{NAMES[other.variant]} vs Conv-BN {WHAT[family]} ({s.label})", baseline, other)
    return p


RULE = (
    "Two parts, both needed: LN + Linear (3D) and GroupNorm + Conv1x1 (4D) are each slower than Conv1x1 + BN at "
    "matched shapes: the geometric mean of their latency ratios over every stage shape, projection and whole MLP, "
    "has its 95% interval above 1. Does not hold when either interval is below 1; inconclusive when one straddles "
    "1. The accuracy half of the claim is not a latency question and is not tested. Compare ort-cpu with "
    "ort-cpu-noopt to see what folding BN is worth."
)


def verdict(plan: Plan, data: Data, target: Target | None = None, macs=None) -> Verdict:
    """The rule above on one (device, backend)."""
    ln = [c for c in plan.comparisons if c.candidate.variant == "ln_linear"]
    gn = [c for c in plan.comparisons if c.candidate.variant.startswith("gn_")]
    parts = [
        part("LN-Linear", "latency, LN-Linear / Conv-BN", ln, data, "obs3.ratio", "above", target=target),
        part("GN-Conv", "latency, GN-Conv / Conv-BN", gn, data, "obs3.ratio", "above", target=target),
    ]

    def sentence(status: Status, parts: list[Part]) -> str:
        ln, gn = parts
        meaning = {
            "holds": "Conv-BN is the faster normalized projection here, as the paper found.",
            "does_not_hold": "Conv-BN is not faster than "
            + " and ".join(n for n, p in (("LN-Linear", ln), ("GN-Conv", gn)) if p.status == "does_not_hold")
            + " here.",
            "inconclusive": "an interval straddles 1, so these measurements cannot tell.",
            "not_measured": "a part of the rule has no measurements.",
        }[status]
        return f"{status_phrase(status, target)} {ln.sentence()}; {gn.sentence()}. {meaning[0].upper()}{meaning[1:]}"

    return verdict_from_parts(KEY, target, parts, [], sentence)


OBSERVATION = Observation(
    key=KEY,
    title="CONV-BN against LN (GN)-Linear",
    claim="CONV-BN is more latency-favorable than LN (GN)-Linear and the accuracy drawback is generally acceptable.",
    plan=plan,
    verdict=verdict,
    rule=RULE,
)
