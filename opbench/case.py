"""The Case: one isolated piece of a network with fixed shapes, its id, and what it costs.

A case is plain data plus a module factory; building is deferred so that listing cases is cheap and
every backend builds the same seeded module and input.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

SEED = 0
BYTES_PER_ELEMENT = 4  # float32, the protocol's precision


@dataclass(frozen=True)
class Costs:
    """MACs and parameters counted by torch.utils.flop_counter; bytes = input + output + weights, once."""

    macs: int
    param_count: int
    bytes: int


@dataclass(frozen=True)
class Case:
    suite: str
    family: str
    variant: str
    params: tuple[tuple[str, int], ...]
    input_shape: tuple[int, ...]
    factory: Callable[[], nn.Module] = field(repr=False, compare=False)
    group: str = ""
    description: str = ""

    @property
    def id(self) -> str:
        """Stable id: suite/family/variant/params, e.g. obs1/patch_embed/deit_k16s16/c384."""
        shape = "_".join(f"{key}{value}" for key, value in self.params)
        return "/".join(part for part in (self.suite, self.family, self.variant, shape) if part)

    @property
    def slug(self) -> str:
        """The id as a file name."""
        return self.id.replace("/", "__")

    def build(self) -> nn.Module:
        """The seeded module in eval mode, BN statistics and layer scales randomized so checks see them."""
        torch.manual_seed(SEED)
        module = self.factory()
        generator = torch.Generator().manual_seed(SEED)
        with torch.no_grad():
            for name, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
                if name.endswith("running_mean"):
                    tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
                elif name.endswith("running_var") or name.endswith("layer_scale"):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
                elif name.endswith("attention_biases"):
                    tensor.copy_(torch.randn(tensor.shape, generator=generator))
        module.requires_grad_(False)
        return module.eval()

    def example_input(self) -> torch.Tensor:
        return torch.randn(self.input_shape, generator=torch.Generator().manual_seed(SEED + 1))

    @functools.cached_property
    def costs(self) -> Costs:
        module, x = self.build(), self.example_input()
        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            out = module(x)
        weights = sum(t.numel() for t in module.parameters()) + sum(t.numel() for t in module.buffers())
        return Costs(
            macs=counter.get_total_flops() // 2,
            param_count=sum(p.numel() for p in module.parameters()),
            bytes=(x.numel() + out.numel() + weights) * BYTES_PER_ELEMENT,
        )

    @functools.cached_property
    def fingerprint(self) -> str:
        """Hash of what the case computes: structure, weights and input shape. Keys exported artifacts."""
        module = self.build()
        digest = hashlib.sha256(f"{self.id}|{self.input_shape}|{module!r}".encode())
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.contiguous().numpy().tobytes())
        return digest.hexdigest()


def make_case(
    suite: str,
    family: str,
    variant: str,
    factory: Callable[[], nn.Module],
    input_shape: tuple[int, ...],
    group: str,
    description: str = "",
    **params: int,
) -> Case:
    return Case(suite, family, variant, tuple(params.items()), tuple(input_shape), factory, group, description)


def image(c: int, h: int) -> tuple[int, int, int, int]:
    """Batch-1 NCHW shape of a square feature map."""
    return (1, c, h, h)


def tokens(c: int, h: int) -> tuple[int, int, int]:
    """Batch-1 (B, N, C) shape of the tokens of a square feature map."""
    return (1, h * h, c)
