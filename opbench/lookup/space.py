"""EfficientFormer's slimming search space (the paper's latency-driven search), and the few probe models whose blocks
cover every block any configuration of it uses.

Search space (document of record; the paper searched stage widths, stage depths and the number of MB3D blocks in the
last stage of a supernet, without publishing its grid): EfficientFormer's macro-structure (blocks.efficientformer_stem,
Conv3x3 s2 + BN downsampling, Meta4D stages, one Flat and Meta3D blocks at the end of stage 4, the distilled head)
with
- the width of each stage one of L1's, L3's or L7's at that stage (WIDTHS),
- the depth of each stage in DEPTHS (spanning L1 to L7),
- the number of Meta3D blocks in stage 4 from 1 to its depth.
"""

from __future__ import annotations

import functools
import itertools

from opbench.lookup.decompose import Source
from opbench.zoo import efficientformer
from opbench.zoo.efficientformer import EfficientFormer

FAMILY = "efficientformer"
WIDTHS = tuple(tuple(efficientformer.WIDTHS[v][i] for v in ("l1", "l3", "l7")) for i in range(4))
DEPTHS = (range(2, 7), range(2, 7), range(6, 19, 2), range(3, 9))
PROBE_DEPTHS = (1, 1, 1, 2)  # one Meta4D per stage, then Flat and one Meta3D: every block kind once


def valid(widths: tuple[int, ...]) -> bool:
    """Widths must grow stage to stage (EfficientFormer downsamples exactly where the width changes)."""
    return all(a < b for a, b in itertools.pairwise(widths))


def probe_widths() -> list[tuple[int, ...]]:
    """Few width tuples in which every valid (stage i-1, stage i) pair of width choices occurs: each tuple of the
    space, in order, is kept when it brings a pair not seen yet."""
    seen: set[tuple[int, int, int]] = set()
    kept = []
    for widths in filter(valid, itertools.product(*WIDTHS)):
        pairs = {(i, a, b) for i, (a, b) in enumerate(itertools.pairwise(widths))}
        if pairs - seen:
            kept.append(widths)
            seen |= pairs
    return kept


def probe_name(widths: tuple[int, ...]) -> str:
    return "slim_probe_" + "-".join(map(str, widths))


@functools.cache
def probe_sources() -> list[Source]:
    return [
        Source(probe_name(w), FAMILY, functools.partial(EfficientFormer, w, PROBE_DEPTHS, 1)) for w in probe_widths()
    ]
