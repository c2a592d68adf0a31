"""The overhead floor: what one call costs a backend when the work is nothing; and the A/A control: a stage-sized
case against an identical copy of itself, the noise floor of a comparison on this machine. A suite without a rule."""

from __future__ import annotations

import functools

from opbench import blocks
from opbench.case import image, make_case
from opbench.plan import CONTROL, Plan
from opbench.suite import Suite

KEY = "overhead"
FLOOR = "overhead/floor/add_one"
AA = "A/A"  # the label of the control comparison: no rule judges it, its interval must hold 1


def plan(grid: str) -> Plan:
    p = Plan()
    p.add(make_case(KEY, "floor", "add_one", blocks.AddOne, (1, 1), "overhead", "x + 1 on one element"))
    # EfficientFormer-L1's last stage width and resolution: a few hundred us a call, as the stages the rules compare
    conv = functools.partial(blocks.conv_bn, 448, 448, 1)
    group, shape = "overhead A/A c448 7x7", image(448, 7)
    case = make_case(KEY, "aa", "conv1x1_bn", conv, shape, group, "Conv1x1+BN, 448 channels at 7x7", c=448, h=7)
    copy = make_case(KEY, "aa", "conv1x1_bn_copy", conv, shape, group, "the same, a separate instance", c=448, h=7)
    p.compare(AA, case, copy, CONTROL)
    return p


SUITE = Suite(
    key=KEY,
    title="Per-call overhead floor",
    plan=plan,
    description="x + 1 on one element: each backend's per-call floor, which small cases carry too; and an A/A "
    "comparison of a Conv1x1+BN with an identical copy of itself, timed together as every comparison is: how far a "
    "ratio of two identical cases strays from 1 on this machine.",
    floor=FLOOR,
)
