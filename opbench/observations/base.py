"""What every observation module provides: its claim, its cases, the comparisons between them and its verdict rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opbench.case import Case


@dataclass(frozen=True)
class Comparison:
    """Candidate against baseline at matched output; the metric is candidate / baseline latency."""

    name: str
    baseline: Case
    candidate: Case
    note: str = ""


@dataclass
class Plan:
    """An observation's cases (deduplicated, in order) and its comparisons, for one grid."""

    cases: list[Case] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)

    def add(self, case: Case) -> Case:
        if all(c.id != case.id for c in self.cases):
            self.cases.append(case)
        return case

    def compare(self, name: str, baseline: Case, candidate: Case, note: str = "") -> None:
        self.comparisons.append(Comparison(name, self.add(baseline), self.add(candidate), note))


@dataclass(frozen=True)
class Observation:
    """verdict(plan, data, target, macs) -> Verdict for one (device, backend); with across_targets,
    verdict(plan, {target: data}, macs) -> Verdict across all of them (Obs 4). `rule` states it in words."""

    key: str
    title: str
    claim: str
    plan: Callable[[str], Plan]
    verdict: Callable[..., Any] | None = None
    rule: str = ""
    across_targets: bool = False
