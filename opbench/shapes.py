"""EfficientFormer stage shapes (PAPER.md) and the grids of them that a run covers."""

from __future__ import annotations

from dataclasses import dataclass

from opbench.errors import OpbenchError

IMAGE = 224
STAGE_RESOLUTIONS = (56, 28, 14, 7)
MODELS = {  # widths S1..S4, depths S1..S4
    "l1": ((48, 96, 224, 448), (3, 2, 6, 4)),
    "l3": ((64, 128, 320, 512), (4, 4, 12, 6)),
    "l7": ((96, 192, 384, 768), (6, 6, 18, 8)),
}
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
        widths, depths = MODELS[model]
        for index, (width, res, depth) in enumerate(zip(widths, STAGE_RESOLUTIONS, depths, strict=True), start=1):
            if (width, res) not in seen:
                seen.add((width, res))
                found.append(Stage(model, index, width, res, depth))
    return found
