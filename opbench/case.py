"""The Case: one isolated piece of a network with fixed shapes, its id, and what it costs.

A case is plain data plus a module factory; building is deferred so that listing cases is cheap and
every backend builds the same seeded module and input.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from opbench.errors import BrokenCase, error_line

SEED = 0
BYTES_PER_ELEMENT = 4  # float32, the protocol's precision
COLD_SUFFIX = "-cold"  # a cold case's id: its hot twin's id and this (opbench.measure.cold)

Weights = Literal["hot", "cold"]


@dataclass(frozen=True)
class Costs:
    """MACs and parameters counted by torch.utils.flop_counter; bytes = input + output + weights, once;
    weight_bytes: the parameters and buffers alone (what a cold case's copies hold)."""

    macs: int
    param_count: int
    bytes: int
    weight_bytes: int


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
    # the cache state its weights are timed in: hot (the case called again and again) or cold (each call on another
    # of several prepared copies, opbench.measure.cold); a cold case computes what its hot twin computes
    weights: Weights = "hot"

    @property
    def id(self) -> str:
        """Stable id: suite/family/variant/params, e.g. obs1/patch_embed/deit_k16s16/c384; a cold case's ends in
        COLD_SUFFIX (blocks/efficientformer/meta4d/c48_h56-cold)."""
        shape = "_".join(f"{key}{value}" for key, value in self.params)
        hot = "/".join(part for part in (self.suite, self.family, self.variant, shape) if part)
        return hot + (COLD_SUFFIX if self.weights == "cold" else "")

    def cold(self) -> Case:
        """The case timed with its weights cold; it keeps this case as its hot twin, so costs and the fingerprint
        are counted once for both."""
        twin = dataclasses.replace(self, weights="cold")
        twin.__dict__["hot"] = self  # the twin's cached `hot`
        return twin

    @functools.cached_property
    def hot(self) -> Case:
        """The case timed with its weights hot: itself, or a cold case's twin (what backends prepare and cache)."""
        return self if self.weights == "hot" else dataclasses.replace(self, weights="hot")

    @property
    def slug(self) -> str:
        """The id as a file name."""
        return self.id.replace("/", "__")

    def build(self) -> nn.Module:
        """The seeded module in eval mode, BN statistics and layer scales randomized so checks see them.
        BrokenCase when the factory raises or returns no nn.Module."""
        torch.manual_seed(SEED)
        try:
            module = self.factory()
        except Exception as exc:
            raise BrokenCase(f"case {self.id}: its factory raised {error_line(exc)}") from exc
        if not isinstance(module, nn.Module):
            raise BrokenCase(f"case {self.id}: its factory returned a {type(module).__name__}, not a torch.nn.Module")
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

    @property
    def costs(self) -> Costs:
        """What the case costs, counted once. BrokenCase (naming the case and why) when it cannot be built or run."""
        counted = self._counted
        if isinstance(counted, BrokenCase):
            raise counted
        return counted

    @property
    def problem(self) -> str | None:
        """Why the case cannot be built or run in eager PyTorch (one line naming the case), or None. Known once
        its costs are counted, so that a broken case of a user's suite is its own failed result and stops nothing
        else: ordering and sorting by size (param_count) go on without it."""
        return str(self._counted) if isinstance(self._counted, BrokenCase) else None

    @property
    def param_count(self) -> int:
        """Its parameters; 0 for a broken case."""
        return 0 if self.problem else self.costs.param_count

    @property
    def macs(self) -> int | None:
        """Its multiply-accumulates; None for a broken case."""
        return None if self.problem else self.costs.macs

    @functools.cached_property
    def _counted(self) -> Costs | BrokenCase:
        if self.weights != "hot":
            return self.hot._counted
        shape = "x".join(map(str, self.input_shape))
        try:
            module, x = self.build(), self.example_input()
            counter = FlopCounterMode(display=False)
        except BrokenCase as exc:
            return exc
        except Exception as exc:
            return BrokenCase(f"case {self.id}: no input of shape {shape} ({error_line(exc)})")
        try:
            with torch.inference_mode(), counter:
                out = module(x)
        except Exception as exc:
            return BrokenCase(f"case {self.id}: the module rejects its input {shape} ({error_line(exc)})")
        if not isinstance(out, torch.Tensor):
            return BrokenCase(f"case {self.id}: the module returns a {type(out).__name__}; opbench needs one tensor")
        weights = sum(t.numel() for t in module.parameters()) + sum(t.numel() for t in module.buffers())
        return Costs(
            macs=counter.get_total_flops() // 2,
            param_count=sum(p.numel() for p in module.parameters()),
            bytes=(x.numel() + out.numel() + weights) * BYTES_PER_ELEMENT,
            weight_bytes=weights * BYTES_PER_ELEMENT,
        )

    @functools.cached_property
    def fingerprint(self) -> str:
        """Hash of what the case computes: structure, weights and input shape. Keys exported artifacts; a cold
        case's is its hot twin's (it computes the same)."""
        if self.weights != "hot":
            return self.hot.fingerprint
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
