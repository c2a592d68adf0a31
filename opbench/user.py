"""The public API for suites that live in a user's own repository (re-exported by `opbench`).

A user's case module declares a suite in a few lines and runs through opbench's pytest plugin like a built-in one:

    bench = opbench.define_suite("my_blocks", "My mixer against EfficientFormer's", claim="...")
    paper = bench.case("meta4d", functools.partial(Meta4D, 48), (1, 48, 56, 56))
    mine = bench.case("gated", functools.partial(GatedMixer, 48), (1, 48, 56, 56))
    bench.compare("gated / Meta4D", paper, mine, holds_below=1.2)
    SUITE = bench.register()

A comparison given a threshold (`holds_below` or `holds_above`) becomes one part of the suite's rule (a
`PartsRule`); without any the suite is measured and shown, with no verdict. The plugin records the file of the case
module in the result file (`protocol.suites`) to say where the suite came from; the report judges the suite once
that file is loaded (the run's --opbench-report, or the user naming it: a result file never causes an import).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from opbench.case import Case, make_case
from opbench.errors import OpbenchError
from opbench.options import is_positive_finite
from opbench.plan import Comparison, Plan
from opbench.suite import Suite, register
from opbench.verdict import PartSpec, PartsRule, Threshold

DEFAULT_MARGIN = 0.02
DEFAULT_MARGIN_REASON = (
    "opbench's default for a user's threshold (`margin=` changes it): a ratio within 2% of its threshold is too "
    "close to call, about the interval width the paired protocol aims at."
)


@dataclass
class SuiteBuilder:
    """Cases and comparisons of a user's suite, gathered by `case` and `compare`, then `register`ed."""

    key: str
    title: str
    claim: str = ""
    description: str = ""
    cases: list[Case] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    parts: list[PartSpec] = field(default_factory=list)

    def case(
        self, variant: str, factory: Callable[[], nn.Module], input_shape: tuple[int, ...], description: str = ""
    ) -> Case:
        """A case `<key>/<variant>`: the module the factory returns (called once per backend, seeded, eval mode)
        on a random input of `input_shape`."""
        made = make_case(self.key, "", variant, factory, tuple(input_shape), self.key, description)
        if any(c.id == made.id for c in self.cases):
            raise OpbenchError(f"suite {self.key!r} already has a case {variant!r}; name each case once")
        self.cases.append(made)
        return made

    def compare(
        self,
        name: str,
        baseline: Case,
        candidate: Case,
        holds_below: float | None = None,
        holds_above: float | None = None,
        per_mac: bool = False,
        margin: float = DEFAULT_MARGIN,
    ) -> Comparison:
        """candidate / baseline latency (or time per MAC). With a threshold it is a part of the suite's rule: it
        holds when the ratio's 95% interval lies wholly below (above) the threshold's band, the threshold widened by
        `margin` (relative); an interval inside the band is "inconclusive: at the threshold"."""
        if holds_below is not None and holds_above is not None:
            raise OpbenchError(f"comparison {name!r}: give holds_below or holds_above, not both")
        if not is_positive_finite(margin) and margin != 0:
            raise OpbenchError(f"comparison {name!r}: margin {margin!r} is not a finite number of 0 or more")
        role = "supporting"
        if holds_below is not None or holds_above is not None:
            value, side = (holds_below, "below") if holds_below is not None else (holds_above, "above")
            threshold = Threshold(
                f"{self.key}.{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}",
                float(value),
                f"{candidate.variant} / {baseline.variant}: holds when the interval lies {side} this.",
                margin=float(margin),
                margin_reason=DEFAULT_MARGIN_REASON if margin == DEFAULT_MARGIN else "set by the suite (margin=)",
            )
            metric = "time per MAC" if per_mac else "latency"
            self.parts.append(
                PartSpec(name, f"{metric}, {candidate.variant} / {baseline.variant}", threshold, side,
                         fails_means=f"{name}: the ratio lies on the other side of {value:g}.")
            )  # fmt: skip
            role = name
        comparison = Comparison(name, baseline, candidate, role, per_mac)
        self.comparisons.append(comparison)
        return comparison

    def plan(self, grid: str) -> Plan:
        return Plan(list(self.cases), list(self.comparisons))

    def suite(self) -> Suite:
        rule = None
        if self.parts:
            rule = PartsRule(
                text="Holds when every comparison with a threshold holds: "
                + "; ".join(f"{p.label} {p.holds_when} {p.threshold.value:g}" for p in self.parts)
                + ".",
                parts=tuple(self.parts),
                holds_means=self.claim or "Every comparison lies on its claimed side.",
            )
        return Suite(self.key, self.title, self.plan, claim=self.claim, rule=rule, description=self.description)

    def register(self) -> str:
        """Register the suite (a case module's `SUITE = bench.register()`); returns its key."""
        if not self.cases:
            raise OpbenchError(f"suite {self.key!r} has no case; add one with .case(...)")
        register(self.suite())
        return self.key


def define_suite(key: str, title: str, claim: str = "", description: str = "") -> SuiteBuilder:
    """Start a user's suite: `key` names it (`--opbench-suites key`, case ids `key/<variant>`)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]*", key):
        raise OpbenchError(f"suite key {key!r}: use lower-case letters, digits, '_' and '-'")
    return SuiteBuilder(key, title, claim, description)
