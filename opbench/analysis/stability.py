"""`opbench stability RUN_OR_DIR...`: several runs' verdicts side by side, and how many flipped between them.

A verdict is only worth its name if measuring again gives it again. Each run (a result file, or every result file
under a folder) is judged on its own, exactly as `opbench report` would judge it alone, and every (suite, device,
backend) verdict is shown run by run. A flip is a verdict that holds in one run and does not hold in another; a
verdict that is inconclusive in some runs is unsettled, not flipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from opbench.errors import OpbenchError
from opbench.report.build import REFERENCE, Inputs, LoadedRun, build
from opbench.results import load_run, result_files
from opbench.verdict import STATUS_MARK


def load(paths: Iterable[Path | str]) -> list[LoadedRun]:
    """Every measured or imported run among the paths, oldest first; two or more are needed."""
    runs = [LoadedRun(f, load_run(f)) for f in result_files(paths)]
    runs = sorted((r for r in runs if r.source != REFERENCE), key=lambda r: r.run.created)
    if len(runs) < 2:
        raise OpbenchError(f"stability needs two or more runs to compare; found {len(runs)} among the paths given")
    return runs


def verdicts(loaded: LoadedRun) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(suite, device, backend) -> (status, 'status key-number') of one run judged alone."""
    report = build(Inputs([loaded]))
    found = {}
    for key, judged in report.verdicts.items():
        for v in judged:
            device, backend = (v.target.device_name, v.target.backend) if v.target else ("(all pairs)", "(all pairs)")
            number = f" {v.key_text}" if v.key is not None else ""
            marks = f" passes {''.join(STATUS_MARK[s] for s in v.by_pass)}" if v.by_pass else ""
            found[key, device, backend] = (v.status, f"{v.status_label}{number}{marks}")
    return found


def table(runs: list[LoadedRun]) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per (suite, device, backend) measured in some run: each run's verdict, identical or flipped; and the
    counts (verdicts, identical, flips)."""
    judged = [verdicts(r) for r in runs]
    keys = list(dict.fromkeys(k for j in judged for k in j))
    rows = []
    for key in keys:
        statuses = [j.get(key, ("not_measured", "not measured"))[0] for j in judged]
        if all(s == "not_measured" for s in statuses):
            continue
        row = dict(zip(("suite", "device", "backend"), key, strict=True))
        row |= {f"run {i}": j.get(key, ("", "not measured"))[1] for i, j in enumerate(judged, 1)}
        row["identical"] = len(set(statuses)) == 1
        row["flip"] = "holds" in statuses and "does_not_hold" in statuses
        rows.append(row)
    frame = pd.DataFrame(rows)
    counts = {
        "verdicts": len(frame),
        "identical": int(frame["identical"].sum()) if rows else 0,
        "flips": int(frame["flip"].sum()) if rows else 0,
    }
    return frame, counts


def render(runs: list[LoadedRun], frame: pd.DataFrame, counts: dict[str, int]) -> str:
    legend = "\n".join(
        f"run {i}: {r.path} ({r.run.created}, passes: {r.run.protocol.get('passes', 1)})" for i, r in enumerate(runs, 1)
    )
    shown = frame.assign(
        identical=frame["identical"].map({True: "yes", False: "no"}), flip=frame["flip"].map({True: "FLIP", False: ""})
    )
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 60, "display.width", 300):
        body = shown.to_string(index=False)
    n = counts["verdicts"]
    share = f" ({counts['identical'] / n:.0%})" if n else ""
    return (
        f"{legend}\n\n{body}\n\n{n} verdicts over {len(runs)} runs: {counts['identical']} identical in every run"
        f"{share}, {counts['flips']} flip between holds and does not hold\n"
    )
