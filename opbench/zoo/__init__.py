"""The model zoo: whole networks of the EfficientFormer paper's comparisons, one file per family (timm's style).

Pure torch definitions, random initialisation, no weights; each pinned to its reference parameter count and MACs by
tests/test_models.py. `ZOO` maps a name (the case id is `models/<name>`) to its ZooModel; building a module is left to
the ZooModel's factory, so importing the package builds nothing.
"""

from __future__ import annotations

from opbench.zoo import (
    deit,
    efficientformer,
    efficientformer_v2,
    efficientnet,
    levit,
    mobilenetv2,
    mobilevit,
    poolformer,
)
from opbench.zoo.base import ZooModel

FAMILIES = (efficientformer, efficientformer_v2, mobilenetv2, poolformer, levit, deit, efficientnet, mobilevit)


def _registry() -> dict[str, ZooModel]:
    zoo: dict[str, ZooModel] = {}
    for family in FAMILIES:
        for model in family.MODELS:
            if model.name in zoo:
                raise ValueError(f"two zoo models are named {model.name!r}")
            zoo[model.name] = model
    return zoo


ZOO: dict[str, ZooModel] = _registry()

__all__ = ["FAMILIES", "ZOO", "ZooModel"]
