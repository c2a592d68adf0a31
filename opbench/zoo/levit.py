"""LeViT-256: Graham et al., "LeViT: a Vision Transformer in ConvNet's Clothing for Faster Inference", ICCV 2021.

Read from facebookresearch/LeViT and timm's levit.py (Linear mode, distilled). Stem of four Conv3x3 s2 + BN with the
activation between (blocks.conv3x3_stem; its convs carry a bias, the reference's do not: 480 parameters that BN folding
absorbs); tokens (B, N, C) from then on, every Linear followed by BatchNorm1d, so each one flattens to (B*N, C) and
back; attention with a learned bias per head and offset; between stages a shrinking attention (queries subsampled
2x2) and an MLP; head: mean over tokens, BN + Linear twice (classifier and distillation), averaged.
The published model uses HardSwish everywhere; `levit_256_gelu` is the same network with GELU, the variant the
EfficientFormer paper measured on iPhone 12.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from opbench import blocks
from opbench.zoo.base import ZooModel

WIDTHS = (256, 384, 512)
DEPTHS = (4, 4, 4)
HEADS = (4, 6, 8)
KEY_DIM, ATTN_RATIO, MLP_RATIO = 32, 2, 2
RESOLUTIONS = (14, 7, 4)  # at 224x224 input: stride-16 stem, then 2x2-subsampling attention between stages


class LinearNorm(nn.Module):
    """Linear (no bias) then BatchNorm1d over the tokens."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.linear = nn.Linear(c_in, c_out, bias=False)
        self.bn = nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        return self.bn(x.flatten(0, 1)).reshape_as(x)


class NormLinear(nn.Module):
    """BatchNorm1d then Linear: one classifier head."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(c_in)
        self.linear = nn.Linear(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.bn(x))


class Attention(nn.Module):
    """MHSA on tokens: qkv LinearNorm, softmax(q k^T * scale + bias), act, proj LinearNorm."""

    def __init__(self, dim: int, num_heads: int, resolution: int, act: str):
        super().__init__()
        self.num_heads, self.scale = num_heads, KEY_DIM**-0.5
        self.val_dim = ATTN_RATIO * KEY_DIM
        self.qkv = LinearNorm(dim, num_heads * (2 * KEY_DIM + self.val_dim))
        self.bias = blocks.AttentionBias(num_heads, resolution)
        self.act = blocks.activation(act)
        self.proj = LinearNorm(num_heads * self.val_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, self.num_heads, -1).split([KEY_DIM, KEY_DIM, self.val_dim], dim=3)
        q, k, v = q.permute(0, 2, 1, 3), k.permute(0, 2, 3, 1), v.permute(0, 2, 1, 3)
        attn = (q @ k * self.scale + self.bias()).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, -1)
        return self.proj(self.act(x))


class Subsample(nn.Module):
    """Tokens of an r x r grid -> the tokens of every other row and column."""

    def __init__(self, resolution: int):
        super().__init__()
        self.resolution = resolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        return x.view(b, self.resolution, self.resolution, c)[:, ::2, ::2].reshape(b, -1, c)


class AttentionSubsample(nn.Module):
    """Shrinking attention: keys/values from all tokens, queries from the 2x2-subsampled grid; out width changes."""

    def __init__(self, c_in: int, c_out: int, resolution: int, act: str):
        super().__init__()
        self.num_heads, self.scale = c_in // KEY_DIM, KEY_DIM**-0.5
        self.val_dim = 4 * KEY_DIM  # attn_ratio 4 in the shrinking attention
        self.kv = LinearNorm(c_in, self.num_heads * (KEY_DIM + self.val_dim))
        self.q_subsample = Subsample(resolution)
        self.q = LinearNorm(c_in, self.num_heads * KEY_DIM)
        self.bias = blocks.AttentionBias(self.num_heads, resolution, stride=2)
        self.act = blocks.activation(act)
        self.proj = LinearNorm(self.num_heads * self.val_dim, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        k, v = self.kv(x).view(b, n, self.num_heads, -1).split([KEY_DIM, self.val_dim], dim=3)
        k, v = k.permute(0, 2, 3, 1), v.permute(0, 2, 1, 3)
        q = self.q(self.q_subsample(x)).view(b, -1, self.num_heads, KEY_DIM).permute(0, 2, 1, 3)
        attn = (q @ k * self.scale + self.bias()).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, -1, self.num_heads * self.val_dim)
        return self.proj(self.act(x))


class Mlp(nn.Module):
    """LinearNorm (C -> 2C), act, LinearNorm (2C -> C)."""

    def __init__(self, dim: int, hidden: int, act: str):
        super().__init__()
        self.ln1 = LinearNorm(dim, hidden)
        self.act = blocks.activation(act)
        self.ln2 = LinearNorm(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln2(self.act(self.ln1(x)))


class Block(nn.Module):
    """x + Attention(x); x + MLP(x) (no LayerNorm, no layer scale)."""

    def __init__(self, dim: int, num_heads: int, resolution: int, act: str):
        super().__init__()
        self.token_mixer = Attention(dim, num_heads, resolution, act)
        self.mlp = Mlp(dim, dim * MLP_RATIO, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.token_mixer(x)
        return x + self.mlp(x)


class Downsample(nn.Module):
    """Shrinking attention, then x + MLP(x)."""

    def __init__(self, c_in: int, c_out: int, resolution: int, act: str):
        super().__init__()
        self.attn = AttentionSubsample(c_in, c_out, resolution, act)
        self.mlp = Mlp(c_out, c_out * MLP_RATIO, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn(x)
        return x + self.mlp(x)


class Stage(nn.Module):
    def __init__(self, c_in: int, dim: int, index: int, act: str):
        super().__init__()
        self.downsample = Downsample(c_in, dim, RESOLUTIONS[index - 1], act) if index else nn.Identity()
        self.blocks = nn.Sequential(*(Block(dim, HEADS[index], RESOLUTIONS[index], act) for _ in range(DEPTHS[index])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class DistilledHead(nn.Module):
    """Mean over tokens, (fc(x) + dist(x)) / 2 with fc and dist each BN + Linear."""

    def __init__(self, dim: int, num_classes: int = 1000):
        super().__init__()
        self.fc = NormLinear(dim, num_classes)
        self.dist = NormLinear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.mean(dim=1)
        return (self.fc(x) + self.dist(x)) / 2


class LeViT(nn.Module):
    def __init__(self, act: str = "hardswish", num_classes: int = 1000):
        super().__init__()
        w = WIDTHS[0]
        self.stem = blocks.conv3x3_stem([w // 8, w // 4, w // 2, w], act=act, act_after_last=False)
        self.to_tokens = blocks.To3D()
        stages, c_in = [], w
        for i, dim in enumerate(WIDTHS):
            stages.append(Stage(c_in, dim, i, act))
            c_in = dim
        self.stages = nn.Sequential(*stages)
        self.head = DistilledHead(WIDTHS[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.to_tokens(self.stem(x))))


_TIMM = "timm 1.0.31 create_model('levit_256') (MODELS.md)"
_PAPER = "LeViT paper (Graham et al. 2021), main results: 1120 MFLOPs (multiply-adds)"
_TOP1 = "LeViT paper, main results (distilled, 1000 epochs); EfficientFormer paper (PAPER.md)"

MODELS = [
    ZooModel(
        name="levit_256",
        family="levit",
        title="LeViT-256",
        factory=functools.partial(LeViT, "hardswish"),
        params_m=18.89,
        params_source=_TIMM,
        gmacs=1.12,
        gmacs_source=_PAPER,
        top1=81.6,
        top1_source=_TOP1,
        description="Conv3x3 stem to 256, attention on 3D tokens with BN after every Linear, HardSwish (as published)",
    ),
    ZooModel(
        name="levit_256_gelu",
        family="levit",
        title="LeViT-256 (GELU)",
        factory=functools.partial(LeViT, "gelu_erf"),
        params_m=18.89,
        params_source=_TIMM + ", act_layer='gelu' (same parameters)",
        gmacs=1.12,
        gmacs_source=_PAPER,
        top1=81.6,
        top1_source=_TOP1 + "; the EfficientFormer paper's iPhone figure uses this variant",
        description="LeViT-256 with every HardSwish replaced by GELU (EfficientFormer's iPhone 12 measurement)",
    ),
]
