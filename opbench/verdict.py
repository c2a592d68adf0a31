"""Verdicts: does a suite's claim hold on one (device, backend), by how much, and how sure are we.

The generic part lives here: what was measured (Measured), one comparison's metric (Row, computed once per
target by Evidence), one tested statement of a rule (Part: a geometric mean of the comparisons that play its
role, decided against a Threshold), the Rule interface every suite's rule implements, PartsRule (a rule made of
parts, per target) and the Verdict itself. Each suite states its rule with these pieces, next to its cases.

Stability is generic too: an estimate from a run of several passes carries its value on each pass alone, `decide`
gives each pass its own verdict, and a number whose passes disagree (holds on one pass, does not hold on another) is
inconclusive whatever its interval says, so every rule that decides through `decide` inherits it. So is the margin
of practical significance: every Threshold carries one, a side is decided only when the interval clears the band
the margin puts around the threshold, and an interval inside the band is "inconclusive: at the threshold"
(at_threshold), whichever rule decides. The three back-to-back runs of issue 22 found no flip but fewer than half the
verdicts identical; a margin alone did not fix that (the intervals were wide), so it comes with the paired ratios of
stats.py that narrow them.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from opbench import stats
from opbench.stats import Estimate

if TYPE_CHECKING:
    from opbench.plan import Comparison, Plan
    from opbench.results import Result

Status = Literal["holds", "does_not_hold", "inconclusive", "at_threshold", "not_measured"]
HoldsWhen = Literal["above", "below", "apart"]
STATUS_LABELS: dict[str, str] = {
    "holds": "holds",
    "does_not_hold": "does not hold",
    "inconclusive": "inconclusive",
    "at_threshold": "inconclusive: at the threshold",
    "not_measured": "not measured",
}
STATUS_MARK = {"holds": "✓", "does_not_hold": "✗", "inconclusive": "?", "at_threshold": "≈", "not_measured": "–"}


@dataclass(frozen=True)
class Threshold:
    """A number a rule decides by, with what it means (the report prints every suite's thresholds).

    `margin` is the smallest difference that matters, relative, on the ratio scale: a side is decided only when the
    interval clears the band [value / (1 + margin), value * (1 + margin)]; an interval inside it is "inconclusive:
    at the threshold". `margin_reason` says why that much (each suite states it beside the threshold)."""

    key: str
    value: float
    meaning: str
    margin: float = 0.0
    margin_reason: str = ""

    def band(self, unit: str = "ratio") -> tuple[float, float]:
        return band(self.value, self.margin, unit)


def band(threshold: float, margin: float, unit: str = "ratio") -> tuple[float, float]:
    """The band a margin puts around a threshold: [t / (1 + margin), t * (1 + margin)] on the ratio scale; a share
    threshold s stands for the ratio 1 / (1 - s), so its band is that ratio's band mapped back to shares."""
    if unit == "share":
        ratio = 1 / (1 - threshold)
        return 1 - (1 + margin) / ratio, 1 - 1 / (ratio * (1 + margin))
    return threshold / (1 + margin), threshold * (1 + margin)


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
    samples: tuple[tuple[float, ...], ...] | None = None  # per pass
    median_s: float | None = None
    macs: int | None = None
    run_id: str = ""
    window: str | None = None  # the timing window it shared with its comparison group in its run (None: alone)

    @classmethod
    def of(cls, result: Result, run_id: str) -> Measured:
        """A result file's record as the verdicts and the predictions read it."""
        s = result.stats
        return cls(
            case=result.case,
            status=result.status,
            reason=result.reason,
            samples=s.samples if s else None,
            median_s=s.median_s if s else None,
            macs=result.macs,
            run_id=run_id,
            window=s.window if s else None,
        )

    @property
    def sample_set(self) -> stats.SampleSet:
        """Its samples for a statistic; its window is qualified by its run (windows of two runs never pair)."""
        window = (self.run_id, self.window) if self.window is not None else None
        return stats.SampleSet(self.samples, self.median_s, window)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.median_s is not None

    @property
    def point_only(self) -> bool:
        """Only a median (an imported or published number): ratios with it are point estimates."""
        return stats.usable(self.samples) is None

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


class Evidence:
    """Every target's measurements, and each comparison's row on each target, computed once (bootstraps are slow)
    and shared by the rules, the report's tables and its CSV files."""

    def __init__(self, data: Mapping[Target, Data], macs: Callable[[str], int | None] | None = None):
        self.data = dict(data)
        self.macs = macs
        self._rows: dict[tuple[Comparison, Target], Row] = {}

    @property
    def targets(self) -> list[Target]:
        return list(self.data)

    def row(self, comparison: Comparison, target: Target) -> Row:
        key = (comparison, target)
        if key not in self._rows:
            self._rows[key] = _row(comparison, self.data.get(target, {}), target, self.macs)
        return self._rows[key]


def _row(comparison: Comparison, data: Data, target: Target, macs: Callable[[str], int | None] | None) -> Row:
    """The comparison's ratio from the raw samples (a point estimate when a side has only a median).
    Per MAC: the latency ratio times baseline MACs / candidate MACs."""
    base, cand = lookup(data, comparison.baseline.id), lookup(data, comparison.candidate.id)
    row = Row(comparison.name, base.case, cand.case, comparison.metric, comparison.role, None, target=target)
    row.missing = [m.why_missing() for m in (base, cand) if not m.ok]
    if row.missing:
        return row
    if comparison.per_mac:
        base_macs = base.macs or (macs(base.case) if macs else None)
        cand_macs = cand.macs or (macs(cand.case) if macs else None)
        if not base_macs or not cand_macs:
            row.missing = [f"{comparison.name}: MACs unknown, no time per MAC"]
            return row
        row.factor = base_macs / cand_macs
    same_run = base.run_id == cand.run_id  # then pass k of both sides ran in the same pass, seconds apart
    estimate = stats.of_ratios([(cand.sample_set, base.sample_set)], lambda r: r[0], by_pass=same_run)
    row.estimate = scale(estimate, row.factor)
    row.point_only = base.point_only or cand.point_only
    return row


@dataclass
class Part:
    """One statement a rule tests: the geometric mean of its comparisons, decided against one threshold."""

    name: str
    label: str
    threshold: Threshold
    holds_when: HoldsWhen
    estimate: Estimate | None
    status: Status
    rows: list[Row]
    point_only: bool = False
    unit: Literal["ratio", "share"] = "ratio"

    @property
    def measured_rows(self) -> list[Row]:
        return [r for r in self.rows if r.estimate is not None]

    @property
    def by_pass(self) -> list[Status]:
        """The verdict each pass alone gives this part (empty when the passes do not line up)."""
        return pass_statuses(self.estimate, self.threshold, self.holds_when, self.unit)

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
        notes = [measured_as(self.estimate, self.point_only)]
        notes.append(f"geometric mean of {len(self.measured_rows)}" if len(self.measured_rows) > 1 else "")
        notes += [f"needs to be {self.holds_when} {fmt_threshold(self)}", count]
        text = f"{self.label} is {fmt(self.estimate, self.unit, self.point_only)} ({'; '.join(n for n in notes if n)})"
        if self.unit == "share" and self.estimate.value < 0:
            text += " (a negative share: the candidate ran faster than its baseline)"
        if disagree(self.by_pass):
            text += f"; its passes disagree ({passes_text(self.by_pass)})"
        return text


@dataclass
class Verdict:
    """Holds / does not hold / inconclusive / not measured, always with its numbers and cases."""

    suite: str
    target: Target | None  # None: a verdict across targets (e.g. Obs 4)
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
    by_target: dict[Target, str] = field(default_factory=dict)  # a verdict across targets: each one's numbers
    by_pass: list[Status] = field(default_factory=list)  # the verdict each pass alone gives; empty with one pass

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def passes_agree(self) -> bool | None:
        """None with fewer than two passes; else whether no pass holds while another does not."""
        return None if len(self.by_pass) < 2 else not disagree(self.by_pass)

    @property
    def key_text(self) -> str:
        return fmt(self.key, self.key_unit, self.point_only) if self.key is not None else "-"

    @property
    def key_how(self) -> str:
        return measured_as(self.key, self.point_only)


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
    """'1 (margin 2%)', '5% (margin 2%)': the threshold with the margin that decides around it."""
    value = f"{part.threshold.value:.0%}" if part.unit == "share" else f"{part.threshold.value:g}"
    return value + (f" (margin {part.threshold.margin:.0%})" if part.threshold.margin else "")


def measured_as(estimate: Estimate | None, point_only: bool = False) -> str:
    """Which way a ratio was measured: 'paired' (its two sides timed round by round in one window) or 'timed
    apart'; '' for a point estimate, which says so itself."""
    if estimate is None or point_only or not estimate.has_interval:
        return ""
    return "paired" if estimate.paired else "timed apart"


def decide(estimate: Estimate | None, threshold: Threshold, holds_when: HoldsWhen, unit: str = "ratio") -> Status:
    """Holds when the whole interval lies on the claimed side of the threshold's band (the threshold widened by its
    margin), does not hold when it lies wholly beyond the band on the other side, "inconclusive: at the threshold"
    (at_threshold) when it lies inside the band (the effect, if any, is smaller than the margin that matters), and
    inconclusive when it straddles an edge of the band. A point estimate decides by its value. Whatever the
    interval, an estimate whose passes disagree (one holds, another does not) is inconclusive: the machine drifted
    by as much as the effect between passes.

    "apart" (a factor between two things, either way): holds when the interval lies wholly beyond the threshold's
    band or wholly below its inverse's, does not hold when it lies wholly between the two bands."""
    return steady(_side(estimate, threshold, holds_when, unit), pass_statuses(estimate, threshold, holds_when, unit))


def pass_statuses(
    estimate: Estimate | None, threshold: Threshold, holds_when: HoldsWhen, unit: str = "ratio"
) -> list[Status]:
    """The verdict each pass alone gives: its value against the threshold. Empty without per-pass values."""
    if estimate is None:
        return []
    return [_side(Estimate(v), threshold, holds_when, unit) for v in estimate.passes]


def disagree(by_pass: Sequence[Status]) -> bool:
    return "holds" in by_pass and "does_not_hold" in by_pass


def steady(status: Status, by_pass: Sequence[Status]) -> Status:
    """A verdict stands only if its passes do not disagree; else it is inconclusive."""
    return "inconclusive" if status in ("holds", "does_not_hold") and disagree(by_pass) else status


def passes_text(by_pass: Sequence[Status]) -> str:
    """'holds in passes 1, 3; does not hold in pass 2'."""
    groups: dict[str, list[str]] = {}
    for i, status in enumerate(by_pass, 1):
        groups.setdefault(status, []).append(str(i))
    return "; ".join(
        f"{STATUS_LABELS[st]} in pass{'es' if len(ix) > 1 else ''} {', '.join(ix)}" for st, ix in groups.items()
    )


def _side(estimate: Estimate | None, threshold: Threshold, holds_when: HoldsWhen, unit: str) -> Status:
    if estimate is None:
        return "not_measured"
    low, high = threshold.band(unit)
    if holds_when == "apart":
        if estimate.above(high) or estimate.below(1 / high):
            return "holds"
        if estimate.above(1 / low) and estimate.below(low):
            return "does_not_hold"
        return "at_threshold" if estimate.within(low, high) or estimate.within(1 / high, 1 / low) else "inconclusive"
    if estimate.above(high):
        return "holds" if holds_when == "above" else "does_not_hold"
    if estimate.below(low):
        return "holds" if holds_when == "below" else "does_not_hold"
    return "at_threshold" if estimate.within(low, high) else "inconclusive"


def scale(estimate: Estimate, factor: float) -> Estimate:
    return estimate.map(lambda x: x * factor)


def geomean_of_rows(
    rows: Sequence[Row], data: Data | Sequence[Data], weights: Sequence[float] | None = None
) -> Estimate:
    """Geometric mean of the rows' ratios with one joint bootstrap interval over every case they use.

    `data` is one target's measurements, or one per row (a statistic across targets). `weights` replace the
    geometric mean's 1/n exponents, e.g. +1/n and -1/m for the quotient of two geometric means.
    """
    per_row = list(data) if isinstance(data, Sequence) else [data] * len(rows)
    exponents = list(weights) if weights is not None else [1 / len(rows)] * len(rows)
    pairs = [(lookup(d, r.candidate), lookup(d, r.baseline)) for r, d in zip(rows, per_row, strict=True)]
    factors = [r.factor for r in rows]

    def statistic(ratios: list[np.ndarray]) -> np.ndarray:
        logs = [w * np.log(x * f) for x, f, w in zip(ratios, factors, exponents, strict=True)]
        return np.exp(np.sum(np.stack(np.broadcast_arrays(*logs)), axis=0))

    same_run = len({m.run_id for pair in pairs for m in pair}) == 1
    sets = [(c.sample_set, b.sample_set) for c, b in pairs]
    return stats.of_ratios(sets, statistic, by_pass=same_run)


def combined(rows: Iterable[Row], data: Data) -> tuple[Estimate, list[Row], bool] | None:
    """The geometric mean of the measured rows (one row: its own estimate), those rows, and whether it is a point
    estimate; None when no row was measured."""
    measured = [r for r in rows if r.estimate is not None]
    if not measured:
        return None
    estimate = measured[0].estimate if len(measured) == 1 else geomean_of_rows(measured, data)
    return estimate, measured, any(r.point_only for r in measured)


@dataclass(frozen=True)
class PartSpec:
    """A part of a PartsRule: the comparisons whose role is `name`, combined and decided against `threshold`.

    unit="share": the part's number is the share of the candidate's time that the baseline does not account for,
    1 - 1/ratio (e.g. the reshapes' share of a stage), and the threshold is a share."""

    name: str
    label: str
    threshold: Threshold
    holds_when: Literal["above", "below"]
    unit: Literal["ratio", "share"] = "ratio"
    fails_means: str = ""  # what it means when this part does not hold


def part(spec: PartSpec, comparisons: Iterable[Comparison], evidence: Evidence, target: Target) -> Part:
    """Each comparison's row, each row decided against the part's threshold, then combined and decided."""
    threshold = spec.threshold
    as_ratio = dataclasses.replace(threshold, value=1 / (1 - threshold.value)) if spec.unit == "share" else threshold
    rows = [evidence.row(c, target) for c in comparisons]
    for r in rows:
        r.status = decide(r.estimate, as_ratio, spec.holds_when) if r.estimate is not None else None
    found = combined(rows, evidence.data.get(target, {}))
    if found is None:
        return Part(spec.name, spec.label, spec.threshold, spec.holds_when, None, "not_measured", rows, unit=spec.unit)
    estimate, _, point_only = found
    if spec.unit == "share":
        estimate = share(estimate)
    status = decide(estimate, threshold, spec.holds_when, spec.unit)
    return Part(spec.name, spec.label, spec.threshold, spec.holds_when, estimate, status, rows, point_only, spec.unit)


def share(ratio: Estimate) -> Estimate:
    """1 - 1/ratio: the part of the candidate's time the baseline does not account for (monotone in the ratio)."""
    return ratio.map(lambda r: 1 - 1 / r)


def by_pass(parts: Sequence[Part], combine_pass: Callable[[list[Status]], Status]) -> list[Status]:
    """The verdict each pass alone gives, from every part's verdict on that pass; empty unless every part has the
    same two or more passes."""
    columns = [p.by_pass for p in parts]
    if not columns or len({len(c) for c in columns}) != 1 or len(columns[0]) < 2:
        return []
    return [combine_pass(list(statuses)) for statuses in zip(*columns, strict=True)]


def combine(statuses: Sequence[Status]) -> Status:
    """A rule of several parts: any part that does not hold decides; then any not measured; all holding holds; then
    any that straddles its band makes it inconclusive; the rest hold or lie at their threshold (at_threshold)."""
    if "does_not_hold" in statuses:
        return "does_not_hold"
    if "not_measured" in statuses:
        return "not_measured"
    if all(s == "holds" for s in statuses):
        return "holds"
    return "inconclusive" if "inconclusive" in statuses or not statuses else "at_threshold"


def status_phrase(status: Status, target: Target | None) -> str:
    where = f" on {target.label}" if target else ""
    return {
        "holds": f"Holds{where}:",
        "does_not_hold": f"Does not hold{where}:",
        "inconclusive": f"Inconclusive{where}:",
        "at_threshold": f"Inconclusive{where}, at the threshold:",
        "not_measured": f"Not measured{where}:",
    }[status]


def case_ids(rows: Iterable[Row]) -> list[str]:
    return sorted({c for r in rows for c in (r.baseline, r.candidate)})


class Rule(ABC):
    """What every suite's rule provides: its text, its thresholds, and its verdicts from the evidence.

    A rule decides per target (one verdict per (device, backend)) or, `across_targets`, once over all of them
    (a claim about dependence on hardware and compiler); the report shows both kinds from the same fields."""

    text: str
    across_targets: bool = False
    cell_label: str = ""  # across targets: what the summary cells show for each target
    note: str = ""  # across targets: a sentence for the summary explaining that

    @property
    @abstractmethod
    def thresholds(self) -> tuple[Threshold, ...]: ...

    @abstractmethod
    def verdicts(self, suite: str, plan: Plan, evidence: Evidence) -> list[Verdict]:
        """One verdict per target, or one across targets."""


@dataclass(frozen=True)
class PartsRule(Rule):
    """Holds on a target when every part holds; any part that does not hold decides against it."""

    text: str
    parts: tuple[PartSpec, ...]
    holds_means: str

    @property
    def thresholds(self) -> tuple[Threshold, ...]:
        return tuple(dict.fromkeys(p.threshold for p in self.parts))

    def verdicts(self, suite: str, plan: Plan, evidence: Evidence) -> list[Verdict]:
        return [self.verdict(suite, plan, evidence, t) for t in evidence.targets]

    def verdict(self, suite: str, plan: Plan, evidence: Evidence, target: Target) -> Verdict:
        parts = [part(spec, plan.by_role(spec.name), evidence, target) for spec in self.parts]
        passes = by_pass(parts, combine)
        status = steady(combine([p.status for p in parts]), passes)
        rows = [r for p in parts for r in p.rows]
        missing = sorted({m for r in rows for m in r.missing})
        if status == "not_measured" and not any(p.estimate for p in parts):
            explanation = f"{status_phrase(status, target)} no comparison of the rule was measured."
        else:
            explanation = f"{status_phrase(status, target)} {'; '.join(p.sentence() for p in parts)}. "
            explanation += self.meaning(status, parts, passes)
        if missing and status != "not_measured":
            explanation += f" Missing from this verdict: {len(missing)} case result(s), listed below."
        key = parts[0]
        return Verdict(
            suite, target, status, key.label, key.estimate, explanation, case_ids(rows), rows, parts, missing,
            any(p.point_only for p in parts), key.unit, by_pass=passes,
        )  # fmt: skip

    def meaning(self, status: Status, parts: list[Part], passes: list[Status]) -> str:
        if status == "holds":
            return self.holds_means
        if status == "does_not_hold":
            specs = {s.name: s for s in self.parts}
            return " ".join(specs[p.name].fails_means for p in parts if p.status == "does_not_hold").strip()
        if status == "inconclusive":
            straddles = "An interval straddles an edge of its threshold's band, so these measurements cannot tell."
            return unsteady_text(parts, passes) or straddles
        if status == "at_threshold":
            return (
                "Every undecided interval lies inside its threshold's band: any difference from the threshold is "
                "smaller than the margin that matters."
            )
        return "A part of the rule has no measurements."


def unsteady_text(parts: Sequence[Part], passes: Sequence[Status]) -> str:
    """Why a verdict is inconclusive when its passes disagree ('' when they do not)."""
    if not disagree(passes) and not any(disagree(p.by_pass) for p in parts):
        return ""
    where = f" ({passes_text(passes)})" if disagree(passes) else ""
    return (
        f"The passes disagree{where}: the machine drifted between passes by as much as the effect, so these "
        "measurements cannot tell; measure again on a quieter machine or with more passes."
    )
