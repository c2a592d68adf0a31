"""`opbench stability RUN_OR_DIR...`: several runs' verdicts side by side, how many flipped, and whether the
comparisons' intervals are honest about how much a measurement moves between runs.

A verdict is only worth its name if measuring again gives it again. Each run (a result file, or every result file
under a folder) is judged on its own, exactly as `opbench report` would judge it alone, and every (suite, device,
backend) verdict is shown run by run. A flip is a verdict that holds in one run and does not hold in another; a
verdict that is inconclusive in some runs is unsettled, not flipped. Only the verdicts measured in every run are
counted (a verdict of a suite one run left out says nothing about stability).

Beside the verdicts, the comparisons underneath them: the cross-run agreement is the share of (comparison, pair of
runs) whose difference between the two runs lies within the 95% interval of that difference. The machine and the
code are the same, so the true difference is nil, and honest intervals put the share near 95%; a share well below
says the intervals are narrower than the run-to-run noise. The difference's interval is combined from the two runs'
intervals on the log scale (each side's half-width toward the other estimate, added in quadrature: the MOVER
method of Zou and Donner, 2008, for independent estimates). The median width (high / low - 1 over every comparison
of every run) says how fine a difference the runs can resolve. The A/A controls (plan.CONTROL: a case against an
identical copy of itself) are counted apart: whether each run's interval holds 1, and their median width, the noise
floor under every comparison.

`--backend` and `--suite` compare part of longer runs: the first four backends' obs 1-3 out of runs of every suite
on every backend, say, judged as if the runs had measured only that.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from opbench.analysis.judge import REFERENCE, Inputs, LoadedRun, judge, select
from opbench.errors import OpbenchError
from opbench.plan import CONTROL
from opbench.results import load_run, passes_text, result_files
from opbench.stats import Estimate
from opbench.verdict import STATUS_MARK

Key = tuple[str, str, str]  # (suite, device, backend)


def load(
    paths: Iterable[Path | str],
    warn: Callable[[str], None] | None = None,
    backends: list[str] | None = None,
    suites: list[str] | None = None,
) -> list[LoadedRun]:
    """Every measured or imported run among the paths, oldest first, with only the backends (globs) and suites
    asked for (judge.select: say which part of longer runs to compare); two or more runs are needed. A file named
    twice (itself and through its folder, or twice over) is read once, with a note; copies of one run (the same run
    id in two files) are compared, with a note that they agree by construction."""
    warn = warn or (lambda message: print(f"opbench: note: {message}", file=sys.stderr))
    files: dict[Path, Path] = {}
    for f in result_files(paths):
        if f.resolve() in files:
            warn(f"{f} is named more than once; it is read once")
        files.setdefault(f.resolve(), f)
    runs = [LoadedRun(f, load_run(f)) for f in files.values()]
    runs = sorted((r for r in runs if r.source != REFERENCE), key=lambda r: r.run.created)
    if runs:
        runs = select(Inputs(runs), backends=backends, suites=suites).runs
    if len(runs) < 2:
        selected = " with the backends and suites asked for" if backends or suites else ""
        raise OpbenchError(
            f"stability needs two or more runs to compare; found {len(runs)} among the paths given{selected}"
        )
    for run_id, copies in itertools.groupby(sorted(runs, key=lambda r: r.run.run_id), key=lambda r: r.run.run_id):
        same = [str(r.path) for r in copies]
        if len(same) > 1:
            warn(f"{', '.join(same)} are copies of one run ({run_id}): they agree by construction")
    return runs


@dataclass
class Judged:
    """One run judged alone: each verdict (status, 'status key-number') and each comparison's ratio."""

    verdicts: dict[Key, tuple[str, str]]
    ratios: dict[tuple[str, str, str, str], Estimate]  # (suite, device, backend, comparison) -> its ratio
    controls: dict[tuple[str, str, str, str], Estimate]  # the A/A controls' ratios (plan.CONTROL), kept apart


def judge_alone(loaded: LoadedRun) -> Judged:
    judgement = judge(Inputs([loaded]))
    found = {}
    for key, verdicts in judgement.verdicts.items():
        for v in verdicts:
            device, backend = (v.target.device_name, v.target.backend) if v.target else ("(all pairs)", "(all pairs)")
            number = f" {v.key_text}" if v.key is not None else ""
            marks = f" passes {''.join(STATUS_MARK[s] for s in v.by_pass)}" if v.by_pass else ""
            found[key, device, backend] = (v.status, f"{v.status_label}{number}{marks}")
    ratios: dict[tuple[str, str, str, str], Estimate] = {}
    controls: dict[tuple[str, str, str, str], Estimate] = {}
    for key in judgement.suites:
        for row in judgement.rows(key):
            if row.target and row.estimate is not None and row.estimate.has_interval and not row.point_only:
                kept = controls if row.role == CONTROL else ratios
                kept[key, row.target.device_name, row.target.backend, row.comparison] = row.estimate
    return Judged(found, ratios, controls)


def agrees(a: Estimate, b: Estimate) -> bool:
    """The difference between two runs' ratios lies within its 95% interval: on the log scale, |log a - log b| is
    at most each one's half-width toward the other, added in quadrature."""
    upper, lower = (a, b) if a.value >= b.value else (b, a)
    toward = math.log(upper.value / upper.low), math.log(lower.high / lower.value)  # type: ignore[operator]
    return math.log(upper.value / lower.value) <= math.hypot(*toward)


def width(e: Estimate) -> float:
    """high / low - 1: the interval's relative width."""
    return e.high / e.low - 1  # type: ignore[operator]


@dataclass
class Summary:
    """What the table counts: verdicts measured in every run, identical in every run, flips; the cross-run
    agreement of the comparisons (None with no comparison measured in two runs) over so many (comparison, pair of
    runs); the median interval width of the comparisons (None without any)."""

    verdicts: int
    identical: int
    flips: int
    agreement: float | None = None
    pairs: int = 0
    median_width: float | None = None
    partial: int = 0  # verdicts measured in some runs only (shown, not counted)
    controls: int = 0  # A/A controls measured, (run, control, target)
    controls_holding_one: int = 0  # of them, how many intervals hold 1
    control_width: float | None = None  # their median interval width
    missed: list[str] = field(default_factory=list)  # the controls whose interval misses 1, run by run
    notes: list[str] = field(default_factory=list)


def agreement(judged: list[Judged]) -> tuple[float | None, int, float | None]:
    """(share of (comparison, pair of runs) that agree, how many pairs, median width of every interval)."""
    verdicts = [agrees(a.ratios[k], b.ratios[k]) for a, b in itertools.combinations(judged, 2) for k in a.ratios
                if k in b.ratios]  # fmt: skip
    widths = [width(e) for j in judged for e in j.ratios.values()]
    share = float(np.mean(verdicts)) if verdicts else None
    return share, len(verdicts), float(np.median(widths)) if widths else None


def table(runs: list[LoadedRun]) -> tuple[pd.DataFrame, Summary]:
    """One row per (suite, device, backend) measured in some run: each run's verdict, identical or flipped; and the
    summary. OpbenchError when the runs measured neither a verdict nor a comparison."""
    judged = [judge_alone(r) for r in runs]
    keys = list(dict.fromkeys(k for j in judged for k in j.verdicts))
    rows = []
    for key in keys:
        statuses = [j.verdicts.get(key, ("not_measured", "not measured"))[0] for j in judged]
        if all(s == "not_measured" for s in statuses):
            continue
        row = dict(zip(("suite", "device", "backend"), key, strict=True))
        row |= {f"run {i}": j.verdicts.get(key, ("", "not measured"))[1] for i, j in enumerate(judged, 1)}
        row["in every run"] = "not_measured" not in statuses
        row["identical"] = len(set(statuses)) == 1
        row["flip"] = "holds" in statuses and "does_not_hold" in statuses
        rows.append(row)
    share, pairs, median_width = agreement(judged)
    if not rows and median_width is None and not any(j.controls for j in judged):
        raise OpbenchError(
            f"none of the {len(runs)} runs measured a verdict or a comparison with an interval: nothing to compare; "
            "run suites with comparisons (e.g. --opbench-suites obs1,obs2,obs3)"
        )
    columns = ["suite", "device", "backend", *(f"run {i}" for i in range(1, len(runs) + 1))]
    frame = pd.DataFrame(rows, columns=[*columns, "in every run", "identical", "flip"])
    common = frame[frame["in every run"].astype(bool)]
    summary = Summary(
        verdicts=len(common),
        identical=int(common["identical"].sum()),
        flips=int(frame["flip"].sum()),
        agreement=share,
        pairs=pairs,
        median_width=median_width,
        partial=len(frame) - len(common),
    )
    for i, j in enumerate(judged, 1):
        for (_, device, backend, name), e in j.controls.items():
            summary.controls += 1
            if e.low <= 1 <= e.high:  # type: ignore[operator]
                summary.controls_holding_one += 1
            else:
                summary.missed.append(
                    f"run {i}, {name} on {device} / {backend}: {e.value:.4f} [{e.low:.4f}, {e.high:.4f}]"
                )
    widths = [width(e) for j in judged for e in j.controls.values()]
    summary.control_width = float(np.median(widths)) if widths else None
    if frame.empty:
        summary.notes.append("no verdict was measured in any run (no suite with a rule has its comparisons there)")
    elif common.empty:
        summary.notes.append("no verdict was measured in every run: the runs have no suite and target in common")
    return frame.drop(columns="in every run"), summary


def render(runs: list[LoadedRun], frame: pd.DataFrame, summary: Summary) -> str:
    legend = "\n".join(
        f"run {i}: {r.path} ({r.run.created}, {passes_text(r.run.protocol)})" for i, r in enumerate(runs, 1)
    )
    shown = frame.assign(
        identical=frame["identical"].map({True: "yes", False: "no"}), flip=frame["flip"].map({True: "FLIP", False: ""})
    )
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 60, "display.width", 300):
        body = shown.to_string(index=False) if not frame.empty else "(no verdict)"
    n = summary.verdicts
    share = f" ({summary.identical / n:.0%})" if n else ""
    lines = [
        f"{n} verdicts over {len(runs)} runs: {summary.identical} identical in every run{share}, {summary.flips} flip "
        "between holds and does not hold"
    ]
    if summary.partial:
        lines.append(f"{summary.partial} verdict(s) measured in some runs only: shown, not counted")
    if summary.agreement is None:
        lines.append("cross-run agreement: no comparison with an interval was measured in two runs")
    else:
        lines.append(
            f"cross-run agreement: {summary.agreement:.0%} of {summary.pairs} (comparison, pair of runs) differ by "
            "no more than the 95% interval of their difference (honest intervals: near 95%)"
        )
    if summary.median_width is not None:
        lines.append(f"median comparison interval width: {summary.median_width:.1%} (high / low - 1)")
    if summary.controls:
        lines.append(
            f"A/A controls (a case against an identical copy): the interval holds 1 in {summary.controls_holding_one} "
            f"of {summary.controls} (run, target); median width {summary.control_width:.1%}"
        )
        lines += [f"  misses 1: {miss}" for miss in summary.missed]
    lines += [f"note: {note}" for note in summary.notes]
    return f"{legend}\n\n{body}\n\n" + "\n".join(lines) + "\n"
