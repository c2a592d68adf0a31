"""Observation 4: the latency of nonlinearity is hardware and compiler dependent.

Each activation at the MLP hidden width (4C) of every stage, alone and inside the Conv-BN MLP, compared
with ReLU. The claim is about dependence, so its verdict compares (device, backend) pairs.
"""

from __future__ import annotations

import functools

from opbench import blocks
from opbench.case import image, make_case
from opbench.observations.base import Observation, Plan
from opbench.shapes import stages

KEY = "obs4"
BASELINE = "relu"


def plan(grid: str) -> Plan:
    p = Plan()
    for s in stages(grid):
        c, h = s.width, s.resolution
        for family, group, factory, shape in (
            ("act", f"obs4 activations 4c{4 * c} {h}x{h}", blocks.activation, image(4 * c, h)),
            ("mlp", f"obs4 Conv-BN MLP c{c} {h}x{h}", functools.partial(blocks.conv_mlp, c), image(c, h)),
        ):
            params = {"c": 4 * c if family == "act" else c, "h": h}
            cases = {
                name: make_case(KEY, family, name, functools.partial(factory, act=name), shape, group, name, **params)
                for name in blocks.ACTIVATIONS
            }
            for name, case in cases.items():
                if name != BASELINE:
                    where = "alone" if family == "act" else "in the MLP"
                    p.compare(f"{name} vs relu {where} ({s.label})", cases[BASELINE], case)
    return p


OBSERVATION = Observation(
    key=KEY,
    title="Nonlinearities depend on hardware and compiler",
    claim="The latency of nonlinearity is hardware and compiler dependent.",
    plan=plan,
)
