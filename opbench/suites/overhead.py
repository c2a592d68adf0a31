"""The overhead floor: what one call costs a backend when the work is nothing. A suite without a rule."""

from __future__ import annotations

from opbench import blocks
from opbench.case import make_case
from opbench.plan import Plan
from opbench.suite import Suite

KEY = "overhead"


def plan(grid: str) -> Plan:
    p = Plan()
    p.add(make_case(KEY, "floor", "add_one", blocks.AddOne, (1, 1), "overhead", "x + 1 on one element"))
    return p


SUITE = Suite(
    key=KEY,
    title="Per-call overhead floor",
    plan=plan,
    description="x + 1 on one element: each backend's per-call floor, which small cases carry too.",
)
