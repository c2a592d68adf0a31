"""Latency-driven slimming (the EfficientFormer paper's search) over opbench.lookup.space, read from the block
lookup table. Accuracy is not measured here: the objective is the most MACs under the budget, MACs standing in for
accuracy (a proxy: within this family a larger network was the more accurate one in the paper's Table 1).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

from opbench.case import Case, make_case
from opbench.errors import OpbenchError
from opbench.lookup.decompose import Table
from opbench.lookup.gap import RAW_HOT, Predictor
from opbench.lookup.space import DEPTHS, FAMILY, WIDTHS, probe_name, probe_widths, valid
from opbench.lookup.table import cold_id
from opbench.options import is_positive_finite
from opbench.verdict import Measured
from opbench.zoo.efficientformer import EfficientFormer

Parts = dict[tuple, str]  # a part of a candidate -> the table entry (block case id) that times it


@dataclass(frozen=True)
class Candidate:
    widths: tuple[int, ...]
    depths: tuple[int, ...]
    num_meta3d: int
    predicted_s: float  # by the predictor the search used
    macs: int
    sum_s: float  # the raw sum (hot or cold, as the predictor reads) less the floor of every block but one

    @property
    def name(self) -> str:
        return f"w{'-'.join(map(str, self.widths))}_d{'-'.join(map(str, self.depths))}_m{self.num_meta3d}"

    def blocks(self, parts: Parts) -> list[str]:
        return candidate_blocks(parts, self.widths, self.depths, self.num_meta3d)

    def case(self) -> Case:
        factory = functools.partial(EfficientFormer, self.widths, self.depths, self.num_meta3d)
        return make_case("slim", FAMILY, self.name, factory, (1, 3, 224, 224), "slim", "slimmed EfficientFormer")


def parts(table: Table) -> Parts:
    """The table entry (block case id) of each part of a candidate, read off the probes' decompositions:
    ("stem", w0), ("down", i, w_prev, w), ("meta4d", i, w), ("to3d", w), ("meta3d", w), ("head", w)."""
    found: Parts = {}
    for widths in probe_widths():
        at = {u.path: u.case.id for u in table.uses[probe_name(widths)]}
        found[("stem", widths[0])] = at["stem"]
        for i, w in enumerate(widths):
            found[("meta4d", i, w)] = at[f"stages.{i}.blocks.0"]
            if i:
                found[("down", i, widths[i - 1], w)] = at[f"stages.{i}.downsample"]
        found[("to3d", widths[3])] = at["stages.3.blocks.1"]
        found[("meta3d", widths[3])] = at["stages.3.blocks.2"]
        found[("head", widths[3])] = at["head"]
    return found


def candidate_blocks(p: Parts, widths: tuple[int, ...], depths: tuple[int, ...], num_meta3d: int) -> list[str]:
    """The block sequence of a candidate, in EfficientFormer's order (tests check it against the walked
    decomposition of L1, L3 and L7)."""
    out = [p[("stem", widths[0])]]
    for i, (w, d) in enumerate(zip(widths, depths, strict=True)):
        if i:
            out.append(p[("down", i, widths[i - 1], w)])
        out += [p[("meta4d", i, w)]] * (d - (num_meta3d if i == 3 else 0))
    return out + [p[("to3d", widths[3])]] + [p[("meta3d", widths[3])]] * num_meta3d + [p[("head", widths[3])]]


def _dot(depths: tuple[int, ...], per: list) -> float:
    return sum(d * x for d, x in zip(depths, per, strict=True))


def search(
    table: dict[str, Measured],
    budget_s: float,
    parts: Parts,
    floor_id: str | None,
    predictor: Predictor = RAW_HOT,
    weight_bytes: dict[str, int] | None = None,
) -> Candidate:
    """The candidate with the most MACs (the accuracy proxy) whose predicted latency fits the budget; `floor_id`: the
    per-call floor's case, paid once by the whole model (opbench.lookup.predict); `predictor`: which sum (hot or
    cold) and what correction of it; `weight_bytes`: each block's weights (case id -> bytes), which a correction
    reads."""
    if not is_positive_finite(budget_s):
        raise OpbenchError(f"the budget must be a positive number of milliseconds, not {budget_s * 1e3:g}")
    timed = {k: cold_id(b) if predictor.cold else b for k, b in parts.items()}
    missing = sorted({b for b in timed.values() if not (b in table and table[b].ok)})
    missing += sorted({b for b in parts.values() if b not in table or table[b].macs is None} - set(missing))
    if missing:
        first = table.get(missing[0], Measured(missing[0], status="missing"))
        raise OpbenchError(
            f"the lookup table lacks {len(missing)} search-space block(s) on this device/backend, e.g. "
            f"{first.why_missing()}; measure the lookup table there"
        )
    floor = table[floor_id].median_s if floor_id in table and table[floor_id].ok else 0.0
    t = {k: table[b].median_s - floor for k, b in timed.items()}
    m = {k: table[b].macs for k, b in parts.items()}
    w = {k: (weight_bytes or {}).get(b, 0) for k, b in parts.items()}
    best: Candidate | None = None
    fastest = math.inf
    for widths in filter(valid, itertools.product(*WIDTHS)):
        keys = [("stem", widths[0])] + [("down", i, widths[i - 1], widths[i]) for i in range(1, 4)]
        keys += [("to3d", widths[3]), ("head", widths[3])]
        stage = [("meta4d", i, x) for i, x in enumerate(widths)]
        base = [floor + sum(t[k] for k in keys), sum(m[k] for k in keys), sum(w[k] for k in keys)]
        per = [[c[k] for k in stage] for c in (t, m, w)]  # one more Meta4D in each stage: time, MACs, weights
        extra = [c[("meta3d", widths[3])] - c[stage[3]] for c in (t, m, w)]  # a Meta3D in place of a Meta4D
        for depths in itertools.product(*DEPTHS):
            raw, macs, weights = (b + _dot(depths, p) for b, p in zip(base, per, strict=True))
            block_count = len(keys) + sum(depths)
            for k in range(1, depths[3] + 1):
                raw_k, macs_k = raw + k * extra[0], macs + k * extra[1]
                lat = predictor.latency(raw_k, weights + k * extra[2], block_count)
                fastest = min(fastest, lat)
                if lat <= budget_s and (best is None or (macs_k, -lat) > (best.macs, -best.predicted_s)):
                    best = Candidate(widths, depths, k, lat, macs_k, raw_k)
    if best is None:
        raise OpbenchError(
            f"no configuration fits {budget_s * 1e3:g} ms; the fastest is predicted at {fastest * 1e3:.3g} ms"
        )
    return best
