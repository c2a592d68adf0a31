"""Torch building blocks of EfficientFormer and the models it is compared with (PAPER.md).

Written from the paper and the authors' code rather than imported (no torchvision here), and kept
close to their deploy form: eval mode, attention biases gathered once, BN left for compilers to fold.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module] | tuple[type[nn.Module], dict]] = {
    "relu": nn.ReLU,
    "gelu_erf": nn.GELU,
    "gelu_tanh": (nn.GELU, {"approximate": "tanh"}),
    "hardswish": nn.Hardswish,
    "silu": nn.SiLU,
}


def activation(act: str) -> nn.Module:
    """One nonlinearity by its opbench name (see ACTIVATIONS)."""
    spec = ACTIVATIONS[act]
    cls, kwargs = spec if isinstance(spec, tuple) else (spec, {})
    return cls(**kwargs)


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, padding), nn.BatchNorm2d(c_out))


def conv3x3_stem(widths: list[int], act: str = "relu", act_after_last: bool = True) -> nn.Sequential:
    """Stack of Conv3x3 s2 + BN (+ activation), 3 -> widths[0] -> ... : the EfficientFormer and LeViT stems."""
    layers: list[nn.Module] = []
    c_in = 3
    for i, c_out in enumerate(widths):
        layers.append(conv_bn(c_in, c_out, 3, 2, 1))
        if act_after_last or i < len(widths) - 1:
            layers.append(activation(act))
        c_in = c_out
    return nn.Sequential(*layers)


def efficientformer_stem(width: int) -> nn.Sequential:
    """Conv3x3 s2 (3 -> C/2), BN, ReLU, Conv3x3 s2 (C/2 -> C), BN, ReLU: total stride 4."""
    return conv3x3_stem([width // 2, width], act="relu")


def levit_stem(width: int = 256) -> nn.Sequential:
    """LeViT's four Conv3x3 s2 + BN, HardSwish between: 3 -> C/8 -> C/4 -> C/2 -> C, total stride 16."""
    return conv3x3_stem([width // 8, width // 4, width // 2, width], act="hardswish", act_after_last=False)


def patch_embed(width: int, kernel: int, stride: int, padding: int = 0) -> nn.Conv2d:
    """A single large-kernel convolution: DeiT (16x16 s16) and PoolFormer (7x7 s4 p2) patch embeddings."""
    return nn.Conv2d(3, width, kernel, stride, padding)


class PoolMixer(nn.Module):
    """PoolFormer/EfficientFormer token mixer: pool(x) - x, on 4D features."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x) - x


class Attention(nn.Module):
    """EfficientFormer MHSA on 3D tokens (B, N, C): key_dim 32, 8 heads, attn_ratio 4, LeViT-style bias."""

    def __init__(self, dim: int, resolution: int, key_dim: int = 32, num_heads: int = 8, attn_ratio: int = 4):
        super().__init__()
        self.num_heads, self.key_dim, self.scale = num_heads, key_dim, key_dim**-0.5
        self.d = attn_ratio * key_dim
        self.dh = self.d * num_heads
        self.qkv = nn.Linear(dim, self.dh + 2 * key_dim * num_heads)
        self.proj = nn.Linear(self.dh, dim)
        self.bias = AttentionBias(num_heads, resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, self.num_heads, -1).permute(0, 2, 1, 3)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.d], dim=3)
        attn = ((q @ k.transpose(-2, -1)) * self.scale + self.bias()).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, self.dh))


class To3D(nn.Module):
    """(B, C, H, W) -> (B, HW, C): EfficientFormer's Flat, LeViT's reshape before attention."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2)


class To4D(nn.Module):
    """(B, HW, C) -> (B, C, H, W) for a square grid."""

    def __init__(self, resolution: int):
        super().__init__()
        self.resolution = resolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).reshape(x.shape[0], -1, self.resolution, self.resolution)


def reshaped(module: nn.Module, resolution: int) -> nn.Sequential:
    """Run a 3D-token module on 4D features: 4D -> 3D, module, 3D -> 4D."""
    return nn.Sequential(To3D(), module, To4D(resolution))


def conv_mlp(dim: int, act: str = "gelu_erf", ratio: int = 4) -> nn.Sequential:
    """Meta4D MLP: Conv1x1 (C -> 4C), BN, act, Conv1x1 (4C -> C), BN."""
    hidden = dim * ratio
    return nn.Sequential(conv_bn(dim, hidden, 1), activation(act), conv_bn(hidden, dim, 1))


def linear_mlp(dim: int, act: str = "gelu_erf", ratio: int = 4, norm: bool = True) -> nn.Sequential:
    """Meta3D MLP on tokens: (LN), Linear (C -> 4C), act, Linear (4C -> C)."""
    hidden = dim * ratio
    layers = [nn.LayerNorm(dim)] if norm else []
    return nn.Sequential(*layers, nn.Linear(dim, hidden), activation(act), nn.Linear(hidden, dim))


def gn_conv_mlp(dim: int, act: str = "gelu_erf", ratio: int = 4) -> nn.Sequential:
    """PoolFormer MLP: GroupNorm(1), Conv1x1 (C -> 4C), act, Conv1x1 (4C -> C)."""
    hidden = dim * ratio
    return nn.Sequential(nn.GroupNorm(1, dim), nn.Conv2d(dim, hidden, 1), activation(act), nn.Conv2d(hidden, dim, 1))


class Meta4D(nn.Module):
    """EfficientFormer Meta4D block on 4D features: x + ls1 * (pool(x) - x); x + ls2 * Conv-BN MLP(x)."""

    def __init__(self, dim: int):
        super().__init__()
        self.token_mixer = PoolMixer()
        self.ls1 = LayerScale(dim, four_d=True)
        self.mlp = conv_mlp(dim)
        self.ls2 = LayerScale(dim, four_d=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.token_mixer(x))
        return x + self.ls2(self.mlp(x))


class Meta3D(nn.Module):
    """EfficientFormer Meta3D block on tokens (B, N, C): x + ls1 * MHSA(LN(x)); x + ls2 * Linear MLP(LN(x))."""

    def __init__(self, dim: int, resolution: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mixer = Attention(dim, resolution)
        self.ls1 = LayerScale(dim, four_d=False)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = linear_mlp(dim, norm=False)
        self.ls2 = LayerScale(dim, four_d=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.token_mixer(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class AddOne(nn.Module):
    """Close to no work: what one call of a backend costs when the work is nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1.0


# Shared by the model zoo (opbench/zoo/): layer scale, conv-norm-act, MLP, MHSA, inverted residuals.


class LayerScale(nn.Module):
    """x * layer_scale, the scale broadcast over 4D (C, 1, 1) or 3D (C,) features; named so Case.build randomizes it."""

    def __init__(self, dim: int, four_d: bool, init: float = 1e-5):
        super().__init__()
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1) if four_d else (dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.layer_scale


def conv_norm_act(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    bias: bool = False,
    act: Callable[[], nn.Module] | None = None,
) -> nn.Sequential:
    """Conv (symmetric padding kernel // 2), BatchNorm2d, optional activation: children conv, bn (, act)."""
    layers: dict[str, nn.Module] = {
        "conv": nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=bias),
        "bn": nn.BatchNorm2d(c_out),
    }
    if act is not None:
        layers["act"] = act()
    return nn.Sequential(OrderedDict(layers))


class Mlp(nn.Module):
    """fc1, activation, fc2: Linear on tokens (B, N, C) or, with conv=True, Conv1x1 on 4D features."""

    def __init__(self, dim: int, hidden: int, act: Callable[[], nn.Module] = nn.GELU, conv: bool = False):
        super().__init__()
        layer = functools.partial(nn.Conv2d, kernel_size=1) if conv else nn.Linear
        self.fc1 = layer(dim, hidden)
        self.act = act()
        self.fc2 = layer(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MultiHeadAttention(nn.Module):
    """ViT MHSA on tokens (B, N, C): one qkv Linear, softmax(q k^T / sqrt(d)) v written out (no fused SDPA), proj."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class TransformerBlock(nn.Module):
    """Pre-norm ViT block: x + MHSA(LN(x)), x + MLP(LN(x)) (DeiT, MobileViT)."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float, act: Callable[[], nn.Module] = nn.GELU, eps: float = 1e-6
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.token_mixer = MultiHeadAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.token_mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def relative_bias_index(resolution: int, stride: int = 1) -> torch.Tensor:
    """LeViT-style bias index: query q (every stride-th point) to key k -> |dy| * resolution + |dx|, a table of r*r."""
    keys = torch.stack(torch.meshgrid(torch.arange(resolution), torch.arange(resolution), indexing="ij")).flatten(1)
    points = torch.arange(0, resolution, stride)
    queries = torch.stack(torch.meshgrid(points, points, indexing="ij")).flatten(1)
    offsets = (queries[:, :, None] - keys[:, None, :]).abs()
    return offsets[0] * resolution + offsets[1]


class AttentionBias(nn.Module):
    """A learned (heads, r*r) bias table gathered to (heads, Nq, Nk): on every call in training, once on entering eval
    (as blocks.Attention does), so an exported eval graph holds a constant."""

    def __init__(self, num_heads: int, resolution: int, stride: int = 1):
        super().__init__()
        idxs = relative_bias_index(resolution, stride)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, resolution * resolution))
        self.register_buffer("attention_bias_idxs", idxs, persistent=False)
        self.register_buffer("ab", torch.zeros(num_heads, *idxs.shape), persistent=False)

    def train(self, mode: bool = True) -> AttentionBias:
        super().train(mode)
        if not mode:
            with torch.no_grad():
                self.ab.copy_(self.attention_biases[:, self.attention_bias_idxs])
        return self

    def forward(self) -> torch.Tensor:
        return self.attention_biases[:, self.attention_bias_idxs] if self.training else self.ab


class SqueezeExcite(nn.Module):
    """x * sigmoid(conv_expand(act(conv_reduce(mean_hw(x))))) (EfficientNet)."""

    def __init__(self, channels: int, reduced: int, act: Callable[[], nn.Module] = nn.SiLU):
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, reduced, 1)
        self.act = act()
        self.conv_expand = nn.Conv2d(reduced, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.conv_expand(self.act(self.conv_reduce(x.mean((2, 3), keepdim=True)))))


class DepthwiseSeparable(nn.Module):
    """Depthwise kxk conv-BN-act, optional SE, pointwise conv-BN (no activation); residual when shapes allow."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, act: Callable[[], nn.Module], se_reduced: int = 0
    ):
        super().__init__()
        self.conv_dw = conv_norm_act(c_in, c_in, kernel, stride, groups=c_in, act=act)
        self.se = SqueezeExcite(c_in, se_reduced, act) if se_reduced else nn.Identity()
        self.conv_pw = conv_norm_act(c_in, c_out, 1)
        self.has_skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_pw(self.se(self.conv_dw(x)))
        return x + out if self.has_skip else out


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand conv-BN-act, depthwise kxk conv-BN-act, optional SE, 1x1 project conv-BN
    (linear bottleneck); residual when stride is 1 and the widths match."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        expand: int,
        act: Callable[[], nn.Module],
        se_reduced: int = 0,
    ):
        super().__init__()
        mid = c_in * expand
        self.conv_pw = conv_norm_act(c_in, mid, 1, act=act)
        self.conv_dw = conv_norm_act(mid, mid, kernel, stride, groups=mid, act=act)
        self.se = SqueezeExcite(mid, se_reduced, act) if se_reduced else nn.Identity()
        self.conv_pwl = conv_norm_act(mid, c_out, 1)
        self.has_skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))
        return x + out if self.has_skip else out


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a width to a multiple of divisor, never below 90% of it (the MobileNet / timm rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded
