"""The page: the judged runs and the render's tables as the view the template fills (sections, the summary
matrix, the cross-backend heat map), and the plain series each figure draws.

The template (templates/index.html.j2) is jinja2 with autoescape on: every name from a result file is shown as text.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sys
from pathlib import Path

import jinja2
from tqdm import tqdm

from opbench import stats
from opbench.analysis.judge import Judgement, Validation
from opbench.plan import CONTROL, Comparison
from opbench.report import extras as extra_views
from opbench.report import figures
from opbench.report.tables import SOURCE_LABELS, Tables
from opbench.verdict import STATUS_LABELS, STATUS_MARK, Row, Target, Verdict, fmt, measured_as, passes_text

HOW = {  # what each way of measuring a ratio means, for the page
    "paired": "paired: both cases timed round by round in one window, the ratio of each round's two calls",
    "timed apart": "timed apart: each case in its own window, the ratio of their latencies",
}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["ms"] = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"
    return env


def _anchor(*parts: object) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(map(str, parts)).lower()).strip("-")


def _heat(rel: float | None) -> str:
    """Background for a relative latency: green faster, red slower than the baseline (log scale, +-4x)."""
    if rel is None or not math.isfinite(rel) or rel <= 0:
        return "#f4f4f4"
    x = max(-1.0, min(1.0, math.log2(rel) / 2))
    base, (r, g, b) = (255, 255, 255), ((214, 69, 65) if x > 0 else (56, 161, 105))
    mix = [round(c0 + (c1 - c0) * abs(x) * 0.6) for c0, c1 in zip(base, (r, g, b), strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*mix)


def _cell_keys(v, t, across: bool) -> list[str]:
    """The numbers a summary cell shows: the key number, or each part's when the rule has several."""
    if v is None:
        return ["-"]
    if across:
        return [v.by_target.get(t, "not measured")]
    if len(v.parts) > 1:
        return [f"{p.name}: {fmt(p.estimate, p.unit, p.point_only)} {measured_as(p.estimate, p.point_only)}".strip()
                for p in v.parts]  # fmt: skip
    return [f"{v.key_text} {v.key_how}".strip()]


def _passes_view(v: Verdict | None) -> dict:
    """The verdict each pass alone gives, as marks (✓ ✓ ✗) and as words; empty with fewer than two passes."""
    if v is None or not v.by_pass:
        return {"marks": "", "text": "", "agree": True}
    marks = " ".join(STATUS_MARK[s] for s in v.by_pass)
    return {"marks": marks, "text": passes_text(v.by_pass), "agree": v.passes_agree}


def _row_view(row: Row | None) -> dict:
    if row is None:
        return {"text": "-", "how": "", "status": "", "mark": "", "title": ""}
    if row.estimate is None:
        return {"text": "missing", "how": "", "status": "not_measured", "mark": "", "title": "; ".join(row.missing)}
    status = row.status or ""
    how = measured_as(row.estimate, row.point_only)
    return {
        "text": fmt(row.estimate, point_only=row.point_only),
        "how": how,
        "status": status,
        "mark": STATUS_MARK.get(status, ""),
        "title": f"{STATUS_LABELS.get(status, 'supporting evidence')}; {row.candidate} / {row.baseline}"
        + (f"; {HOW[how]}" if how else ""),
    }


def _controls(judged: Judgement, key: str) -> list[str]:
    """The names of a suite's A/A controls (plan.CONTROL)."""
    return [c.name for c in judged.plans[key].comparisons if c.role == CONTROL]


def _control_view(judged: Judgement, key: str, name: str, targets: list[Target]) -> dict:
    """An A/A control's row under the summary: per target the width of its interval, the noise floor of every
    comparison there, and whether the interval holds 1 as it must."""
    found = {row.target: row.estimate for row in judged.rows(key) if row.comparison == name and row.target}
    cells = []
    for t in targets:
        e = found.get(t)
        if e is None or not e.has_interval:
            cells.append({"text": "not measured", "holds": None, "title": ""})
            continue
        holds = e.low <= 1 <= e.high  # type: ignore[operator]
        cells.append(
            {
                "text": f"width {e.high / e.low - 1:.1%}",  # type: ignore[operator]
                "holds": holds,
                "title": f"{e.value:.4f} [{e.low:.4f}, {e.high:.4f}]",
            }
        )
    return {"name": name, "suite": judged.suites[key], "cells": cells}


def page(
    judged: Judgement,
    tables: Tables,
    validations: list[Validation],
    baseline: Target | None,
    out_dir: Path,
    progress: bool,
) -> str:
    """The HTML page: every suite's section with its figures, the summary, the tables of this render."""
    targets = judged.targets
    tasks = sum(len(p.comparisons) + len(p.extras) for p in judged.plans.values())
    bar = tqdm(total=tasks, desc="opbench report: figures", unit="fig", file=sys.stderr, disable=not progress)
    sections = []
    for key, suite in judged.suites.items():
        plan = judged.plans[key]
        rows: dict[str, dict] = {}
        for row in judged.rows(key):
            entry = rows.setdefault(row.comparison, {"role": row.role, "metric": row.metric, "cells": {}})
            entry["cells"][row.target] = row
        for c in plan.comparisons:
            published = judged.published_ratio(c)
            if c.name in rows and published:
                rows[c.name]["published"] = f"{published[0]:.2f}x ({published[1]})"
        figs = []
        for c in plan.comparisons:
            figs.append(
                {
                    "name": c.name,
                    "role": c.role,
                    "uri": _comparison_figure(judged, c, targets) if targets else None,
                    "baseline": c.baseline.id,
                    "candidate": c.candidate.id,
                }
            )
            bar.update()
        extras = []
        for extra in plan.extras:
            extras.append(extra_views.view(judged, extra, targets, validations))
            bar.update()
        cases = []
        for case in plan.cases:
            info = judged.case_info(case.id)
            on = [t for t in targets if case.id in judged.data[t] and judged.data[t][case.id].ok]
            problems = [
                f"{t.label}: {judged.data[t][case.id].why_missing()}"
                for t in targets
                if case.id in judged.data[t] and not judged.data[t][case.id].ok
            ]
            cases.append(
                {
                    "id": case.id,
                    "description": case.description,
                    "shape": "x".join(map(str, info["input_shape"] or case.input_shape)),
                    "mmacs": f"{info['macs'] / 1e6:,.1f}" if info["macs"] else "-",
                    "measured_on": len(on),
                    "problems": problems,
                }
            )
        sections.append(
            {
                "suite": suite,
                "anchor": key,
                "verdicts": [
                    {
                        "v": v,
                        "anchor": _anchor(key, v.target.device, v.target.backend)
                        if v.target
                        else _anchor(key, "all-pairs"),
                        "passes": _passes_view(v),
                    }
                    for v in judged.verdicts.get(key, [])
                ],
                "thresholds": suite.thresholds,
                "rows": [
                    {"name": name, **entry, "views": [_row_view(entry["cells"].get(t)) for t in targets]}
                    for name, entry in rows.items()
                ],
                "figures": figs,
                "extras": extras,
                "cases": cases,
            }
        )
    bar.close()

    summary = []
    for key, suite in judged.suites.items():
        if suite.rule is None:
            continue
        across = suite.rule.across_targets
        cells = []
        for t in targets:
            v = judged.verdict(key, t)
            cells.append(
                {
                    "status": v.status if v else "not_measured",
                    "label": v.status_label if v else "not measured",
                    "numbers": _cell_keys(v, t, across),
                    "key_label": suite.rule.cell_label if across else (v.key_label if v else ""),
                    "needs_another": across and v is not None and v.status == "inconclusive" and len(v.by_target) < 2,
                    "anchor": _anchor(key, "all-pairs") if across else _anchor(key, t.device, t.backend),
                    "passes": _passes_view(v),
                }
            )
        summary.append({"suite": suite, "cells": cells})
    controls = [_control_view(judged, key, name, targets) for key in judged.suites for name in _controls(judged, key)]

    cross_rows = []
    for record in tables.cross_backend.to_dict("records"):
        cells = []
        for t in targets:
            rel, ms = record[f"{t.device}/{t.backend} rel"], record[f"{t.device}/{t.backend} ms"]
            ok = not math.isnan(rel) if isinstance(rel, float) else rel is not None
            cells.append(
                {
                    "text": f"{rel:.2f}" if ok else ("-" if math.isnan(ms) else "no base"),
                    "title": "" if math.isnan(ms) else f"{ms:.4g} ms",
                    "bg": _heat(rel if ok else None),
                }
            )
        cross_rows.append({"case": record["case"], "cells": cells})

    published, environment = tables.published, tables.environment
    unavailable = sorted(
        {f"{r.run.device.name}: {k}: {v}" for r in judged.inputs.runs for k, v in r.run.unavailable_backends.items()}
    )
    context = {
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "judged": judged,
        "targets": targets,
        "target_sources": {t: SOURCE_LABELS.get(t.source, t.source) for t in targets},
        "summary": summary,
        "controls": controls,
        "sections": sections,
        "cross_rows": cross_rows,
        "baseline": baseline,
        "published": published.to_dict("records"),
        "published_columns": list(published.columns),
        "environment": environment.to_dict("records"),
        "environment_columns": list(environment.columns),
        "thresholds": [t for suite in judged.suites.values() for t in suite.thresholds],
        "notes": [s.rule.note for s in judged.suites.values() if s.rule and s.rule.note],
        "skipped": judged.inputs.skipped,
        "unjudged": judged.inputs.unjudged,
        "unavailable": unavailable,
        "missing_observations": judged.missing_observations(),
        "csv_files": list(tables.csv_files()),
        "out_dir": str(out_dir),
        "confidence": stats.CONFIDENCE,
        "resamples": stats.RESAMPLES,
        "status_labels": STATUS_LABELS,
    }
    return _environment().get_template("index.html.j2").render(**context)


def _comparison_figure(judged: Judgement, comparison: Comparison, targets: list[Target]) -> str | None:
    """The comparison's baseline and candidate latency on each target, drawn as pairs of bars."""
    return figures.comparison_figure(
        [t.label for t in targets],
        [judged.latency(t, comparison.baseline.id) for t in targets],
        [judged.latency(t, comparison.candidate.id) for t in targets],
        comparison.baseline.id,
        comparison.candidate.id,
    )
