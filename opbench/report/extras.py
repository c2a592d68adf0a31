"""A suite's report extras as views the page shows: a title, a caption, a figure and/or a table.

The report knows no suite by name: a suite hands its extras in its plan (opbench.plan: Sweep, ModelMap,
Breakdowns, Predictions), and each kind is shown here the same way for every suite; its figure is drawn from the
plain series made here.
"""

from __future__ import annotations

from opbench.analysis.judge import Judgement, Validation
from opbench.attribution import Breakdown
from opbench.case import Case
from opbench.lookup import predict as prediction
from opbench.plan import Breakdowns, Extra, ModelMap, Predictions, Sweep
from opbench.report import figures
from opbench.verdict import Target, fmt


def view(judged: Judgement, extra: Extra, targets: list[Target], validations: list[Validation]) -> dict:
    """{title, caption, uri (a figure or None), columns and rows (a table, possibly empty), notes}."""
    found = {"title": extra.title, "caption": extra.caption, "uri": None, "columns": [], "rows": [], "notes": []}
    if not targets:
        return found
    if isinstance(extra, Sweep):
        found["uri"] = _sweep_figure(judged, extra, targets)
    elif isinstance(extra, ModelMap):
        found["uri"] = _model_map_figure(judged, extra.points, targets)
    elif isinstance(extra, Breakdowns):
        _breakdowns(judged, extra, targets, found)
    elif isinstance(extra, Predictions):
        _predictions(next(v for v in validations if v.extra is extra), found)
    return found


def _predictions(validation: Validation, found: dict) -> None:
    """Per target, the hot sum, the cold sum, the scaled and the corrected predictions side by side: models
    validated, within +-10% / +-5%, RMSPE, mean error; the bracket count and why a predictor is absent in the notes
    (per family: prediction_summary.csv)."""
    found["columns"] = ["device / backend", "predictor", "models validated", "within ±10%", "within ±5%", "RMSPE",
                        "mean error"]  # fmt: skip
    for r in validation.by_target.to_dict("records"):
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
        found["notes"].append(f"{target}: {validation.sources[r['device'], r['backend']]}")
        if r["bracket_models"]:
            found["notes"].append(
                f"{target}: measured between the hot and the cold sum for {r['bracketed']} of {r['bracket_models']} "
                "models (outside it: fusion across blocks or per-call costs, not the cache)"
            )
    if validation.models.empty:
        found["notes"].append("No target has both the blocks and whole models measured.")


def _sweep_figure(judged: Judgement, sweep: Sweep, targets: list[Target]) -> str | None:
    """Achieved GMAC/s at each swept value, candidate and baseline, per target: where a case is measured."""
    if not sweep.points:
        return None
    lines = []
    for t in targets:
        pair = []
        for which, name in (("candidate", sweep.series[0]), ("baseline", sweep.series[1])):
            series = figures.Series(f"{t.label}: {name}")
            for k, comparison in sweep.points:
                case = getattr(comparison, which)
                e, macs = judged.latency(t, case.id), judged.case_info(case.id)["macs"]
                if e is None or not macs:
                    continue
                rate = macs / e.value / 1e9
                series.xs.append(k)
                series.ys.append(rate)
                series.below.append(rate - macs / e.high / 1e9 if e.has_interval else 0.0)
                series.above.append(macs / e.low / 1e9 - rate if e.has_interval else 0.0)
            pair.append(series)
        lines.append((pair[0], pair[1]))
    return figures.sweep_figure([k for k, _ in sweep.points], sweep.x_label, lines)


def _model_map_figure(judged: Judgement, points: list[tuple[Case, float]], targets: list[Target]) -> str | None:
    """Per target, each model's measured latency (ms) against its published top-1; then per source of published
    numbers, the same from those numbers."""
    panels: list[tuple[str, list[tuple[str, float, float]]]] = []
    for t in targets:
        found = [(c.variant, judged.latency(t, c.id), top1) for c, top1 in points]
        panels.append((t.label, [(n, e.value * 1e3, top1) for n, e, top1 in found if e is not None]))
    published: dict[str, list[tuple[str, float, float]]] = {}
    top1s = {c.id: (c.variant, top1) for c, top1 in points}
    for run, result in judged.published:
        if result.case in top1s:
            name, top1 = top1s[result.case]
            label = f"{run.device.name}, {result.backend}"
            published.setdefault(label, []).append((name, result.stats.median_s * 1e3, top1))
    panels += list(published.items())
    return figures.model_map_figure(
        [(label + (" (published)" if label in published else ""), pts) for label, pts in panels]
    )


def _breakdowns(judged: Judgement, extra: Breakdowns, targets: list[Target], found: dict) -> None:
    """Without categories: the stacked bars and a coverage table. With them: those categories' share per case and
    target, then the cited comparisons' ratios."""
    found["columns"] = ["case", *(t.label for t in targets)]
    for case in extra.cases:
        cells = []
        for t in targets:
            profile = judged.profile(t, case.id)
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
        rows = [judged.evidence.row(comparison, t) for t in targets]
        found["rows"].append([comparison.name, *(fmt(r.estimate, point_only=r.point_only) for r in rows)])
    if not extra.categories:
        panels = []
        for t in targets:
            bars = [(c.variant, b) for c in extra.cases if isinstance(b := judged.profile(t, c.id), Breakdown)]
            if bars:
                panels.append((t.label, bars))
        found["uri"] = figures.breakdown_figure(panels)
    for t in targets:  # a backend without a profiler says why, once
        reason = next((p for c in extra.cases if isinstance(p := judged.profile(t, c.id), str)), None)
        if reason:
            found["notes"].append(f"{t.label}: no profile ({reason[:300]})")
