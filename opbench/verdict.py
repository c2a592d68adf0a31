"""Verdicts: does an observation's claim hold on one (device, backend), by how much, and how sure are we.

The generic part lives here: what was measured (Measured), one comparison's metric (Row), one tested
statement of a rule (Part: a geometric mean of comparisons with a joint bootstrap interval, decided against
a threshold from opbench.thresholds) and the Verdict itself. Each observation module states its own rule
with these pieces, next to its claim and its comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from opbench import stats
from opbench.stats import Estimate
from opbench.thresholds import THRESHOLDS

if TYPE_CHECKING:
    from opbench.observations.base import Comparison

Status = Literal["holds", "does_not_hold", "inconclusive", "not_measured"]
STATUS_LABELS: dict[str, str] = {
    "holds": "holds",
    "does_not_hold": "does not hold",
    "inconclusive": "inconclusive",
    "not_measured": "not measured",
}


@dataclass(frozen=True, order=True)
class Target:
    """A (device, backend) pair: where a verdict is reached. `source` tells measured, imported or published."""

    device: str  # the device's slug
    backend: str
    device_name: str = field(default="", compare=False)
    source: str = field(default="pytest-benchmark", compare=False)

    @property
    def label(self) -> str:
        return f"{self.device_name or self.device} / {self.backend}"


@dataclass(frozen=True)
class Measured:
    """One case's result on one target, as the verdicts need it."""

    case: str
    status: str = "ok"  # ok / unsupported / failed, or "missing" when no result has the case
    reason: str = ""
    samples: tuple[float, ...] | None = None
    median_s: float | None = None
    macs: int | None = None
    run_id: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.median_s is not None

    @property
    def point_only(self) -> bool:
        """Only a median (an imported or published number): ratios with it are point estimates."""
        return self.samples is None or len(self.samples) < 2

    def why_missing(self) -> str:
        if self.status == "missing":
            return f"{self.case}: not in any result"
        if self.status == "ok":
            return f"{self.case}: no statistics recorded"
        return f"{self.case}: {self.status}" + (f" ({self.reason})" if self.reason else "")


Data = Mapping[str, Measured]  # case id -> its measurement on one target


def lookup(data: Data, case_id: str) -> Measured:
    return data.get(case_id) or Measured(case_id, "missing")


@dataclass
class Row:
    """One comparison on one target: candidate / baseline latency (or time per MAC)."""

    comparison: str
    baseline: str
    candidate: str
    metric: str
    role: str  # the part of the rule it feeds, or "supporting"
    estimate: Estimate | None
    point_only: bool = False
    status: Status | None = None  # against the threshold of its part; None for supporting rows
    missing: list[str] = field(default_factory=list)
    target: Target | None = None
    factor: float = 1.0  # baseline MACs / candidate MACs for per-MAC metrics, else 1


@dataclass
class Part:
    """One statement a rule tests: the geometric mean of its comparisons, decided against one threshold."""

    name: str
    label: str
    threshold_key: str
    holds_when: Literal["above", "below"]
    estimate: Estimate | None
    status: Status
    rows: list[Row]
    point_only: bool = False
    unit: Literal["ratio", "share"] = "ratio"

    @property
    def threshold(self) -> float:
        return THRESHOLDS[self.threshold_key].value

    @property
    def measured_rows(self) -> list[Row]:
        return [r for r in self.rows if r.estimate is not None]

    def count_text(self) -> str:
        rows = self.measured_rows
        if len(rows) <= 1:
            return ""
        agree = sum(r.status == "holds" for r in rows)
        return f"{agree} of {len(rows)} comparisons individually {self.holds_when} {fmt_threshold(self)}"

    def sentence(self) -> str:
        if self.estimate is None:
            return f"{self.label}: not measured"
        count = self.count_text()
        combined = f"geometric mean of {len(self.measured_rows)}; " if len(self.measured_rows) > 1 else ""
        return (
            f"{self.label} is {fmt(self.estimate, self.unit, self.point_only)} "
            f"({combined}needs to be {self.holds_when} {fmt_threshold(self)}{'; ' + count if count else ''})"
        )


@dataclass
class Verdict:
    """Holds / does not hold / inconclusive / not measured, always with its numbers and cases."""

    observation: str
    target: Target | None  # None: a verdict across targets (Obs 4)
    status: Status
    key_label: str
    key: Estimate | None
    explanation: str
    case_ids: list[str]
    rows: list[Row]
    parts: list[Part] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    point_only: bool = False
    key_unit: Literal["ratio", "share"] = "ratio"
    by_target: dict[Target, str] = field(default_factory=dict)  # Obs 4: each target's key numbers, as text

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def key_text(self) -> str:
        return fmt(self.key, self.key_unit, self.point_only) if self.key is not None else "-"


def fmt(estimate: Estimate | None, unit: str = "ratio", point_only: bool = False) -> str:
    """'2.31x [2.20, 2.43]', '12.0% [10.1, 13.8]', or the value marked as a point estimate."""
    if estimate is None:
        return "-"
    if unit == "share":
        text = f"{estimate.value:.1%}"
        interval = f" [{estimate.low:.1%}, {estimate.high:.1%}]" if estimate.has_interval else ""
    else:
        text = f"{estimate.value:.2f}x"
        interval = f" [{estimate.low:.2f}, {estimate.high:.2f}]" if estimate.has_interval else ""
    return text + (interval if estimate.has_interval and not point_only else " (point estimate)")


def fmt_threshold(part: Part) -> str:
    return f"{part.threshold:.0%}" if part.unit == "share" else f"{part.threshold:g}"


def decide(estimate: Estimate | None, threshold: float, holds_when: str) -> Status:
    """Holds when the whole interval lies on the claimed side of the threshold, does not hold when it lies on
    the other side, inconclusive when it straddles. A point estimate decides by its value."""
    if estimate is None:
        return "not_measured"
    if estimate.above(threshold):
        return "holds" if holds_when == "above" else "does_not_hold"
    if estimate.below(threshold):
        return "holds" if holds_when == "below" else "does_not_hold"
    return "inconclusive"


def compare(
    comparison: Comparison,
    data: Data,
    role: str,
    per_mac: bool = False,
    macs: Callable[[str], int | None] | None = None,
    threshold: tuple[float, str] | None = None,
    target: Target | None = None,
) -> Row:
    """The comparison's ratio on one target from the raw samples (a point estimate when a side has only a
    median). per_mac: time per MAC, i.e. the latency ratio times baseline MACs / candidate MACs."""
    base, cand = lookup(data, comparison.baseline.id), lookup(data, comparison.candidate.id)
    metric = "time per MAC ratio" if per_mac else "latency ratio"
    row = Row(comparison.name, base.case, cand.case, metric, role, None, target=target)
    row.missing = [m.why_missing() for m in (base, cand) if not m.ok]
    if row.missing:
        return row
    if per_mac:
        base_macs = base.macs or (macs(base.case) if macs else None)
        cand_macs = cand.macs or (macs(cand.case) if macs else None)
        if not base_macs or not cand_macs:
            row.missing = [f"{comparison.name}: MACs unknown, no time per MAC"]
            return row
        row.factor = base_macs / cand_macs
    raw = stats.ratio(cand.samples, base.samples, cand.median_s, base.median_s)
    row.estimate = scale(raw, row.factor)
    row.point_only = base.point_only or cand.point_only
    if threshold is not None:
        row.status = decide(row.estimate, *threshold)
    return row


def scale(estimate: Estimate, factor: float) -> Estimate:
    if not estimate.has_interval:
        return Estimate(estimate.value * factor)
    return Estimate(estimate.value * factor, estimate.low * factor, estimate.high * factor)


def geomean_of_rows(
    rows: Sequence[Row], data: Data | Sequence[Data], weights: Sequence[float] | None = None
) -> Estimate:
    """Geometric mean of the rows' ratios with one joint bootstrap interval over every case they use.

    `data` is one target's measurements, or one per row (a statistic across targets). `weights` replace the
    geometric mean's 1/n exponents, e.g. +1/n and -1/m for the quotient of two geometric means.
    """
    per_row = list(data) if isinstance(data, Sequence) else [data] * len(rows)
    exponents = list(weights) if weights is not None else [1 / len(rows)] * len(rows)
    keys: dict[tuple[int, str], int] = {}
    sets: list[Measured] = []
    for row, d in zip(rows, per_row, strict=True):
        for case in (row.baseline, row.candidate):
            key = (id(d), case)
            if key not in keys:
                keys[key] = len(sets)
                sets.append(lookup(d, case))
    index = [(keys[id(d), r.candidate], keys[id(d), r.baseline], r.factor) for r, d in zip(rows, per_row, strict=True)]

    def statistic(medians: list[np.ndarray]) -> np.ndarray:
        logs = [w * np.log(medians[c] / medians[b] * f) for (c, b, f), w in zip(index, exponents, strict=True)]
        return np.exp(np.sum(np.stack(np.broadcast_arrays(*logs)), axis=0))

    return stats.of_medians(
        [np.asarray(m.samples) if m.samples else None for m in sets], [m.median_s for m in sets], statistic
    )


def part(
    name: str,
    label: str,
    comparisons: Iterable[Comparison],
    data: Data,
    threshold_key: str,
    holds_when: Literal["above", "below"],
    per_mac: bool = False,
    macs: Callable[[str], int | None] | None = None,
    target: Target | None = None,
    unit: Literal["ratio", "share"] = "ratio",
) -> Part:
    """Compare each comparison, combine the measured ones (geometric mean, joint bootstrap) and decide.

    unit="share": the part's number is the share of the candidate's time that the baseline does not
    account for, 1 - 1/ratio (e.g. the reshapes' share of a stage), and the threshold is a share."""
    threshold = THRESHOLDS[threshold_key].value
    to_ratio = 1 / (1 - threshold) if unit == "share" else threshold
    rows = [compare(c, data, f"rule: {name}", per_mac, macs, (to_ratio, holds_when), target) for c in comparisons]
    measured = [r for r in rows if r.estimate is not None]
    if not measured:
        return Part(name, label, threshold_key, holds_when, None, "not_measured", rows, unit=unit)
    combined = measured[0].estimate if len(measured) == 1 else geomean_of_rows(measured, data)
    if unit == "share":
        combined = share(combined)
    point_only = any(r.point_only for r in measured)
    status = decide(combined, threshold, holds_when)
    return Part(name, label, threshold_key, holds_when, combined, status, rows, point_only, unit)


def share(ratio: Estimate) -> Estimate:
    """1 - 1/ratio: the part of the candidate's time the baseline does not account for (monotone in the ratio)."""
    if not ratio.has_interval:
        return Estimate(1 - 1 / ratio.value)
    return Estimate(1 - 1 / ratio.value, 1 - 1 / ratio.low, 1 - 1 / ratio.high)


def combine(parts: Sequence[Part]) -> Status:
    """A rule of several parts: any part that does not hold decides; then any not measured; all holding holds."""
    statuses = [p.status for p in parts]
    if "does_not_hold" in statuses:
        return "does_not_hold"
    if "not_measured" in statuses:
        return "not_measured"
    return "holds" if all(s == "holds" for s in statuses) else "inconclusive"


def verdict_from_parts(
    observation: str,
    target: Target | None,
    parts: list[Part],
    supporting: list[Row],
    sentence: Callable[[Status, list[Part]], str],
    key_part: int = 0,
) -> Verdict:
    """The verdict of a rule made of parts: status, key number (one part's), explanation, cases, missing."""
    status = combine(parts)
    rows = [r for p in parts for r in p.rows] + supporting
    missing = sorted({m for p in parts for r in p.rows for m in r.missing})
    cases = sorted({c for r in rows for c in (r.baseline, r.candidate)})
    key = parts[key_part]
    explanation = sentence(status, parts)
    if missing and status != "not_measured":
        explanation += f" Missing from this verdict: {len(missing)} case result(s), listed below."
    return Verdict(
        observation,
        target,
        status,
        key.label,
        key.estimate,
        explanation,
        cases,
        rows,
        parts,
        missing,
        any(p.point_only for p in parts),
        key.unit,
    )


def status_phrase(status: Status, target: Target | None) -> str:
    where = f" on {target.label}" if target else ""
    return {
        "holds": f"Holds{where}:",
        "does_not_hold": f"Does not hold{where}:",
        "inconclusive": f"Inconclusive{where}:",
        "not_measured": f"Not measured{where}:",
    }[status]


def spread(a: Estimate, b: Estimate) -> float:
    """How far apart two ratios are, as a factor >= 1."""
    return math.exp(abs(math.log(a.value / b.value)))
