"""Observation 2: consistent feature dimension matters for the token mixer; MHSA is not necessarily the
bottleneck.

Pool mixer (4D) against EfficientFormer MHSA on 3D tokens, the same MHSA wrapped in 4D<->3D reshapes, the
reshape pair alone, single blocks, and stages of several blocks with and without reshapes between them.
"""

from __future__ import annotations

import functools

from torch import nn

from opbench import blocks
from opbench.case import image, make_case, tokens
from opbench.observations.base import Observation, Plan
from opbench.shapes import Stage, stages
from opbench.verdict import Data, Part, Status, Target, Verdict, compare, part, status_phrase, verdict_from_parts

KEY = "obs2"


def attention_3d(c: int, h: int) -> nn.Module:
    return blocks.Attention(c, h)


def attention_4d(c: int, h: int) -> nn.Module:
    return blocks.reshaped(blocks.Attention(c, h), h)


def reshape_pair(h: int) -> nn.Module:
    return nn.Sequential(blocks.To3D(), blocks.To4D(h))


def stage_meta4d(c: int, h: int, depth: int) -> nn.Module:
    return nn.Sequential(*(blocks.meta4d(c) for _ in range(depth)))


def stage_meta3d(c: int, h: int, depth: int) -> nn.Module:
    return nn.Sequential(*(blocks.meta3d(c, h) for _ in range(depth)))


def stage_meta3d_reshaped(c: int, h: int, depth: int) -> nn.Module:
    """LeViT style: features stay 4D and every attention block reshapes to 3D and back."""
    return nn.Sequential(*(blocks.reshaped(blocks.meta3d(c, h), h) for _ in range(depth)))


def stage_alternating(c: int, h: int, depth: int) -> nn.Module:
    """Meta4D and Meta3D blocks alternating, a reshape at every change of dimension."""
    pairs = (layer for _ in range(depth // 2) for layer in (blocks.meta4d(c), blocks.reshaped(blocks.meta3d(c, h), h)))
    return nn.Sequential(*pairs)


def stage_grouped(c: int, h: int, depth: int) -> nn.Module:
    """The same blocks as stage_alternating in EfficientFormer's layout: all Meta4D, one Flat, all Meta3D."""
    meta3d = nn.Sequential(*(blocks.meta3d(c, h) for _ in range(depth // 2)))
    return nn.Sequential(*(blocks.meta4d(c) for _ in range(depth // 2)), blocks.reshaped(meta3d, h))


def _case(family: str, variant: str, factory, shape, group: str, description: str, stage: Stage, **extra: int):
    c, h = stage.width, stage.resolution
    return make_case(KEY, family, variant, factory, shape, group, description, c=c, h=h, **extra)


def _mixers(p: Plan, s: Stage) -> None:
    c, h = s.width, s.resolution
    group = f"obs2 token mixers c{c} {h}x{h}"
    pool = _case("mixer", "pool", functools.partial(blocks.PoolMixer), image(c, h), group, "AvgPool3x3(x) - x, 4D", s)
    p.add(pool)
    if s.index < 3:
        return
    attn = _case("mixer", "mhsa_3d", functools.partial(attention_3d, c, h), tokens(c, h), group, "MHSA on 3D tokens", s)
    attn4d = _case(
        "mixer", "mhsa_4d", functools.partial(attention_4d, c, h), image(c, h), group, "4D -> 3D, MHSA, 3D -> 4D", s
    )
    pair = _case("reshape", "4d_3d_4d", functools.partial(reshape_pair, h), image(c, h), group, "4D -> 3D -> 4D", s)
    p.compare(f"MHSA vs pool mixer ({s.label})", pool, attn)
    p.compare(f"MHSA inside 4D<->3D reshapes vs MHSA on 3D tokens ({s.label})", attn, attn4d)
    p.compare(f"reshape pair vs pool mixer ({s.label})", pool, pair)


def _blocks_and_stages(p: Plan, s: Stage) -> None:
    c, h, depth = s.width, s.resolution, s.depth
    group = f"obs2 blocks c{c} {h}x{h}"
    b4 = _case(
        "block", "meta4d", functools.partial(blocks.meta4d, c), image(c, h), group, "Meta4D: pool + Conv-BN MLP", s
    )
    b3 = _case(
        "block", "meta3d", functools.partial(blocks.meta3d, c, h), tokens(c, h), group, "Meta3D: LN-MHSA + LN-MLP", s
    )
    p.compare(f"Meta3D (MHSA) block vs Meta4D (pool) block ({s.label})", b4, b3)
    group = f"obs2 stages c{c} {h}x{h} depth {depth}"

    def stage(variant: str, fn, shape, description: str):
        return _case("stage", variant, functools.partial(fn, c, h, depth), shape, group, description, s, d=depth)

    s4 = stage("meta4d", stage_meta4d, image(c, h), f"{depth} Meta4D blocks, 4D throughout")
    s3 = stage("meta3d", stage_meta3d, tokens(c, h), f"{depth} Meta3D blocks, 3D throughout")
    s3r = stage("meta3d_reshaped", stage_meta3d_reshaped, image(c, h), f"{depth} Meta3D blocks, 4D<->3D around each")
    alt = stage("alternating", stage_alternating, image(c, h), f"{depth // 2} x (Meta4D, reshape, Meta3D, reshape)")
    grouped = stage("grouped", stage_grouped, image(c, h), f"{depth // 2} Meta4D, Flat, {depth // 2} Meta3D, reshape")
    p.add(s4)
    p.compare(f"Meta3D stage with reshapes around every block vs consistent 3D ({s.label})", s3, s3r)
    p.compare(f"alternating 4D/3D blocks vs EfficientFormer's grouped layout ({s.label})", grouped, alt)


def plan(grid: str) -> Plan:
    p = Plan()
    for s in stages(grid):
        _mixers(p, s)
    for s in stages(grid):
        if s.index == 4:
            _blocks_and_stages(p, s)
    return p


RULE = (
    "Two parts, both needed. (1) Consistent dimension matters: in a last-stage (7x7) stage of Meta3D blocks with "
    "4D<->3D reshapes around every block (LeViT style), the reshapes take more than 5% of the stage's time "
    "(1 - consistent 3D stage / reshaped stage, 95% interval above 5%). (2) MHSA is not necessarily the bottleneck: "
    "the Meta3D (MHSA) block's time per MAC is less than 2x the Meta4D (pool) block's at 7x7 (interval below 2). "
    "Holds when both hold; does not hold when either clearly fails; inconclusive when an interval straddles its "
    "threshold. Mixers alone, the reshape pair and the alternating layout are supporting evidence."
)


def verdict(plan: Plan, data: Data, target: Target | None = None, macs=None) -> Verdict:
    """The rule above on one (device, backend)."""
    reshaped = [
        c for c in plan.comparisons if c.candidate.family == "stage" and c.candidate.variant.endswith("reshaped")
    ]
    blocks_ = [c for c in plan.comparisons if c.candidate.family == "block"]
    rest = [c for c in plan.comparisons if c not in reshaped and c not in blocks_]
    parts = [
        part(
            "reshape share",
            "reshape share of the inconsistent stage",
            reshaped,
            data,
            "obs2.reshape_share",
            "above",
            target=target,
            unit="share",
        ),
        part(
            "MHSA block per MAC",
            "time per MAC, MHSA block / pool block",
            blocks_,
            data,
            "obs2.mhsa_per_mac_ratio",
            "below",
            True,
            macs,
            target,
        ),
    ]
    supporting = [compare(c, data, "supporting", target=target) for c in rest]

    def sentence(status: Status, parts: list[Part]) -> str:
        reshape, mhsa = parts
        meaning = {
            "holds": "the reshapes cost a visible share of the stage while MHSA itself is not the bottleneck, "
            "so keeping the dimension consistent matters more than avoiding MHSA.",
            "does_not_hold": (
                "the reshapes are nearly free here, so a consistent dimension does not matter for speed."
                if reshape.status == "does_not_hold"
                else "MHSA itself is the bottleneck here, far less efficient per MAC than the pool block."
            ),
            "inconclusive": "an interval straddles its threshold, so these measurements cannot tell.",
            "not_measured": "a part of the rule has no measurements.",
        }[status]
        meaning = meaning[0].upper() + meaning[1:]
        if reshape.estimate is not None and reshape.estimate.value < 0:
            meaning += " (A negative share: the stage with reshapes ran faster than the one kept 3D.)"
        return f"{status_phrase(status, target)} {reshape.sentence()}; {mhsa.sentence()}. {meaning}"

    return verdict_from_parts(KEY, target, parts, supporting, sentence)


OBSERVATION = Observation(
    key=KEY,
    title="Token mixers and consistent dimensions",
    claim=(
        "Consistent feature dimension is important for the choice of token mixer. "
        "MHSA is not necessarily a speed bottleneck."
    ),
    plan=plan,
    verdict=verdict,
    rule=RULE,
)
