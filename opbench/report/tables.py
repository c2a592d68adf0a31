"""The tables behind the report, each made once per render: written as the CSV files, and read by the page."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opbench.analysis.judge import REFERENCE, Judgement, Validation
from opbench.errors import OpbenchError
from opbench.stats import Estimate
from opbench.verdict import STATUS_LABELS, Target

SOURCE_LABELS = {"pytest-benchmark": "measured", "import": "imported", "reference": "published"}


@dataclass(frozen=True)
class Tables:
    """The nine tables of one render, in the order of their CSV files (`<field>.csv`)."""

    results: pd.DataFrame
    verdicts: pd.DataFrame
    comparisons: pd.DataFrame
    cross_backend: pd.DataFrame
    environment: pd.DataFrame
    published: pd.DataFrame
    breakdown: pd.DataFrame
    prediction: pd.DataFrame
    prediction_summary: pd.DataFrame

    def csv_files(self) -> dict[str, pd.DataFrame]:
        return {f"{f.name}.csv": getattr(self, f.name) for f in dataclasses.fields(self)}


def make(judged: Judgement, baseline: Target | None, validations: list[Validation]) -> Tables:
    """Every table of the render, each made here and only here."""
    return Tables(
        results=results_table(judged),
        verdicts=verdicts_table(judged),
        comparisons=comparisons_table(judged),
        cross_backend=cross_backend_table(judged, baseline),
        environment=environment_table(judged),
        published=published_table(judged),
        breakdown=breakdown_table(judged),
        prediction=prediction_table(validations),
        prediction_summary=prediction_summary_table(validations),
    )


def baseline_target(targets: list[Target], spec: str | None) -> Target | None:
    """The target the cross-backend view divides by: 'BACKEND' or 'DEVICE/BACKEND' (default: the first)."""
    if not targets:
        return None
    if not spec:
        return targets[0]
    device, _, backend = spec.rpartition("/")
    found = [t for t in targets if t.backend == backend and (not device or device in (t.device, t.device_name))]
    if not found:
        known = ", ".join(f"{t.device}/{t.backend}" for t in targets)
        raise OpbenchError(f"--baseline {spec!r} matches no (device, backend) in the results; choose from {known}")
    return found[0]


def _est_columns(prefix: str, e: Estimate | None, scale: float = 1.0) -> dict:
    if e is None:
        return {prefix: None, f"{prefix}_low": None, f"{prefix}_high": None}
    return {
        prefix: e.value * scale,
        f"{prefix}_low": e.low * scale if e.has_interval else None,
        f"{prefix}_high": e.high * scale if e.has_interval else None,
    }


def results_table(judged: Judgement) -> pd.DataFrame:
    rows = []
    for t in judged.targets:
        for case_id, m in judged.data[t].items():
            r = judged.results[t][case_id]
            lat = judged.latency(t, case_id)
            rows.append(
                {
                    "device": t.device_name,
                    "device_slug": t.device,
                    "backend": t.backend,
                    "source": SOURCE_LABELS.get(t.source, t.source),
                    "case": case_id,
                    "suite": r.suite,
                    "input_shape": "x".join(map(str, r.input_shape)),
                    "macs": r.macs,
                    "status": m.status,
                    "reason": m.reason,
                    **_est_columns("median_ms", lat, 1e3),
                    "point_estimate": m.point_only if m.ok else None,
                    "rounds": len(m.samples) if m.samples else None,
                    "gmacs_per_s": r.macs / lat.value / 1e9 if r.macs and lat else None,
                    "run_id": m.run_id,
                }
            )
    for run, r in judged.published:
        rows.append(
            {
                "device": run.device.name,
                "device_slug": run.device.slug,
                "backend": r.backend,
                "source": "published",
                "case": r.case,
                "suite": r.suite,
                "status": r.status,
                "median_ms": r.stats.median_s * 1e3,
                "point_estimate": True,
                "run_id": run.run_id,
            }
        )
    return pd.DataFrame(rows)


def comparisons_table(judged: Judgement) -> pd.DataFrame:
    """Every comparison of every suite on every target: the rules' and the supporting ones."""
    rows = []
    for key in judged.suites:
        for row in judged.rows(key):
            t = row.target
            rows.append(
                {
                    "suite": key,
                    "device": t.device_name if t else "",
                    "backend": t.backend if t else "",
                    "comparison": row.comparison,
                    "role": row.role,
                    "metric": row.metric,
                    "baseline": row.baseline,
                    "candidate": row.candidate,
                    **_est_columns("value", row.estimate),
                    "point_estimate": row.point_only if row.estimate else None,
                    "paired": row.estimate.paired if row.estimate else None,
                    "status": row.status or "",
                    "missing": "; ".join(row.missing),
                }
            )
    return pd.DataFrame(rows)


def verdicts_table(judged: Judgement) -> pd.DataFrame:
    rows = []
    for key, verdicts in judged.verdicts.items():
        for v in verdicts:
            rows.append(
                {
                    "suite": key,
                    "device": v.target.device_name if v.target else "(all pairs)",
                    "backend": v.target.backend if v.target else "(all pairs)",
                    "status": v.status_label,
                    "key_metric": v.key_label,
                    **_est_columns("key", v.key),
                    "point_estimate": v.point_only,
                    "by_pass": "; ".join(STATUS_LABELS[st] for st in v.by_pass),
                    "passes_agree": v.passes_agree,
                    "explanation": v.explanation,
                    "missing": len(v.missing),
                    "cases": " ".join(v.case_ids),
                }
            )
    return pd.DataFrame(rows)


def environment_table(judged: Judgement) -> pd.DataFrame:
    rows = []
    for loaded in sorted(judged.inputs.runs, key=lambda r: (r.source == REFERENCE, r.run.created)):
        run = loaded.run
        device, protocol = run.device, run.protocol
        statuses = [r.status for r in run.results]
        rows.append(
            {
                "file": str(loaded.path),
                "run_id": run.run_id,
                "source": SOURCE_LABELS.get(run.source, run.source),
                "created": run.created,
                "device": device.name,
                "kind": device.kind,
                "processor": device.cpu,
                "cores": device.cores,
                "memory_gb": device.memory_gb,
                "os": device.os,
                "threads": protocol.get("threads"),
                "backends": " ".join(sorted({r.backend for r in run.results})),
                "results": f"{statuses.count('ok')} ok, {statuses.count('unsupported')} unsupported, "
                f"{statuses.count('failed')} failed",
                "software": ", ".join(f"{k} {v}" for k, v in run.software.items()),
                "protocol": ", ".join(f"{k}={v}" for k, v in protocol.items() if k != "threads"),
                "unavailable_backends": "; ".join(f"{k}: {v}" for k, v in run.unavailable_backends.items()),
            }
        )
    return pd.DataFrame(rows)


def cross_backend_table(judged: Judgement, base: Target | None) -> pd.DataFrame:
    """Median latency of every case on every target, divided by the baseline target's (NaN where missing)."""
    rows = []
    case_ids = [c for c in judged.cases if any(c in judged.data[t] for t in judged.targets)]
    for case_id in case_ids:
        ref = judged.latency(base, case_id) if base else None
        row = {"case": case_id}
        for t in judged.targets:
            lat = judged.latency(t, case_id)
            row[f"{t.device}/{t.backend} ms"] = lat.value * 1e3 if lat else np.nan
            row[f"{t.device}/{t.backend} rel"] = lat.value / ref.value if lat and ref else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def published_table(judged: Judgement) -> pd.DataFrame:
    rows = []
    for run, r in judged.published:
        ref = r.reference or {}
        local = {}
        for t in judged.targets:
            lat = judged.latency(t, r.case)
            if lat:
                local[f"{t.label} (measured here) ms"] = lat.value * 1e3
        rows.append(
            {
                "case": r.case,
                "published_device": run.device.name,
                "published_backend": r.backend,
                "published_ms": r.stats.median_s * 1e3,
                "published_source": ref.get("source", ""),
                "protocol": ref.get("protocol", ""),
                "tag": ref.get("tag", ""),
                **local,
            }
        )
    columns = ["case", "published_device", "published_backend", "published_ms", "published_source", "protocol", "tag"]
    return pd.DataFrame(rows, columns=list(dict.fromkeys(columns + [k for r in rows for k in r])))


def breakdown_table(judged: Judgement) -> pd.DataFrame:
    """Every profiled (device, backend, case): seconds and share per category, coverage of the end-to-end median;
    a backend without a profiler says why."""
    rows = []
    for t in judged.targets:
        for case_id in judged.results[t]:
            found = judged.profile(t, case_id)
            if found is None:
                continue
            where = {"device": t.device_name, "backend": t.backend, "case": case_id}
            if isinstance(found, str):
                rows.append({**where, "category": "", "unavailable": found})
                continue
            for category, seconds in found.seconds.items():
                rows.append(
                    {
                        **where,
                        "category": category,
                        "ms": seconds * 1e3,
                        "share": found.shares[category],
                        "profiled_ms": found.profiled_s * 1e3,
                        "e2e_median_ms": found.e2e_median_s * 1e3,
                        "coverage": found.coverage,
                    }
                )
    return pd.DataFrame(rows)


def prediction_table(validations: list[Validation]) -> pd.DataFrame:
    """Whole models predicted from their measured parts against measured, per target (every Predictions extra)."""
    return pd.concat([v.models for v in validations] or [pd.DataFrame()], ignore_index=True)


def prediction_summary_table(validations: list[Validation]) -> pd.DataFrame:
    """Per target: share of models within +-10% / +-5%, RMSPE, mean error; then the same per model family."""
    frames = [frame for v in validations for frame in (v.by_target, v.by_family)]
    return pd.concat(frames or [pd.DataFrame()], ignore_index=True)
