"""Observation 1: patch embedding with large kernel and stride is a speed bottleneck on mobile devices.

Large non-overlapping kernels (DeiT 16x16 s16, PoolFormer 7x7 s4) against stems of 3x3 stride-2
convolutions (LeViT, EfficientFormer) that reach the same output grid, plus a kernel sweep
(k = stride in 2..16 against the 3x3 stack of the same total stride and width).
"""

from __future__ import annotations

import functools

from opbench import blocks
from opbench.case import image, make_case
from opbench.observations.base import Observation, Plan
from opbench.shapes import IMAGE
from opbench.verdict import Data, Part, Status, Target, Verdict, compare, part, status_phrase, verdict_from_parts

KEY = "obs1"
EFFICIENTFORMER_STEM_WIDTHS = (48, 64, 96)  # L1, L3, L7
SWEEP_KERNELS = (2, 4, 8, 16)
SWEEP_WIDTH = 64
INPUT = image(3, IMAGE)


def _patch(family: str, variant: str, width: int, kernel: int, stride: int, padding: int, group: str):
    factory = functools.partial(blocks.patch_embed, width, kernel, stride, padding)
    return make_case(
        KEY, family, variant, factory, INPUT, group, f"Conv{kernel}x{kernel} s{stride}, 3->{width}", c=width
    )


def _stem(family: str, variant: str, widths: list[int], act: str, act_after_last: bool, group: str):
    factory = functools.partial(blocks.conv3x3_stem, widths, act, act_after_last)
    description = f"{len(widths)} x (Conv3x3 s2 + BN), {act}, 3->" + "->".join(map(str, widths))
    return make_case(KEY, family, variant, factory, INPUT, group, description, c=widths[-1])


def plan(grid: str) -> Plan:
    p = Plan()
    group = "obs1 embedding to 14x14"
    levit = _stem("stem", "levit", [32, 64, 128, 256], "hardswish", False, group)
    for width, model in ((384, "DeiT-S"), (192, "DeiT-T")):
        deit = _patch("patch_embed", "deit_k16s16", width, 16, 16, 0, group)
        p.compare(f"{model} patch embedding vs LeViT stem (14x14)", levit, deit)
    group = "obs1 embedding to 56x56"
    stems = {w: _stem("stem", "efficientformer", [w // 2, w], "relu", True, group) for w in EFFICIENTFORMER_STEM_WIDTHS}
    for stem in stems.values():
        p.add(stem)
    poolformer = _patch("patch_embed", "poolformer_k7s4p2", 64, 7, 4, 2, group)
    p.compare("PoolFormer patch embedding vs EfficientFormer stem (56x56, c64)", stems[64], poolformer)
    for k in SWEEP_KERNELS:
        group = f"obs1 kernel sweep k{k}"
        n = k.bit_length() - 1
        stack = _stem("sweep", f"stack3x3_n{n}", [SWEEP_WIDTH >> (n - 1 - i) for i in range(n)], "relu", True, group)
        patch = _patch("sweep", f"patch_k{k}s{k}", SWEEP_WIDTH, k, k, 0, group)
        p.compare(f"kernel {k}x{k} s{k} vs {n} x Conv3x3 s2 ({IMAGE // k}x{IMAGE // k}, c{SWEEP_WIDTH})", stack, patch)
    return p


RULE = (
    "Holds when the large-kernel patch embeddings (DeiT-S and DeiT-T 16x16 s16, PoolFormer 7x7 s4) take more time "
    "per MAC than the 3x3 stride-2 stems that reach the same output (LeViT, EfficientFormer): the geometric mean "
    "of the three time-per-MAC ratios has its 95% interval above 1. Does not hold when the interval is below 1. "
    "The kernel sweep (k = stride 2..16 against stacked 3x3) is supporting evidence, not part of the rule."
)


def verdict(plan: Plan, data: Data, target: Target | None = None, macs=None) -> Verdict:
    """The rule above on one (device, backend)."""
    primary = [c for c in plan.comparisons if c.candidate.family == "patch_embed"]
    sweep = [c for c in plan.comparisons if c.candidate.family != "patch_embed"]
    label = "time per MAC, large-kernel embedding / 3x3 stem"
    parts = [part("large kernel per MAC", label, primary, data, "obs1.per_mac_ratio", "above", True, macs, target)]
    threshold = (parts[0].threshold, "above")
    supporting = [compare(c, data, "supporting", True, macs, threshold, target) for c in sweep]

    def sentence(status: Status, parts: list[Part]) -> str:
        p = parts[0]
        if status == "not_measured":
            return f"{status_phrase(status, target)} no large-kernel embedding was measured against its 3x3 stem."
        meaning = {
            "holds": "the large-kernel patch embeddings do less work per unit of time than the 3x3 stems.",
            "does_not_hold": "the large-kernel patch embeddings spend less time per MAC than the 3x3 stems here.",
            "inconclusive": "the interval straddles the threshold, so these measurements cannot tell.",
        }[status]
        return f"{status_phrase(status, target)} {p.sentence()}; {meaning}"

    return verdict_from_parts(KEY, target, parts, supporting, sentence)


OBSERVATION = Observation(
    key=KEY,
    title="Large-kernel patch embedding",
    claim="Patch embedding with large kernel and stride is a speed bottleneck on mobile devices.",
    plan=plan,
    verdict=verdict,
    rule=RULE,
)
