"""The zoo's entry type: one whole network, its factory and the published numbers it is pinned to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

IMAGE_224 = (1, 3, 224, 224)


@dataclass(frozen=True)
class ZooModel:
    """A model of the zoo. factory is a module-level zero-argument callable (or functools.partial) that builds the
    randomly initialised nn.Module; it is called again for every backend, so it must be cheap and picklable."""

    name: str
    family: str
    title: str
    factory: Callable[[], nn.Module] = field(repr=False, compare=False)
    params_m: float  # reference parameter count, millions
    params_source: str
    gmacs: float  # reference multiply-accumulates, G, counted at macs_input_shape
    gmacs_source: str
    top1: float  # published ImageNet-1K top-1, %
    top1_source: str
    description: str = ""
    input_shape: tuple[int, ...] = IMAGE_224
    reference_input_shape: tuple[int, ...] | None = None  # where the reference MACs were counted, if not input_shape

    @property
    def macs_input_shape(self) -> tuple[int, ...]:
        """The input shape at which `gmacs` was counted (MobileViT's reference is at its native 256x256)."""
        return self.reference_input_shape or self.input_shape
