"""MobileViT-XS: Mehta and Rastegari, "MobileViT: Light-weight, General-purpose, and Mobile-friendly Vision
Transformer", ICLR 2022.

Read from apple/ml-cvnets and timm's mobilevit.py (mobilevit_xs, a ByobNet config). Stem Conv3x3 s2 + BN + SiLU;
MobileNetV2 inverted residuals (expand 4, SiLU); in the last three stages a strided inverted residual then a MobileViT
block: Conv3x3-BN-SiLU and a 1x1 conv to the transformer width, unfold into 2x2 patches (B*4, N, d), transformer
blocks (LN, MHSA with 4 heads, LN, MLP 2x with SiLU), LN, fold back, 1x1 conv-BN-SiLU, and a Conv3x3-BN-SiLU fusing
it with the block's input. Head: 1x1 conv-BN-SiLU to 384, mean, Linear.
MobileViT is published at 256x256; at the suite's 224x224 the last map is 7x7, which the block (as timm does)
resizes bilinearly to 8x8 for the 2x2 unfold and back to 7x7 after the fold.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from opbench import blocks
from opbench.zoo.base import ZooModel
from opbench.zoo.mobilenetv2 import ConvHead

STEM_WIDTH, HEAD_WIDTH, EXPAND, PATCH, HEADS, MLP_RATIO = 16, 384, 4, 2, 4, 2.0
# per stage: (width, inverted residuals, stride of the first, transformer width, transformer depth or 0)
ARCH = (
    (32, 1, 1, 0, 0),
    (48, 3, 2, 0, 0),
    (64, 1, 2, 96, 2),
    (80, 1, 2, 120, 4),
    (96, 1, 2, 144, 3),
)


class MobileViTBlock(nn.Module):
    """Local conv representation, unfold to patches, global transformer, fold, project, fuse with the input."""

    def __init__(self, dim: int, transformer_dim: int, depth: int):
        super().__init__()
        self.conv_kxk = blocks.conv_norm_act(dim, dim, 3, act=nn.SiLU)
        self.conv_1x1 = nn.Conv2d(dim, transformer_dim, 1, bias=False)
        self.transformer = nn.Sequential(
            *(blocks.TransformerBlock(transformer_dim, HEADS, MLP_RATIO, nn.SiLU, eps=1e-5) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(transformer_dim)
        self.conv_proj = blocks.conv_norm_act(transformer_dim, dim, 1, act=nn.SiLU)
        self.conv_fusion = blocks.conv_norm_act(2 * dim, dim, 3, act=nn.SiLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv_1x1(self.conv_kxk(x))
        b, c, h, w = x.shape
        nh, nw = math.ceil(h / PATCH), math.ceil(w / PATCH)
        resize = (nh * PATCH, nw * PATCH) != (h, w)
        if resize:
            x = F.interpolate(x, size=(nh * PATCH, nw * PATCH), mode="bilinear", align_corners=False)
        # unfold: (B, C, nh*p, nw*p) -> (B*p*p, nh*nw, C)
        x = x.reshape(b * c * nh, PATCH, nw, PATCH).transpose(1, 2)
        x = x.reshape(b, c, nh * nw, PATCH * PATCH).transpose(1, 3).reshape(b * PATCH * PATCH, nh * nw, c)
        x = self.norm(self.transformer(x))
        # fold: the inverse
        x = x.contiguous().view(b, PATCH * PATCH, nh * nw, c).transpose(1, 3).reshape(b * c * nh, nw, PATCH, PATCH)
        x = x.transpose(1, 2).reshape(b, c, nh * PATCH, nw * PATCH)
        if resize:
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        return self.conv_fusion(torch.cat((shortcut, self.conv_proj(x)), dim=1))


class MobileViT(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem = blocks.conv_norm_act(3, STEM_WIDTH, 3, 2, act=nn.SiLU)
        stages, c_in = [], STEM_WIDTH
        for c_out, repeats, stride, transformer_dim, depth in ARCH:
            layers: list[nn.Module] = []
            for j in range(repeats):
                layers.append(blocks.InvertedResidual(c_in, c_out, 3, stride if j == 0 else 1, EXPAND, nn.SiLU))
                c_in = c_out
            if depth:
                layers.append(MobileViTBlock(c_out, transformer_dim, depth))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.head = ConvHead(c_in, HEAD_WIDTH, nn.SiLU, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


MODELS = [
    ZooModel(
        name="mobilevit_xs",
        family="mobilevit",
        title="MobileViT-XS",
        factory=MobileViT,
        params_m=2.32,
        params_source="timm results/benchmark-infer-fp32-nchw-pt240-cpu-i9_10940x-dynamo.csv, mobilevit_xs "
        "(param_count 2.32; the paper says 2.3M)",
        gmacs=1.05,
        gmacs_source="timm results/benchmark-infer-fp32-nchw-pt240-cpu-i9_10940x-dynamo.csv, mobilevit_xs at "
        "256x256 (infer_gmacs 1.05); no published count at 224x224",
        top1=74.8,
        top1_source="MobileViT paper (Mehta and Rastegari 2022): 74.8% with 2.3M parameters",
        description="MobileNetV2 blocks and MobileViT blocks (unfold into 2x2 patches, transformer, fold), SiLU",
        reference_input_shape=(1, 3, 256, 256),
    ),
]
