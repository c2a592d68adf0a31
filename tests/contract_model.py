"""A whole model that follows the naming contract of opbench.attribution, assembled from opbench.blocks pieces.

EfficientFormer-shaped: `stem` (Conv3x3 s2 x2), stages of Meta4D blocks (`token_mixer` = pool, `mlp` = Conv-BN MLP),
a `downsample` Conv3x3 s2 + BN between stages, a reshape to tokens (`flat`), Meta3D blocks at the end of the last
stage (`token_mixer` = MHSA, `mlp` = Linear MLP) and a `head` (LayerNorm, token mean, Linear). Only for tests and
manual checks: the model zoo lives in opbench/zoo/.
"""

from __future__ import annotations

import torch
from torch import nn

from opbench.blocks import Attention, PoolMixer, To3D, conv_bn, conv_mlp, efficientformer_stem, linear_mlp


class Meta4D(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.token_mixer = PoolMixer()
        self.mlp = conv_mlp(dim)
        self.layer_scale_1 = nn.Parameter(torch.full((dim, 1, 1), 1e-5))
        self.layer_scale_2 = nn.Parameter(torch.full((dim, 1, 1), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer_scale_1 * self.token_mixer(x)
        return x + self.layer_scale_2 * self.mlp(x)


class Meta3D(nn.Module):
    def __init__(self, dim: int, resolution: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mixer = Attention(dim, resolution)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = linear_mlp(dim, norm=False)
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), 1e-5))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer_scale_1 * self.token_mixer(self.norm1(x))
        return x + self.layer_scale_2 * self.mlp(self.norm2(x))


class Stage(nn.Module):
    def __init__(self, c_in: int, dim: int, depth: int, num_3d: int, resolution: int):
        super().__init__()
        self.downsample = conv_bn(c_in, dim, 3, 2, 1) if c_in != dim else nn.Identity()
        blocks: list[nn.Module] = [Meta4D(dim) for _ in range(depth - num_3d)]
        if num_3d:
            blocks += [To3D()] + [Meta3D(dim, resolution) for _ in range(num_3d)]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class Head(nn.Module):
    """Final LayerNorm on tokens, mean over tokens, classifier and distillation classifier averaged."""

    def __init__(self, dim: int, classes: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, classes)
        self.dist = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x).mean(1)
        return (self.fc(x) + self.dist(x)) / 2


class ContractFormer(nn.Module):
    def __init__(self, widths, depths, num_3d: int = 1, image: int = 224, classes: int = 1000):
        super().__init__()
        self.stem = efficientformer_stem(widths[0])
        resolution = image // 4
        stages, c_in = [], widths[0]
        for i, (dim, depth) in enumerate(zip(widths, depths, strict=True)):
            if i:
                resolution = (resolution + 1) // 2
            last = i == len(widths) - 1
            stages.append(Stage(c_in, dim, depth, num_3d if last else 0, resolution))
            c_in = dim
        self.stages = nn.Sequential(*stages)
        self.head = Head(widths[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def tiny() -> ContractFormer:
    """Two stages (16, 32 channels) at 64x64: every category of the contract, a fraction of a millisecond."""
    return ContractFormer((16, 32), (1, 1), num_3d=1, image=64, classes=10)


def small() -> ContractFormer:
    """Two stages (32, 64 channels) at 112x112, a few milliseconds: ops large enough that a profiler's cost per
    operator (a few microseconds) does not dominate them."""
    return ContractFormer((32, 64), (2, 1), num_3d=1, image=112, classes=100)


def efficientformer_l1() -> ContractFormer:
    """EfficientFormer-L1's widths and depths (48, 96, 224, 448; 3, 2, 6, 4; one Meta3D block) at 224x224."""
    return ContractFormer((48, 96, 224, 448), (3, 2, 6, 4), num_3d=1, image=224, classes=1000)
