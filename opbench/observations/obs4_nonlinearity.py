"""Observation 4: the latency of nonlinearity is hardware and compiler dependent.

Each activation at the MLP hidden width (4C) of every stage, alone and inside the Conv-BN MLP, compared
with ReLU. The claim is about dependence, so its verdict compares (device, backend) pairs.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from opbench import blocks
from opbench.case import image, make_case
from opbench.observations.base import Observation, Plan
from opbench.shapes import stages
from opbench.stats import Estimate
from opbench.thresholds import THRESHOLDS
from opbench.verdict import Data, Part, Row, Status, Target, Verdict, compare, fmt, geomean_of_rows

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


RULE = (
    "The claim is about dependence, so the verdict compares (device, backend) pairs. On each pair, each "
    "activation's latency relative to ReLU (alone, geometric mean over the stage shapes) is estimated. Holds when "
    "some activation's ratio differs between two pairs by more than 1.1x with the 95% interval of that difference "
    "wholly beyond 1.1x, or when two activations swap order between two pairs with disjoint intervals on both. "
    "Does not hold when every activation agrees within 1.1x between every two pairs, interval included. "
    "With a single pair it needs another backend and is inconclusive. The activations inside the MLP are "
    "supporting evidence."
)


@dataclass
class Profile:
    """One activation's ratio to ReLU on one target, from its 'alone' comparisons."""

    estimate: Estimate
    rows: list[Row]
    point_only: bool


def _profile(rows: list[Row], data: Data) -> Profile | None:
    measured = [r for r in rows if r.estimate is not None]
    if not measured:
        return None
    estimate = measured[0].estimate if len(measured) == 1 else geomean_of_rows(measured, data)
    return Profile(estimate, measured, any(r.point_only for r in measured))


def _clearly_less(a: Estimate, b: Estimate) -> bool:
    return (a.high if a.has_interval else a.value) < (b.low if b.has_interval else b.value)


def verdict(plan: Plan, data_by_target: Mapping[Target, Data], macs=None) -> Verdict:
    """The rule above across every (device, backend) given."""
    threshold = THRESHOLDS["obs4.difference"].value
    alone = [c for c in plan.comparisons if c.candidate.family == "act"]
    in_mlp = [c for c in plan.comparisons if c.candidate.family != "act"]
    acts = list(dict.fromkeys(c.candidate.variant for c in alone))
    rows: list[Row] = []
    missing: list[str] = []
    profiles: dict[Target, dict[str, Profile]] = {}
    for target, data in data_by_target.items():
        found = {}
        for act in acts:
            act_rows = [compare(c, data, act, target=target) for c in alone if c.candidate.variant == act]
            rows += act_rows
            missing += [f"{target.label}: {m}" for r in act_rows for m in r.missing]
            profile = _profile(act_rows, data)
            if profile:
                found[act] = profile
        rows += [compare(c, data, "supporting", target=target) for c in in_mlp]
        if found:
            profiles[target] = found
    by_target = {
        t: ", ".join(f"{a} {p.estimate.value:.2f}x" + (" (point)" if p.point_only else "") for a, p in found.items())
        for t, found in profiles.items()
    }
    cases = sorted({c.id for comparison in plan.comparisons for c in (comparison.baseline, comparison.candidate)})
    targets = list(profiles)
    common = dict(
        observation=KEY, target=None, case_ids=cases, rows=rows, missing=sorted(set(missing)), by_target=by_target
    )
    label = "activation / ReLU, ratio between two pairs"
    if not targets:
        text = "Not measured: no (device, backend) pair has activation measurements."
        return Verdict(status="not_measured", key_label=label, key=None, explanation=text, **common)
    if len(targets) == 1:
        text = (
            f"Inconclusive, needs another backend: only {targets[0].label} has activation measurements "
            f"({by_target[targets[0]]} against ReLU). Dependence on hardware and compiler needs two or more "
            "(device, backend) pairs: run another backend (e.g. --opbench-backends torch-eager,ort-cpu) or import "
            "a device's numbers."
        )
        only = next(iter(profiles[targets[0]].values()))
        return Verdict(
            status="inconclusive",
            key_label="activation / ReLU on the only pair",
            key=only.estimate,
            explanation=text,
            point_only=only.point_only,
            **common,
        )

    parts: list[Part] = []
    for t, u in itertools.combinations(targets, 2):
        for act in acts:
            if act not in profiles[t] or act not in profiles[u]:
                continue
            pt, pu = profiles[t][act], profiles[u][act]
            if pt.estimate.value < pu.estimate.value:  # the larger over the smaller: a factor >= 1
                (t_hi, p_hi), (t_lo, p_lo) = (u, pu), (t, pt)
            else:
                (t_hi, p_hi), (t_lo, p_lo) = (t, pt), (u, pu)
            n_hi, n_lo = len(p_hi.rows), len(p_lo.rows)
            apart = geomean_of_rows(
                p_hi.rows + p_lo.rows,
                [data_by_target[t_hi]] * n_hi + [data_by_target[t_lo]] * n_lo,
                [1 / n_hi] * n_hi + [-1 / n_lo] * n_lo,
            )
            low = apart.low if apart.has_interval else apart.value
            high = apart.high if apart.has_interval else apart.value
            status: Status = (
                "holds"
                if low > threshold
                else "does_not_hold"
                if high < threshold and low > 1 / threshold
                else "inconclusive"
            )
            point_only = p_hi.point_only or p_lo.point_only
            parts.append(
                Part(
                    f"{act}: {t_hi.label} vs {t_lo.label}",
                    f"{act} / ReLU, {t_hi.label} over {t_lo.label}",
                    "obs4.difference",
                    "above",
                    apart,
                    status,
                    [],
                    point_only,
                )
            )
    reversals = []
    for t, u in itertools.combinations(targets, 2):
        for a, b in itertools.permutations(acts, 2):
            pa, pb = (profiles[t].get(a), profiles[t].get(b)), (profiles[u].get(a), profiles[u].get(b))
            if None in pa or None in pb:
                continue
            if _clearly_less(pa[0].estimate, pa[1].estimate) and _clearly_less(pb[1].estimate, pb[0].estimate):
                reversals.append(f"{a} is faster than {b} on {t.label} but slower on {u.label}")

    differing = [p for p in parts if p.status == "holds"]
    if differing or reversals:
        status = "holds"
    elif parts and all(p.status == "does_not_hold" for p in parts):
        status = "does_not_hold"
    else:
        status = "inconclusive"
    pool = differing or parts
    key = max(pool, key=lambda p: p.estimate.value) if pool else None
    n = len(targets)
    if status == "holds":
        found = [f"{p.label} = {fmt(p.estimate, point_only=p.point_only)}" for p in differing[:3]]
        text = f"Holds across {n} (device, backend) pairs: " + "; ".join(found + reversals[:3])
        more = len(differing) - 3 + max(len(reversals) - 3, 0)
        text += (f"; and {more} more" if more > 0 else "") + f" (a difference must exceed {threshold:g}x)."
    elif status == "does_not_hold":
        text = (
            f"Does not hold across {n} (device, backend) pairs: every activation's ratio to ReLU agrees within "
            f"{threshold:g}x between every two pairs, interval included; the largest difference is "
            f"{key.label} = {fmt(key.estimate, point_only=key.point_only)}."
        )
    else:
        text = (
            f"Inconclusive across {n} (device, backend) pairs: no activation's ratio to ReLU differs by more than "
            f"{threshold:g}x beyond its interval and no two activations clearly swap order, but not every difference "
            f"is shown to be below {threshold:g}x either"
            + (f"; the largest is {key.label} = {fmt(key.estimate, point_only=key.point_only)}." if key else ".")
        )
    if common["missing"]:
        text += f" Missing from this verdict: {len(common['missing'])} case result(s), listed below."
    return Verdict(
        status=status,
        key_label=key.label if key else label,
        key=key.estimate if key else None,
        explanation=text,
        parts=parts,
        point_only=bool(key and key.point_only),
        **common,
    )


OBSERVATION = Observation(
    key=KEY,
    title="Nonlinearities depend on hardware and compiler",
    claim="The latency of nonlinearity is hardware and compiler dependent.",
    plan=plan,
    verdict=verdict,
    rule=RULE,
    across_targets=True,
)
