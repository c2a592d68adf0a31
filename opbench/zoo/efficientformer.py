"""EfficientFormer (V1) L1, L3, L7: Li et al., "EfficientFormer: Vision Transformers at MobileNet Speed", NeurIPS 2022.

Read from snap-research/EfficientFormer models/efficientformer.py and timm's efficientformer.py. Stem of two
Conv3x3 s2 (blocks.efficientformer_stem), four stages of Meta4D blocks (pool mixer, Conv-BN MLP) with Conv3x3 s2 + BN
downsampling between them, one Flat (4D -> 3D) in the last stage, then Meta3D blocks (LN, MHSA with the LeViT-style
bias of blocks.Attention, LN, Linear MLP); head: LN, mean over tokens, a classifier and a distillation head averaged.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from opbench import blocks
from opbench.zoo.base import ZooModel

WIDTHS = {
    "l1": (48, 96, 224, 448),
    "l3": (64, 128, 320, 512),
    "l7": (96, 192, 384, 768),
}
DEPTHS = {
    "l1": (3, 2, 6, 4),
    "l3": (4, 4, 12, 6),
    "l7": (6, 6, 18, 8),
}
NUM_META3D = {"l1": 1, "l3": 4, "l7": 8}  # Meta3D blocks, all at the end of the last stage
RESOLUTIONS = (56, 28, 14, 7)  # at 224x224 input


class Stage(nn.Module):
    """Optional Conv3x3 s2 + BN downsampling, then depth blocks; the last num_meta3d are Meta3D after one Flat."""

    def __init__(self, c_in: int, dim: int, depth: int, resolution: int, num_meta3d: int = 0):
        super().__init__()
        self.downsample = blocks.conv_bn(c_in, dim, 3, 2, 1) if c_in != dim else nn.Identity()
        layers: list[nn.Module] = [blocks.Meta4D(dim) for _ in range(depth - num_meta3d)]
        if num_meta3d:
            layers.append(blocks.To3D())
            layers.extend(blocks.Meta3D(dim, resolution) for _ in range(num_meta3d))
        self.blocks = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class DistilledHead(nn.Module):
    """LN, mean over tokens, (fc(x) + dist(x)) / 2: the two heads of a distilled model, averaged at inference."""

    def __init__(self, dim: int, num_classes: int = 1000):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, num_classes)
        self.dist = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x).mean(dim=1)
        return (self.fc(x) + self.dist(x)) / 2


class EfficientFormer(nn.Module):
    def __init__(self, widths: tuple[int, ...], depths: tuple[int, ...], num_meta3d: int, num_classes: int = 1000):
        super().__init__()
        self.stem = blocks.efficientformer_stem(widths[0])
        stages, c_in = [], widths[0]
        for i, (dim, depth) in enumerate(zip(widths, depths, strict=True)):
            stages.append(Stage(c_in, dim, depth, RESOLUTIONS[i], num_meta3d if i == len(widths) - 1 else 0))
            c_in = dim
        self.stages = nn.Sequential(*stages)
        self.head = DistilledHead(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def efficientformer(variant: str) -> EfficientFormer:
    return EfficientFormer(WIDTHS[variant], DEPTHS[variant], NUM_META3D[variant])


_TIMM = "timm 1.0.31 create_model('{}') (MODELS.md)"
_PAPER = "EfficientFormer paper (Li et al. 2022) Table 1; top-1 also in the snap-research/EfficientFormer README"
_DESCRIPTION = "Conv stem, Meta4D (pool, Conv-BN MLP) stages, {} Meta3D (LN-MHSA, LN-Linear) at the end of stage 4"


def _entry(variant: str, title: str, params_m: float, gmacs: float, top1: float) -> ZooModel:
    name = f"efficientformer_{variant}"
    return ZooModel(
        name=name,
        family="efficientformer",
        title=title,
        factory=functools.partial(efficientformer, variant),
        params_m=params_m,
        params_source=_TIMM.format(name),
        gmacs=gmacs,
        gmacs_source=_PAPER,
        top1=top1,
        top1_source=_PAPER,
        description=_DESCRIPTION.format(NUM_META3D[variant]),
    )


MODELS = [
    _entry("l1", "EfficientFormer-L1", 12.29, 1.3, 79.2),
    _entry("l3", "EfficientFormer-L3", 31.41, 3.9, 82.4),
    _entry("l7", "EfficientFormer-L7", 82.23, 10.2, 83.3),
]
