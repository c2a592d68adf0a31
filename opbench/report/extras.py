"""A suite's report extras as views the page shows: a title, a caption, a figure and/or a table.

The report knows no suite by name: a suite hands its extras in its plan (opbench.suite: Sweep, ModelMap,
Breakdowns), and each kind is drawn here the same way for every suite.
"""

from __future__ import annotations

from opbench.attribution import Breakdown
from opbench.lookup import predict as prediction
from opbench.plan import Breakdowns, Extra, ModelMap, Predictions, Sweep
from opbench.report import build, figures
from opbench.report.build import Report
from opbench.verdict import Target, fmt


def view(report: Report, extra: Extra, targets: list[Target]) -> dict:
    """{title, caption, uri (a figure or None), columns and rows (a table, possibly empty), notes}."""
    found = {"title": extra.title, "caption": extra.caption, "uri": None, "columns": [], "rows": [], "notes": []}
    if not targets:
        return found
    if isinstance(extra, Sweep):
        found["uri"] = figures.sweep_figure(report, extra, targets)
    elif isinstance(extra, ModelMap):
        found["uri"] = figures.model_map_figure(report, extra.points, targets)
    elif isinstance(extra, Breakdowns):
        _breakdowns(report, extra, targets, found)
    elif isinstance(extra, Predictions):
        _predictions(report, extra, found)
    return found


def _predictions(report: Report, extra: Predictions, found: dict) -> None:
    """Per target, the hot sum, the cold sum and the corrected prediction side by side: models validated, within
    +-10% / +-5%, RMSPE, mean error; the bracket count and why a predictor is absent in the notes (per family:
    prediction_summary.csv)."""
    table = build.predicted(report, extra)
    found["columns"] = ["device / backend", "predictor", "models validated", "within ±10%", "within ±5%", "RMSPE",
                        "mean error"]  # fmt: skip
    for r in prediction.summary(table).to_dict("records"):
        target = f"{r['device']} / {r['backend']}"
        for name in prediction.PREDICTORS:
            s = prediction.scores_of(r, name)
            if s["validated"]:
                found["rows"].append(
                    [target, name + (" (best)" if r["best"] == name else ""), s["validated"],
                     f"{s['within_10pct']:.0%}", f"{s['within_5pct']:.0%}", f"{s['rmspe']:.1%}",
                     f"{s['mean_error']:+.1%}"]
                )  # fmt: skip
            else:
                found["rows"].append([target, name, 0, "absent", "", "", ""])
                found["notes"].append(f"{target}: no {name} prediction: {s['absent'] or 'nothing validated'}")
        if r["bracket_models"]:
            found["notes"].append(
                f"{target}: measured between the hot and the cold sum for {r['bracketed']} of {r['bracket_models']} "
                "models (outside it: fusion across blocks or per-call costs, not the cache)"
            )
    if table.empty:
        found["notes"].append("No target has both the blocks and whole models measured.")


def _breakdowns(report: Report, extra: Breakdowns, targets: list[Target], found: dict) -> None:
    """Without categories: the stacked bars and a coverage table. With them: those categories' share per case and
    target, then the cited comparisons' ratios."""
    found["columns"] = ["case", *(t.label for t in targets)]
    for case in extra.cases:
        cells = []
        for t in targets:
            profile = report.profile(t, case.id)
            if isinstance(profile, Breakdown):
                if extra.categories:
                    share = sum(profile.shares[c] for c in extra.categories)
                    cells.append(f"{share:.1%}")
                else:
                    cells.append(f"coverage {profile.coverage:.2f}, {profile.profiled_s * 1e3:.3g} ms profiled")
            else:
                cells.append("-")
        found["rows"].append([case.id, *cells])
    for comparison in extra.comparisons:
        rows = [report.evidence.row(comparison, t) for t in targets]
        found["rows"].append([comparison.name, *(fmt(r.estimate, point_only=r.point_only) for r in rows)])
    if not extra.categories:
        found["uri"] = figures.breakdown_figure(report, extra.cases, targets)
    for t in targets:  # a backend without a profiler says why, once
        reason = next((p for c in extra.cases if isinstance(p := report.profile(t, c.id), str)), None)
        if reason:
            found["notes"].append(f"{t.label}: no profile ({reason[:300]})")
