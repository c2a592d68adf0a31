"""The registry of observations, and case selection across them."""

from __future__ import annotations

import fnmatch

from opbench import blocks
from opbench.case import Case, make_case
from opbench.errors import OpbenchError
from opbench.observations import obs1_patch_embedding, obs2_token_mixer, obs3_conv_bn, obs4_nonlinearity
from opbench.observations.base import Comparison, Observation, Plan

OBSERVATIONS: dict[str, Observation] = {
    o.key: o
    for o in (
        obs1_patch_embedding.OBSERVATION,
        obs2_token_mixer.OBSERVATION,
        obs3_conv_bn.OBSERVATION,
        obs4_nonlinearity.OBSERVATION,
    )
}
OVERHEAD_KEY = "overhead"


def overhead_case() -> Case:
    """A one-element add: the per-call floor of a backend, measured like any other case."""
    return make_case(OVERHEAD_KEY, "floor", "add_one", blocks.AddOne, (1, 1), "overhead", "x + 1 on one element")


def observation(key: str) -> Observation:
    if key not in OBSERVATIONS:
        raise OpbenchError(f"unknown observation {key!r}; choose from {', '.join(OBSERVATIONS)}")
    return OBSERVATIONS[key]


def plans(grid: str = "default", keys: list[str] | None = None) -> dict[str, Plan]:
    return {key: observation(key).plan(grid) for key in (OBSERVATIONS if keys is None else keys)}


def select_cases(grid: str = "default", keys: list[str] | None = None, pattern: str | None = None) -> list[Case]:
    """Cases of the chosen observations (all by default; 'overhead' names the floor case), filtered by id glob."""
    keys = keys or [*OBSERVATIONS, OVERHEAD_KEY]
    cases = [overhead_case()] if OVERHEAD_KEY in keys else []
    for plan in plans(grid, [k for k in keys if k != OVERHEAD_KEY]).values():
        cases.extend(plan.cases)
    if pattern:
        cases = [c for c in cases if fnmatch.fnmatch(c.id, pattern)]
    return cases


__all__ = ["OBSERVATIONS", "Comparison", "Observation", "Plan", "observation", "overhead_case", "plans", "select_cases"]
