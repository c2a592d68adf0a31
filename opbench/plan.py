"""What a suite measures: its cases, the comparisons between them and the extras its report section draws.

Below both the registry (opbench.suite) and the rule language (opbench.verdict), which both need it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opbench.case import Case

SUPPORTING = "supporting"  # the role of a comparison that no part of a rule uses: shown, quantified, not judged
# the role of an A/A control, a case against an identical copy of itself: not judged; its interval must hold 1, and its
# width, the noise floor of a comparison on that target, is shown beside the target's verdicts
CONTROL = "control"


@dataclass(frozen=True)
class Comparison:
    """Candidate against baseline at matched output; the metric is candidate / baseline latency (or time per MAC).

    `role` names the part of the suite's rule the comparison feeds, or SUPPORTING: evidence shown beside it, or
    CONTROL: an A/A control."""

    name: str
    baseline: Case
    candidate: Case
    role: str = SUPPORTING
    per_mac: bool = False

    @property
    def metric(self) -> str:
        return "time per MAC ratio" if self.per_mac else "latency ratio"


@dataclass
class Sweep:
    """A report extra: achieved GMAC/s of candidate and baseline against a swept parameter, per target."""

    title: str
    caption: str
    x_label: str
    series: tuple[str, str]  # what the candidate and the baseline lines are called
    points: list[tuple[float, Comparison]] = field(default_factory=list)


@dataclass
class ModelMap:
    """A report extra: latency against published ImageNet top-1 (the paper's Figure 1), a panel per target, the
    published numbers of the same cases in a panel of their own."""

    title: str
    caption: str
    points: list[tuple[Case, float]] = field(default_factory=list)  # a case and its published top-1, %


@dataclass
class Breakdowns:
    """A report extra: where the cases' latency goes, from the profiling pass (the paper's Figure 2). Without
    `categories`, a stacked bar per case and target over every category, with each profile's coverage; with them,
    a table of those categories' share per case and target, and the ratios of `comparisons` beside (evidence an
    observation cites from whole models)."""

    title: str
    caption: str
    cases: list[Case] = field(default_factory=list)
    categories: tuple[str, ...] = ()
    comparisons: list[Comparison] = field(default_factory=list)


@dataclass(frozen=True)
class BlockSum:
    """A whole model as the sum of its blocks: what a prediction adds up and what it is checked against."""

    model: str  # the model's name, e.g. efficientformer_l1
    family: str
    case: str  # the case id of the model measured whole
    blocks: tuple[tuple[str, int], ...]  # (block case id, times the model uses it), in first-use order
    weight_bytes: int = 0  # the weights of all its blocks: what a cold call of each reads from memory


@dataclass
class Predictions:
    """A report extra: whole models predicted from their measured blocks against the models measured whole, per
    target (opbench.lookup.predict). `floor`: the case of the per-call floor, paid once by the whole model and once
    by every block timed alone."""

    title: str
    caption: str
    models: list[BlockSum] = field(default_factory=list)
    floor: str | None = None

    def model(self, name: str) -> BlockSum | None:
        return next((m for m in self.models if m.model == name), None)


Extra = Sweep | ModelMap | Breakdowns | Predictions


@dataclass
class Plan:
    """A suite's cases (deduplicated, in order), comparisons and report extras, for one grid."""

    cases: list[Case] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    extras: list[Extra] = field(default_factory=list)  # figures and tables the report draws for this suite

    def add(self, case: Case) -> Case:
        if all(c.id != case.id for c in self.cases):
            self.cases.append(case)
        return case

    def compare(
        self, name: str, baseline: Case, candidate: Case, role: str = SUPPORTING, per_mac: bool = False
    ) -> Comparison:
        comparison = Comparison(name, self.add(baseline), self.add(candidate), role, per_mac)
        self.comparisons.append(comparison)
        return comparison

    def by_role(self, role: str) -> list[Comparison]:
        return [c for c in self.comparisons if c.role == role]

    def run_order(self) -> list[Case]:
        """The cases in the order one pass runs them: each comparison's two sides back to back (the rule's
        comparisons first, then the supporting ones), then the cases in no comparison. The machine drifts between
        minutes, so the two sides of a ratio must run seconds apart; a baseline shared by several comparisons runs
        next to its first candidate and a few cases before the others."""
        order: dict[str, Case] = {}
        ruled = [c for c in self.comparisons if c.role not in (SUPPORTING, CONTROL)]
        for c in ruled + [c for c in self.comparisons if c.role in (SUPPORTING, CONTROL)]:
            order.setdefault(c.baseline.id, c.baseline)
            order.setdefault(c.candidate.id, c.candidate)
        for case in self.cases:
            order.setdefault(case.id, case)
        return list(order.values())
