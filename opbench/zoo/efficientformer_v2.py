"""EfficientFormerV2 S0, S1, S2, L: Li et al., "Rethinking Vision Transformers for MobileNet Size and Speed", ICCV 2023.

Read from snap-research/EfficientFormer models/efficientformer_v2.py and timm's efficientformer_v2.py. All 4D, no
LayerNorm: stem of two Conv3x3 s2 + BN + GELU; every block has a 4D FFN (1x1 conv-BN-GELU, depthwise 3x3 conv-BN-GELU,
1x1 conv-BN) with layer scale; the last blocks of stages 3 and 4 add Attention2d (q/k/v 1x1 conv-BN, depthwise 3x3
local branch on v, talking heads around the softmax, learned bias; stage 3 attends at stride 2 and upsamples back).
Downsampling: Conv3x3 s2 + BN, plus an attention branch (local-global query) before stage 4.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from opbench import blocks
from opbench.zoo.base import ZooModel

WIDTHS = {
    "s0": (32, 48, 96, 176),
    "s1": (32, 48, 120, 224),
    "s2": (32, 64, 144, 288),
    "l": (40, 80, 192, 384),
}
DEPTHS = {
    "s0": (2, 2, 6, 4),
    "s1": (3, 3, 9, 6),
    "s2": (4, 4, 12, 8),
    "l": (5, 5, 15, 10),
}
EXPANSIONS = {  # FFN expansion ratio of every block, stage by stage
    "s0": (4, 4, (4, 3, 3, 3, 4, 4), (4, 3, 3, 4)),
    "s1": (4, 4, (4, 4, 3, 3, 3, 3, 4, 4, 4), (4, 4, 3, 3, 4, 4)),
    "s2": (4, 4, (4, 4, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4), (4, 4, 3, 3, 3, 3, 4, 4)),
    "l": (4, 4, (4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4), (4, 4, 4, 3, 3, 3, 3, 4, 4, 4)),
}
NUM_ATTENTION = {"s0": 2, "s1": 2, "s2": 4, "l": 6}  # attention blocks at the end of stages 3 and 4
RESOLUTIONS = (56, 28, 14, 7)  # at 224x224 input
KEY_DIM, NUM_HEADS, ATTN_RATIO = 32, 8, 4


def conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = False):
    """Conv (with bias, as the reference) + BN (+ GELU)."""
    return blocks.conv_norm_act(c_in, c_out, kernel, stride, groups, bias=True, act=nn.GELU if act else None)


class Attention2d(nn.Module):
    """MHSA on 4D features: q, k, v 1x1 conv-BN, depthwise 3x3 on v added back, talking heads, bias, GELU, proj.
    With stride 2 it attends on a depthwise-strided 7x7 copy and upsamples the result (stage 3)."""

    def __init__(self, dim: int, resolution: int, stride: int = 1):
        super().__init__()
        self.stride_conv = conv_bn(dim, dim, 3, 2, groups=dim) if stride > 1 else nn.Identity()
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear") if stride > 1 else nn.Identity()
        self.resolution = resolution // stride
        self.n = self.resolution**2
        self.scale = KEY_DIM**-0.5
        self.dh = ATTN_RATIO * KEY_DIM * NUM_HEADS
        self.q = conv_bn(dim, KEY_DIM * NUM_HEADS)
        self.k = conv_bn(dim, KEY_DIM * NUM_HEADS)
        self.v = conv_bn(dim, self.dh)
        self.v_local = conv_bn(self.dh, self.dh, 3, groups=self.dh)
        self.talking_head1 = nn.Conv2d(NUM_HEADS, NUM_HEADS, 1)
        self.talking_head2 = nn.Conv2d(NUM_HEADS, NUM_HEADS, 1)
        self.bias = blocks.AttentionBias(NUM_HEADS, self.resolution)
        self.act = nn.GELU()
        self.proj = conv_bn(self.dh, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x = self.stride_conv(x)
        q = self.q(x).reshape(b, NUM_HEADS, -1, self.n).permute(0, 1, 3, 2)
        k = self.k(x).reshape(b, NUM_HEADS, -1, self.n)
        v = self.v(x)
        v_local = self.v_local(v)
        v = v.reshape(b, NUM_HEADS, -1, self.n).permute(0, 1, 3, 2)
        attn = self.talking_head1((q @ k) * self.scale + self.bias())
        attn = self.talking_head2(attn.softmax(dim=-1))
        x = (attn @ v).transpose(2, 3).reshape(b, self.dh, self.resolution, self.resolution) + v_local
        return self.proj(self.act(self.upsample(x)))


class LocalGlobalQuery(nn.Module):
    """Query of the downsampling attention: depthwise 3x3 s2 + 1x1 s2 pool, then 1x1 conv-BN."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.pool = nn.AvgPool2d(1, 2, 0)
        self.local = nn.Conv2d(c_in, c_in, 3, 2, 1, groups=c_in)
        self.proj = conv_bn(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.local(x) + self.pool(x))


class Attention2dDownsample(nn.Module):
    """Attention from the 14x14 map to its 7x7 subsample (key_dim 16), with a depthwise 3x3 s2 local branch on v."""

    def __init__(self, dim: int, out_dim: int, resolution: int, key_dim: int = 16):
        super().__init__()
        self.key_dim, self.scale = key_dim, key_dim**-0.5
        self.resolution2 = (resolution + 1) // 2
        self.n, self.n2 = resolution**2, self.resolution2**2
        self.dh = ATTN_RATIO * key_dim * NUM_HEADS
        self.q = LocalGlobalQuery(dim, key_dim * NUM_HEADS)
        self.k = conv_bn(dim, key_dim * NUM_HEADS)
        self.v = conv_bn(dim, self.dh)
        self.v_local = conv_bn(self.dh, self.dh, 3, 2, groups=self.dh)
        self.bias = blocks.AttentionBias(NUM_HEADS, resolution, stride=2)
        self.act = nn.GELU()
        self.proj = conv_bn(self.dh, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        q = self.q(x).reshape(b, NUM_HEADS, -1, self.n2).permute(0, 1, 3, 2)
        k = self.k(x).reshape(b, NUM_HEADS, -1, self.n)
        v = self.v(x)
        v_local = self.v_local(v)
        v = v.reshape(b, NUM_HEADS, -1, self.n).permute(0, 1, 3, 2)
        attn = ((q @ k) * self.scale + self.bias()).softmax(dim=-1)
        x = (attn @ v).transpose(2, 3).reshape(b, self.dh, self.resolution2, self.resolution2) + v_local
        return self.proj(self.act(x))


class Downsample(nn.Module):
    """Conv3x3 s2 + BN, plus (before stage 4) the attention branch added to it."""

    def __init__(self, c_in: int, c_out: int, resolution: int, attention: bool):
        super().__init__()
        self.conv = conv_bn(c_in, c_out, 3, 2)
        self.attn = Attention2dDownsample(c_in, c_out, resolution) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out + self.attn(x) if self.attn is not None else out


class FFN(nn.Module):
    """1x1 conv-BN-GELU, depthwise 3x3 conv-BN-GELU, 1x1 conv-BN."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = conv_bn(dim, hidden, act=True)
        self.mid = conv_bn(hidden, hidden, 3, groups=hidden, act=True)
        self.fc2 = conv_bn(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.mid(self.fc1(x)))


class Block(nn.Module):
    """(x + ls1 * Attention2d(x)), then x + ls2 * FFN(x)."""

    def __init__(self, dim: int, expansion: int, resolution: int, attention: bool, stride: int = 1):
        super().__init__()
        self.token_mixer = Attention2d(dim, resolution, stride) if attention else None
        self.ls1 = blocks.LayerScale(dim, four_d=True) if attention else None
        self.mlp = FFN(dim, dim * expansion)
        self.ls2 = blocks.LayerScale(dim, four_d=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.token_mixer is not None:
            x = x + self.ls1(self.token_mixer(x))
        return x + self.ls2(self.mlp(x))


class Stage(nn.Module):
    def __init__(self, c_in: int, dim: int, index: int, expansions: tuple[int, ...], num_attention: int):
        super().__init__()
        depth = len(expansions)
        self.downsample = Downsample(c_in, dim, RESOLUTIONS[index - 1], index == 3) if index else nn.Identity()
        self.blocks = nn.Sequential(
            *(
                Block(dim, e, RESOLUTIONS[index], index >= 2 and j >= depth - num_attention, 2 if index == 2 else 1)
                for j, e in enumerate(expansions)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class DistilledHead(nn.Module):
    """BatchNorm, mean over the 7x7 map, (fc(x) + dist(x)) / 2."""

    def __init__(self, dim: int, num_classes: int = 1000):
        super().__init__()
        self.norm = nn.BatchNorm2d(dim)
        self.fc = nn.Linear(dim, num_classes)
        self.dist = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x).mean((2, 3))
        return (self.fc(x) + self.dist(x)) / 2


class EfficientFormerV2(nn.Module):
    def __init__(self, widths, depths, expansions, num_attention: int, num_classes: int = 1000):
        super().__init__()
        self.stem = blocks.conv3x3_stem([widths[0] // 2, widths[0]], act="gelu_erf")
        stages, c_in = [], widths[0]
        for i, (dim, depth) in enumerate(zip(widths, depths, strict=True)):
            ratios = expansions[i] if isinstance(expansions[i], tuple) else (expansions[i],) * depth
            stages.append(Stage(c_in, dim, i, ratios, num_attention))
            c_in = dim
        self.stages = nn.Sequential(*stages)
        self.head = DistilledHead(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def efficientformer_v2(variant: str) -> EfficientFormerV2:
    return EfficientFormerV2(WIDTHS[variant], DEPTHS[variant], EXPANSIONS[variant], NUM_ATTENTION[variant])


_TIMM = "timm 1.0.31 create_model('{}') (MODELS.md)"
_PAPER = "EfficientFormerV2 paper (Li et al. 2023), ImageNet-1K results, as quoted in MODELS.md"
_TOP1 = "EfficientFormerV2 paper; the same numbers annotate the width table of timm's efficientformer_v2.py"
_DESCRIPTION = "All-4D: conv stem, FFN blocks (1x1, dw3x3, 1x1), Attention2d in the last {} blocks of stages 3 and 4"


def _entry(variant: str, title: str, params_m: float, gmacs: float, top1: float) -> ZooModel:
    name = f"efficientformerv2_{variant}"
    return ZooModel(
        name=name,
        family="efficientformer_v2",
        title=title,
        factory=functools.partial(efficientformer_v2, variant),
        params_m=params_m,
        params_source=_TIMM.format(name),
        gmacs=gmacs,
        gmacs_source=_PAPER,
        top1=top1,
        top1_source=_TOP1,
        description=_DESCRIPTION.format(NUM_ATTENTION[variant]),
    )


MODELS = [
    _entry("s0", "EfficientFormerV2-S0", 3.60, 0.40, 75.7),
    _entry("s1", "EfficientFormerV2-S1", 6.19, 0.65, 79.0),
    _entry("s2", "EfficientFormerV2-S2", 12.71, 1.25, 81.6),
    _entry("l", "EfficientFormerV2-L", 26.32, 2.56, 83.3),
]
