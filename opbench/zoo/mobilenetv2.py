"""MobileNetV2 x1.0 and x1.4: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018.

Read from timm's efficientnet.py (_gen_mobilenet_v2) and _efficientnet_blocks.py. Stem Conv3x3 s2 + BN + ReLU6, a
depthwise-separable block, then inverted residuals (expand 6, depthwise 3x3, linear 1x1 project); head: 1x1 conv to
1280 + BN + ReLU6, mean over the map, Linear. Widths scale by the multiplier rounded to multiples of 8 (timm's rule,
stem and head included: x1.4 has a 48-wide stem and a 1792-wide head). Downsampling happens inside the first
(strided) block of a stage; there is no separate downsampling layer.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from opbench import blocks
from opbench.zoo.base import ZooModel

# (expansion, width, repeats, stride of the first block) per stage, as in the paper's Table 2; kernel 3 throughout
ARCH = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_WIDTH, HEAD_WIDTH = 32, 1280


class ConvHead(nn.Module):
    """1x1 conv-BN-act to the head width, mean over the map, Linear classifier."""

    def __init__(self, c_in: int, width: int, act, num_classes: int = 1000):
        super().__init__()
        self.conv = blocks.conv_norm_act(c_in, width, 1, act=act)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


class MobileNetV2(nn.Module):
    def __init__(self, multiplier: float = 1.0, num_classes: int = 1000):
        super().__init__()
        width = functools.partial(blocks.make_divisible, divisor=8)
        c_in = width(STEM_WIDTH * multiplier)
        self.stem = blocks.conv_norm_act(3, c_in, 3, 2, act=nn.ReLU6)
        stages = []
        for expand, c, repeats, stride in ARCH:
            c_out, layers = width(c * multiplier), []
            for j in range(repeats):
                s = stride if j == 0 else 1
                if expand == 1:
                    layers.append(blocks.DepthwiseSeparable(c_in, c_out, 3, s, nn.ReLU6))
                else:
                    layers.append(blocks.InvertedResidual(c_in, c_out, 3, s, expand, nn.ReLU6))
                c_in = c_out
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.head = ConvHead(c_in, max(HEAD_WIDTH, width(HEAD_WIDTH * multiplier)), nn.ReLU6, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


_TIMM = "timm 1.0.31 create_model('{}') (MODELS.md)"
_PAPER = "MobileNetV2 paper (Sandler et al. 2018), ImageNet comparison: {} multiply-adds"
_DESCRIPTION = "Inverted residuals (expand 6, depthwise 3x3, linear bottleneck), ReLU6, width x{}"

MODELS = [
    ZooModel(
        name="mobilenetv2_x1.0",
        family="mobilenetv2",
        title="MobileNetV2 x1.0",
        factory=functools.partial(MobileNetV2, 1.0),
        params_m=3.50,
        params_source=_TIMM.format("mobilenetv2_100"),
        gmacs=0.30,
        gmacs_source=_PAPER.format("300M"),
        top1=71.8,
        top1_source="EfficientFormer paper (arXiv v1 abstract: 1.7 ms, 71.8%); the MobileNetV2 paper says 72.0",
        description=_DESCRIPTION.format("1.0"),
    ),
    ZooModel(
        name="mobilenetv2_x1.4",
        family="mobilenetv2",
        title="MobileNetV2 x1.4",
        factory=functools.partial(MobileNetV2, 1.4),
        params_m=6.11,
        params_source=_TIMM.format("mobilenetv2_140"),
        gmacs=0.585,
        gmacs_source=_PAPER.format("585M"),
        top1=74.7,
        top1_source="MobileNetV2 paper; EfficientFormer paper abstract (1.6 ms, 74.7%)",
        description=_DESCRIPTION.format("1.4"),
    ),
]
