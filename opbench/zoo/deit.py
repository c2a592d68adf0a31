"""DeiT-S and DeiT-T (patch 16, 224): Touvron et al., "Training data-efficient image transformers & distillation
through attention", ICML 2021.

Read from timm's vision_transformer.py / deit.py (deit_small_patch16_224, deit_tiny_patch16_224, the non-distilled
models). Patch embedding: one Conv16x16 s16 (blocks.patch_embed) to 196 tokens, a class token, learned position
embeddings; 12 pre-norm blocks of LN + MHSA and LN + MLP (GELU) on consistently 3D tokens; head: LN, the class token,
Linear. Attention is written out (matmul, softmax, matmul) as in the 2021 code, not through fused SDPA.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from opbench import blocks
from opbench.zoo.base import ZooModel

WIDTHS = {"s": 384, "t": 192}
HEADS = {"s": 6, "t": 3}
DEPTH, MLP_RATIO, PATCH, TOKENS = 12, 4, 16, 14 * 14


class Head(nn.Module):
    """LN, the class token, Linear."""

    def __init__(self, dim: int, num_classes: int = 1000):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x)[:, 0])


class TokenEmbed(nn.Module):
    """The patch grid as tokens (B, N, C), the class token prepended, learned position embeddings added."""

    def __init__(self, dim: int):
        super().__init__()
        self.flat = blocks.To3D()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, TOKENS + 1, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flat(x)
        return torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed


class DeiT(nn.Module):
    def __init__(self, dim: int, num_heads: int, num_classes: int = 1000):
        super().__init__()
        self.stem = blocks.patch_embed(dim, PATCH, PATCH)
        self.to_tokens = TokenEmbed(dim)
        self.blocks = nn.Sequential(*(blocks.TransformerBlock(dim, num_heads, MLP_RATIO) for _ in range(DEPTH)))
        self.head = Head(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.to_tokens(self.stem(x))))


def deit(variant: str) -> DeiT:
    return DeiT(WIDTHS[variant], HEADS[variant])


_TOP1 = "DeiT paper (Touvron et al. 2021); the facebookresearch/deit README lists DeiT-small at 79.9"
_GMACS = {
    "s": "facebookresearch/deit README_revenge.md: ViT-S (the DeiT-S network) 4.6 GFLOPs (multiply-adds)",
    "t": "published 1.3 GFLOPs as quoted in MODELS.md (timm's results CSV counts 1.26)",
}
_DESCRIPTION = "16x16 s16 patch embedding, 12 blocks of LN-MHSA ({} heads) and LN-MLP (GELU) on 3D tokens, width {}"


def _entry(variant: str, title: str, timm_name: str, params_m: float, gmacs: float, top1: float) -> ZooModel:
    return ZooModel(
        name=f"deit_{variant}",
        family="deit",
        title=title,
        factory=functools.partial(deit, variant),
        params_m=params_m,
        params_source=f"timm 1.0.31 create_model('{timm_name}') (MODELS.md)",
        gmacs=gmacs,
        gmacs_source=_GMACS[variant],
        top1=top1,
        top1_source=_TOP1,
        description=_DESCRIPTION.format(HEADS[variant], WIDTHS[variant]),
    )


MODELS = [
    _entry("s", "DeiT-S", "deit_small_patch16_224", 22.05, 4.6, 79.8),
    _entry("t", "DeiT-T", "deit_tiny_patch16_224", 5.72, 1.3, 72.2),
]
