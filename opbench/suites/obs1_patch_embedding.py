"""Observation 1: patch embedding with large kernel and stride is a speed bottleneck on mobile devices.

Large non-overlapping kernels (DeiT 16x16 s16, PoolFormer 7x7 s4) against stems of 3x3 stride-2
convolutions (LeViT, EfficientFormer) that reach the same output grid, plus a kernel sweep
(k = stride in 2..16 against the 3x3 stack of the same total stride and width).
"""

from __future__ import annotations

import functools

from opbench import blocks
from opbench.case import image, make_case
from opbench.plan import Breakdowns, Plan, Sweep
from opbench.shapes import IMAGE
from opbench.suite import Suite
from opbench.suites.models import model_case
from opbench.verdict import PartSpec, PartsRule, Threshold
from opbench.zoo import efficientformer

KEY = "obs1"
EFFICIENTFORMER_STEM_WIDTHS = tuple(efficientformer.WIDTHS[v][0] for v in ("l1", "l3", "l7"))
LEVIT_WIDTH = 256
SWEEP_KERNELS = (2, 4, 8, 16)
SWEEP_WIDTH = 64
INPUT = image(3, IMAGE)
LARGE_KERNEL = "large kernel per MAC"  # the role of the comparisons the rule uses


def _patch(family: str, variant: str, width: int, kernel: int, stride: int, padding: int, group: str):
    factory = functools.partial(blocks.patch_embed, width, kernel, stride, padding)
    return make_case(
        KEY, family, variant, factory, INPUT, group, f"Conv{kernel}x{kernel} s{stride}, 3->{width}", c=width
    )


def _stem(family: str, variant: str, factory, widths: list[int], act: str, group: str):
    description = f"{len(widths)} x (Conv3x3 s2 + BN), {act}, 3->" + "->".join(map(str, widths))
    return make_case(KEY, family, variant, factory, INPUT, group, description, c=widths[-1])


def plan(grid: str) -> Plan:
    p = Plan()
    group = "obs1 embedding to 14x14"
    levit_widths = [LEVIT_WIDTH >> i for i in (3, 2, 1, 0)]
    levit = _stem("stem", "levit", functools.partial(blocks.levit_stem, LEVIT_WIDTH), levit_widths, "hardswish", group)
    for width, model in ((384, "DeiT-S"), (192, "DeiT-T")):
        deit = _patch("patch_embed", "deit_k16s16", width, 16, 16, 0, group)
        p.compare(f"{model} patch embedding vs LeViT stem (14x14)", levit, deit, LARGE_KERNEL, per_mac=True)
    group = "obs1 embedding to 56x56"
    stems = {
        w: _stem(
            "stem", "efficientformer", functools.partial(blocks.efficientformer_stem, w), [w // 2, w], "relu", group
        )
        for w in EFFICIENTFORMER_STEM_WIDTHS
    }
    for stem in stems.values():
        p.add(stem)
    poolformer = _patch("patch_embed", "poolformer_k7s4p2", 64, 7, 4, 2, group)
    p.compare(
        "PoolFormer patch embedding vs EfficientFormer stem (56x56, c64)", stems[64], poolformer, LARGE_KERNEL, True
    )
    sweep = Sweep(
        "Kernel sweep: achieved MACs per second against kernel size",
        "Patch embedding with kernel = stride k against the stack of 3x3 stride-2 convolutions reaching the same "
        "output, per (device, backend). Where the solid line falls below the dashed one, the large kernel uses the "
        "hardware less well.",
        "kernel size k (= stride) of the patch embedding; the 3x3 stack reaches the same output",
        ("k x k, stride k", "stacked 3x3 s2"),
    )
    for k in SWEEP_KERNELS:
        group = f"obs1 kernel sweep k{k}"
        n = k.bit_length() - 1
        widths = [SWEEP_WIDTH >> (n - 1 - i) for i in range(n)]
        stack = _stem("sweep", f"stack3x3_n{n}", functools.partial(blocks.conv3x3_stem, widths), widths, "relu", group)
        patch = _patch("sweep", f"patch_k{k}s{k}", SWEEP_WIDTH, k, k, 0, group)
        name = f"kernel {k}x{k} s{k} vs {n} x Conv3x3 s2 ({IMAGE // k}x{IMAGE // k}, c{SWEEP_WIDTH})"
        sweep.points.append((k, p.compare(name, stack, patch, per_mac=True)))
    p.extras.append(sweep)
    p.extras.append(
        Breakdowns(
            "In whole models: the stem / patch embedding's share",
            "Share of each model's profiled time spent in its stem or patch embedding, from the models suite's "
            "profiling pass: large-kernel embeddings (DeiT-S 16x16, PoolFormer-S12 7x7) against 3x3 stems "
            "(EfficientFormer-L1, LeViT-256).",
            [model_case(n) for n in ("deit_s", "poolformer_s12", "efficientformer_l1", "levit_256")],
            ("stem",),
        )
    )
    return p


RULE = PartsRule(
    text=(
        "Holds when the large-kernel patch embeddings (DeiT-S and DeiT-T 16x16 s16, PoolFormer 7x7 s4) take more "
        "time per MAC than the 3x3 stride-2 stems that reach the same output (LeViT, EfficientFormer): the geometric "
        "mean of the three time-per-MAC ratios has its 95% interval above 1 by its margin of 2% (above 1.02). Does "
        "not hold when the interval is below 1 by the margin; inside the band it is inconclusive: at the threshold. "
        "The kernel sweep (k = stride 2..16 against stacked 3x3) is supporting evidence, not part of the "
        "rule."
    ),
    parts=(
        PartSpec(
            LARGE_KERNEL,
            "time per MAC, large-kernel embedding / 3x3 stem",
            Threshold(
                "obs1.per_mac_ratio",
                1.0,
                "Obs 1 holds when the large-kernel patch embedding takes more time per MAC than the 3x3 stem it is "
                "compared with (geometric mean over the DeiT-S, DeiT-T and PoolFormer comparisons): interval above "
                "this.",
                margin=0.02,
                margin_reason=(
                    "A ratio against 1.0: a per-MAC difference under 2% says nothing about which stem to choose (a "
                    "runtime update moves a case by more) and is the median interval width the paired protocol aims at."
                ),
            ),
            "above",
            fails_means="The large-kernel patch embeddings spend less time per MAC than the 3x3 stems here.",
        ),
    ),
    holds_means="The large-kernel patch embeddings do less work per unit of time than the 3x3 stems.",
)

SUITE = Suite(
    key=KEY,
    title="Obs 1. Large-kernel patch embedding",
    claim="Patch embedding with large kernel and stride is a speed bottleneck on mobile devices.",
    plan=plan,
    rule=RULE,
)
