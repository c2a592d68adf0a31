"""Observation 4: the latency of nonlinearity is hardware and compiler dependent.

Each activation at the MLP hidden width (4C) of every stage, alone and inside the Conv-BN MLP, compared
with ReLU. The claim is about dependence, so its verdict compares (device, backend) pairs.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

from opbench import blocks
from opbench.case import image, make_case
from opbench.plan import Breakdowns, Plan
from opbench.shapes import stages
from opbench.stats import Estimate
from opbench.suite import Suite
from opbench.suites.models import model_case, model_comparison
from opbench.verdict import (
    Evidence,
    Part,
    Rule,
    Target,
    Threshold,
    Verdict,
    by_pass,
    case_ids,
    combined,
    decide,
    fmt,
    geomean_of_rows,
    steady,
    unsteady_text,
)  # fmt: skip

KEY = "obs4"
BASELINE = "relu"
ALONE = "alone"  # the role of the comparisons the rule uses: each activation alone against ReLU


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
                    role, where = (ALONE, "alone") if family == "act" else ("supporting", "in the MLP")
                    p.compare(f"{name} vs relu {where} ({s.label})", cases[BASELINE], case, role)
    p.extras.append(
        Breakdowns(
            "In whole models: the activation share, and LeViT-256 with HardSwish against GELU",
            "Share of each model's profiled time in activations the runtime still runs on their own, and the whole "
            "LeViT-256 with HardSwish over the same model with GELU (the paper reports 44.5 against 11.9 ms on "
            "iPhone 12, a ratio of 3.74, unconfirmed).",
            [model_case(n) for n in ("levit_256", "levit_256_gelu", "efficientformer_l1")],
            ("activation",),
            [model_comparison("LeViT-256 HardSwish / GELU, whole model", "levit_256_gelu", "levit_256")],
        )
    )
    return p


DIFFERENCE = Threshold(
    "obs4.difference",
    1.10,
    "Obs 4 holds when, for some activation, its latency relative to ReLU differs between two (device, backend) "
    "pairs by more than this factor, the 95% interval of that difference included, or when two activations swap "
    "order with disjoint intervals on both pairs. It does not hold when every such difference stays within this "
    "factor, interval included.",
    margin=0.02,
    margin_reason=(
        "A factor of 1.1 between two pairs is the smallest dependence the claim means; a factor within 2% of it "
        "(1.078-1.122) is too close to call either way."
    ),
)


@dataclass
class Ratio:
    """One activation's latency relative to ReLU on one target: the geometric mean of its 'alone' comparisons."""

    estimate: Estimate
    rows: list
    point_only: bool


class DependenceRule(Rule):
    """Dependence on hardware and compiler: one verdict across every (device, backend) pair."""

    text = (
        "The claim is about dependence, so the verdict compares (device, backend) pairs. On each pair, each "
        "activation's latency relative to ReLU (alone, geometric mean over the stage shapes) is estimated. Holds when "
        "some activation's ratio differs between two pairs by more than 1.1x with the 95% interval of that difference "
        "wholly beyond 1.1x by its margin of 2%, or when two activations swap order between two pairs with disjoint "
        "intervals on both. Does not hold when every activation agrees within 1.1x between every two pairs, interval "
        "included. With a single pair it needs another backend and is inconclusive. The activations inside the MLP are "
        "supporting evidence."
    )
    across_targets = True
    cell_label = "activation latency / ReLU (alone, geometric mean over stage shapes)"
    note = (
        "Obs 4 is about dependence on hardware and compiler, so its verdict is one across all pairs; its cells show "
        "each pair's activation latency relative to ReLU."
    )

    @property
    def thresholds(self) -> tuple[Threshold, ...]:
        return (DIFFERENCE,)

    def verdicts(self, suite: str, plan: Plan, evidence: Evidence) -> list[Verdict]:
        alone = plan.by_role(ALONE)
        acts = list(dict.fromkeys(c.candidate.variant for c in alone))
        ratios: dict[Target, dict[str, Ratio]] = {}
        for t in evidence.targets:
            found = {}
            for act in acts:
                rows = [evidence.row(c, t) for c in alone if c.candidate.variant == act]
                if (got := combined(rows, evidence.data[t])) is not None:
                    found[act] = Ratio(*got)
            if found:
                ratios[t] = found
        rows = [evidence.row(c, t) for t in evidence.targets for c in plan.comparisons]
        missing = sorted({f"{r.target.label}: {m}" for r in rows if r.role == ALONE for m in r.missing})
        by_target = {
            t: ", ".join(f"{a} {r.estimate.value:.2f}x" + (" (point)" if r.point_only else "") for a, r in f.items())
            for t, f in ratios.items()
        }
        common = dict(
            suite=suite, target=None, case_ids=case_ids(rows), rows=rows, missing=missing, by_target=by_target
        )
        targets = list(ratios)
        if len(targets) < 2:
            return [self._too_few(targets, ratios, by_target, common)]
        parts = [self._difference(act, t, u, ratios, evidence) for t, u in itertools.combinations(targets, 2)
                 for act in acts if act in ratios[t] and act in ratios[u]]  # fmt: skip
        reversals = [
            f"{a} is faster than {b} on {t.label} but slower on {u.label}"
            for t, u in itertools.combinations(targets, 2)
            for a, b in itertools.permutations(acts, 2)
            if all(x in ratios[t] and x in ratios[u] for x in (a, b))
            and ratios[t][a].estimate.clearly_below(ratios[t][b].estimate)
            and ratios[u][b].estimate.clearly_below(ratios[u][a].estimate)
        ]
        differing = [p for p in parts if p.status == "holds"]
        passes = by_pass(parts, self.combine)
        status = steady("holds" if reversals else self.combine([p.status for p in parts]), passes)
        key = max(differing or parts, key=lambda p: p.estimate.value, default=None)
        text = self._explain(status, len(targets), differing, reversals, key)
        if status == "inconclusive":
            text += unsteady_text(parts, passes)
        if missing:
            text += f" Missing from this verdict: {len(missing)} case result(s), listed below."
        label = key.label if key else "activation / ReLU, ratio between two pairs"
        estimate = key.estimate if key else None
        point_only = bool(key and key.point_only)
        return [Verdict(status=status, key_label=label, key=estimate, explanation=text, parts=parts,
                        point_only=point_only, by_pass=passes, **common)]  # fmt: skip

    @staticmethod
    def combine(statuses: list[str]) -> str:
        """Holds when some difference holds; does not hold when every one does not; at the threshold when every
        other one lies inside the threshold's band; else inconclusive."""
        if "holds" in statuses:
            return "holds"
        if statuses and all(s == "does_not_hold" for s in statuses):
            return "does_not_hold"
        if statuses and all(s in ("does_not_hold", "at_threshold") for s in statuses):
            return "at_threshold"
        return "inconclusive"

    @staticmethod
    def _difference(act: str, t: Target, u: Target, ratios: dict, evidence: Evidence) -> Part:
        """The factor between the activation's ratios on two targets (the larger over the smaller), decided by
        whether it lies beyond the threshold."""
        (t_hi, hi), (t_lo, lo) = sorted(((t, ratios[t][act]), (u, ratios[u][act])), key=lambda x: -x[1].estimate.value)
        n_hi, n_lo = len(hi.rows), len(lo.rows)
        apart = geomean_of_rows(
            hi.rows + lo.rows,
            [evidence.data[t_hi]] * n_hi + [evidence.data[t_lo]] * n_lo,
            [1 / n_hi] * n_hi + [-1 / n_lo] * n_lo,
        )
        label = f"{act} / ReLU, {t_hi.label} over {t_lo.label}"
        status = decide(apart, DIFFERENCE, "apart")
        point_only = hi.point_only or lo.point_only
        return Part(f"{act}: {t_hi.label} vs {t_lo.label}", label, DIFFERENCE, "apart", apart, status, [], point_only)

    @staticmethod
    def _too_few(targets: list[Target], ratios: dict, by_target: dict, common: dict) -> Verdict:
        label = "activation / ReLU, ratio between two pairs"
        if not targets:
            text = "Not measured: no (device, backend) pair has activation measurements."
            return Verdict(status="not_measured", key_label=label, key=None, explanation=text, **common)
        text = (
            f"Inconclusive, needs another backend: only {targets[0].label} has activation measurements "
            f"({by_target[targets[0]]} against ReLU). Dependence on hardware and compiler needs two or more "
            "(device, backend) pairs: run another backend (e.g. --opbench-backends torch-eager,ort-cpu) or import "
            "a device's numbers."
        )
        only = next(iter(ratios[targets[0]].values()))
        return Verdict(
            status="inconclusive", key_label="activation / ReLU on the only pair", key=only.estimate,
            explanation=text, point_only=only.point_only, **common,
        )  # fmt: skip

    @staticmethod
    def _explain(status: str, n: int, differing: list[Part], reversals: list[str], key: Part | None) -> str:
        threshold = DIFFERENCE.value
        largest = f"{key.label} = {fmt(key.estimate, point_only=key.point_only)}" if key else ""
        if status == "holds":
            found = [f"{p.label} = {fmt(p.estimate, point_only=p.point_only)}" for p in differing[:3]]
            more = len(differing) - 3 + max(len(reversals) - 3, 0)
            return (
                f"Holds across {n} (device, backend) pairs: " + "; ".join(found + reversals[:3])
                + (f"; and {more} more" if more > 0 else "") + f" (a difference must exceed {threshold:g}x)."
            )  # fmt: skip
        if status == "at_threshold":
            return (
                f"Inconclusive across {n} (device, backend) pairs, at the threshold: no activation's ratio to ReLU "
                f"is shown to differ by more than {threshold:g}x, and the differences not shown to be smaller lie "
                f"inside the band of {DIFFERENCE.margin:.0%} around it"
                + (f"; the largest is {largest}." if key else ".")
            )
        if status == "does_not_hold":
            return (
                f"Does not hold across {n} (device, backend) pairs: every activation's ratio to ReLU agrees within "
                f"{threshold:g}x between every two pairs, interval included; the largest difference is {largest}."
            )
        return (
            f"Inconclusive across {n} (device, backend) pairs: no activation's ratio to ReLU differs by more than "
            f"{threshold:g}x beyond its interval and no two activations clearly swap order, but not every difference "
            f"is shown to be below {threshold:g}x either" + (f"; the largest is {largest}. " if key else ". ")
        )


SUITE = Suite(
    key=KEY,
    title="Obs 4. Nonlinearities depend on hardware and compiler",
    claim="The latency of nonlinearity is hardware and compiler dependent.",
    plan=plan,
    rule=DependenceRule(),
)
