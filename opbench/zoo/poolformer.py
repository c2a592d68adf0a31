"""PoolFormer S12, S24: Yu et al., "MetaFormer is Actually What You Need for Vision", CVPR 2022.

Read from sail-sg/poolformer and timm's metaformer.py (poolformer_s12 / _s24). Patch embedding: one Conv7x7 s4 p2
(blocks.patch_embed); four stages with Conv3x3 s2 downsampling (no norm) between them; blocks of GroupNorm(1) + pool
mixer and GroupNorm(1) + Conv1x1 MLP (GELU), both with layer scale; head: GroupNorm(1) on the last map (as the
original; timm normalizes after pooling, the same parameters), mean, Linear.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from opbench import blocks
from opbench.zoo.base import ZooModel

WIDTHS = (64, 128, 320, 512)
DEPTHS = {
    "s12": (2, 2, 6, 2),
    "s24": (4, 4, 12, 4),
}
MLP_RATIO = 4


class PoolFormerBlock(nn.Module):
    """x + ls1 * (pool(GN(x)) - GN(x)); x + ls2 * MLP(GN(x))."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(1, dim)
        self.token_mixer = blocks.PoolMixer()
        self.ls1 = blocks.LayerScale(dim, four_d=True)
        self.norm2 = nn.GroupNorm(1, dim)
        self.mlp = blocks.Mlp(dim, dim * MLP_RATIO, nn.GELU, conv=True)
        self.ls2 = blocks.LayerScale(dim, four_d=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.token_mixer(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class Stage(nn.Module):
    def __init__(self, c_in: int, dim: int, depth: int):
        super().__init__()
        self.downsample = nn.Conv2d(c_in, dim, 3, 2, 1) if c_in != dim else nn.Identity()
        self.blocks = nn.Sequential(*(PoolFormerBlock(dim) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class Head(nn.Module):
    def __init__(self, dim: int, num_classes: int = 1000):
        super().__init__()
        self.norm = nn.GroupNorm(1, dim)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x).mean((2, 3)))


class PoolFormer(nn.Module):
    def __init__(self, depths: tuple[int, ...], num_classes: int = 1000):
        super().__init__()
        self.stem = blocks.patch_embed(WIDTHS[0], 7, 4, 2)
        stages, c_in = [], WIDTHS[0]
        for dim, depth in zip(WIDTHS, depths, strict=True):
            stages.append(Stage(c_in, dim, depth))
            c_in = dim
        self.stages = nn.Sequential(*stages)
        self.head = Head(WIDTHS[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def poolformer(variant: str) -> PoolFormer:
    return PoolFormer(DEPTHS[variant])


_TIMM = "timm 1.0.31 create_model('{}') (MODELS.md)"
_PAPER = "PoolFormer paper (Yu et al. 2022), ImageNet-1K results (MACs column)"
_DESCRIPTION = "7x7 s4 patch embedding, GroupNorm + pool mixer, GroupNorm + Conv1x1 MLP, depths {}"


def _entry(variant: str, title: str, params_m: float, gmacs: float, top1: float) -> ZooModel:
    name = f"poolformer_{variant}"
    return ZooModel(
        name=name,
        family="poolformer",
        title=title,
        factory=functools.partial(poolformer, variant),
        params_m=params_m,
        params_source=_TIMM.format(name),
        gmacs=gmacs,
        gmacs_source=_PAPER,
        top1=top1,
        top1_source=_PAPER + "; EfficientFormer paper (PAPER.md)",
        description=_DESCRIPTION.format(DEPTHS[variant]),
    )


MODELS = [
    _entry("s12", "PoolFormer-S12", 11.92, 1.8, 77.2),
    _entry("s24", "PoolFormer-S24", 21.39, 3.4, 80.3),
]
