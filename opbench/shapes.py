"""EfficientFormer stage shapes (the zoo's EfficientFormer table) and the grids of them that a run covers."""

from __future__ import annotations

from dataclasses import dataclass

from opbench.errors import OpbenchError
from opbench.zoo.efficientformer import DEPTHS, RESOLUTIONS, WIDTHS

IMAGE = 224
GRIDS = {
    "default": ("l1",),
    "full": ("l1", "l3", "l7"),
}


@dataclass(frozen=True)
class Stage:
    model: str
    index: int  # 1..4
    width: int
    resolution: int
    depth: int

    @property
    def label(self) -> str:
        return f"{self.model.upper()} S{self.index}: c{self.width} {self.resolution}x{self.resolution}"


def stages(grid: str) -> list[Stage]:
    """Every stage of the grid's models, without repeating a (width, resolution) pair."""
    if grid not in GRIDS:
        raise OpbenchError(f"unknown grid {grid!r}; choose one of {', '.join(GRIDS)}")
    seen: set[tuple[int, int]] = set()
    found = []
    for model in GRIDS[grid]:
        stages_of = zip(WIDTHS[model], RESOLUTIONS, DEPTHS[model], strict=True)
        for index, (width, res, depth) in enumerate(stages_of, start=1):
            if (width, res) not in seen:
                seen.add((width, res))
                found.append(Stage(model, index, width, res, depth))
    return found
