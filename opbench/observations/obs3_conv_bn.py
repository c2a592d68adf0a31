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


def plan(grid: str) -> Plan:
    p = Plan()
    for s in stages(grid):
        c, h = s.width, s.resolution
        built = {}
        for family, forms in (
            (
                "proj",
                ((conv1x1_bn, "conv1x1_bn", True), (ln_linear, "ln_linear", False), (gn_conv1x1, "gn_conv1x1", True)),
            ),
            (
                "mlp",
                (
                    (blocks.conv_mlp, "conv_bn", True),
                    (blocks.linear_mlp, "ln_linear", False),
                    (blocks.gn_conv_mlp, "gn_conv", True),
                ),
            ),
        ):
            group = f"obs3 {family} c{c} {h}x{h}"
            for fn, variant, four_d in forms:
                shape = image(c, h) if four_d else tokens(c, h)
                description = (fn.__doc__ or variant).strip().splitlines()[0]
                built[family, variant] = make_case(
                    KEY, family, variant, functools.partial(fn, c), shape, group, description, c=c, h=h
                )
        for family, conv, ln, gn in (
            ("proj", "conv1x1_bn", "ln_linear", "gn_conv1x1"),
            ("mlp", "conv_bn", "ln_linear", "gn_conv"),
        ):
            what = "projection C->4C" if family == "proj" else "MLP"
            p.compare(f"LN-Linear vs Conv-BN {what} ({s.label})", built[family, conv], built[family, ln])
            p.compare(f"GN-Conv vs Conv-BN {what} ({s.label})", built[family, conv], built[family, gn])
    return p


OBSERVATION = Observation(
    key=KEY,
    title="CONV-BN against LN (GN)-Linear",
    claim="CONV-BN is more latency-favorable than LN (GN)-Linear and the accuracy drawback is generally acceptable.",
    plan=plan,
)
