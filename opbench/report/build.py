"""From result files to what the report shows: targets, their measurements, verdicts and the tables behind them.

Selection: for each (device, backend, case) the latest run's result with status ok is used; when no run has
it ok, the latest result says why it is missing. Runs with source "reference" are published numbers: they
appear in their own table and never in a verdict. Runs with source "import" are devices like any other.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from opbench import stats
from opbench.attribution import Breakdown, OpRow, breakdown
from opbench.backends import REGISTRY
from opbench.case import Case
from opbench.errors import OpbenchError
from opbench.files import short
from opbench.lookup import predict as prediction
from opbench.plan import Comparison, Plan, Predictions
from opbench.results import DEFAULT_DIR, Result, Run, load_run, result_files
from opbench.stats import Estimate
from opbench.suite import Suite, plans, suites
from opbench.verdict import STATUS_LABELS, Evidence, Measured, Row, Target, Verdict

REFERENCE = "reference"
SOURCE_LABELS = {"pytest-benchmark": "measured", "import": "imported", "reference": "published"}


@dataclass
class LoadedRun:
    path: Path
    run: Run

    @property
    def source(self) -> str:
        return self.run.source


@dataclass
class Inputs:
    runs: list[LoadedRun]
    skipped: list[str] = field(default_factory=list)  # one message per invalid file that was skipped
    unjudged: list[str] = field(default_factory=list)  # one message per users' suite whose definition is not loaded


def load_inputs(
    paths: Iterable[Path | str] = (DEFAULT_DIR,),
    skip_invalid: bool = False,
    warn: Callable[[str], None] = print,
) -> Inputs:
    """Every result file under the paths. A malformed file raises OpbenchError naming it, or with skip_invalid
    is skipped with a warning (passed to `warn` and kept for the report). A result file never causes an import: the
    users' suites it names that are not loaded (`--suite-file`) are listed, warned and kept for the report."""
    paths = list(paths)
    files = result_files(paths)
    if not files:
        where = ", ".join(map(str, paths))
        raise OpbenchError(f"no result files (*.json) under {where}; run `make bench` first, or name result files")
    inputs = Inputs([])
    for path in files:
        try:
            inputs.runs.append(LoadedRun(path, load_run(path)))
        except OpbenchError as exc:
            if not skip_invalid:
                raise OpbenchError(
                    f"{exc}\nFix or remove that file, or pass --skip-invalid to render without it."
                ) from exc
            inputs.skipped.append(str(exc))
            warn(f"opbench: warning: skipped an invalid result file: {exc}")
    if not inputs.runs:
        raise OpbenchError("no valid result file among the inputs: " + "; ".join(inputs.skipped))
    inputs.unjudged = unloaded_suites(inputs.runs)
    for message in inputs.unjudged:
        warn(f"opbench: warning: {message}")
    return inputs


def unloaded_suites(runs: Iterable[LoadedRun]) -> list[str]:
    """Why each suite the runs measured but the registry does not know is not judged, and how to load it."""
    known, origins = suites(), {}
    for loaded in runs:
        for result in loaded.run.results:
            origins.setdefault(result.suite, "")
        for key, path in (loaded.run.protocol.get("suites") or {}).items():
            origins[key] = origins.get(key) or path
    return [
        f"suite {key!r} is not judged (its results are in the tables, without a section or verdict): load its case "
        f"module with --suite-file{f' (the run recorded {short(path)!r})' if path else ''}"
        for key, path in origins.items()
        if key not in known
    ]


def _matches(value: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(value.lower(), p.lower()) for p in patterns)


def select(inputs: Inputs, devices: list[str] | None = None, backends: list[str] | None = None) -> Inputs:
    """Keep the devices (name or slug, glob) and backends (glob) asked for; an empty selection is an error.
    Published reference numbers are kept whatever the selection: they are shown beside it, never judged."""
    if not devices and not backends:
        return inputs
    kept = []
    for loaded in inputs.runs:
        device = loaded.run.device
        if loaded.source == REFERENCE:
            kept.append(loaded)
            continue
        if devices and not (_matches(device.slug, devices) or _matches(device.name, devices)):
            continue
        results = [r for r in loaded.run.results if not backends or _matches(r.backend, backends)]
        if results:
            kept.append(LoadedRun(loaded.path, dataclasses.replace(loaded.run, results=results)))
    if not any(r.source != REFERENCE for r in kept):
        measured = [r for r in inputs.runs if r.source != REFERENCE]
        known_devices = sorted({r.run.device.slug for r in measured})
        known_backends = sorted({x.backend for r in measured for x in r.run.results})
        raise OpbenchError(
            f"no result matches --device {devices or 'any'} --backend {backends or 'any'}; "
            f"devices: {', '.join(known_devices)}; backends: {', '.join(known_backends)}"
        )
    return Inputs(kept, inputs.skipped)


def _measured(result: Result, run_id: str) -> Measured:
    return Measured(
        case=result.case,
        status=result.status,
        reason=result.reason,
        samples=result.stats.samples if result.stats else None,
        median_s=result.stats.median_s if result.stats else None,
        macs=result.macs,
        run_id=run_id,
        window=result.stats.window if result.stats else None,
    )


@dataclass
class Report:
    """Everything the template and the CSV files need."""

    inputs: Inputs
    grid: str
    suites: dict[str, Suite]
    plans: dict[str, Plan]
    targets: list[Target]  # measured and imported (device, backend) pairs, in display order
    data: dict[Target, dict[str, Measured]]
    results: dict[Target, dict[str, Result]]  # the result behind each Measured
    published: list[tuple[Run, Result]]  # the results of the reference runs
    evidence: Evidence
    verdicts: dict[str, list[Verdict]] = field(default_factory=dict)  # suite key -> verdicts (suites with a rule)
    baseline: Target | None = None
    _latencies: dict[tuple[Target, str], Estimate | None] = field(default_factory=dict, repr=False)
    _profiles: dict[tuple[Target, str], Breakdown | str | None] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def cases(self) -> dict[str, Case]:
        return {c.id: c for p in self.plans.values() for c in p.cases}

    def macs(self, case_id: str) -> int | None:
        """MACs from any result with the case, else counted from the case itself."""
        for results in self.results.values():
            if case_id in results and results[case_id].macs:
                return results[case_id].macs
        case = self.cases.get(case_id)
        return case.macs if case else None

    def case_info(self, case_id: str) -> dict:
        """Shape and MACs as recorded in the results (no counting: that needs building the module)."""
        for results in self.results.values():
            if case_id in results:
                r = results[case_id]
                return {"input_shape": list(r.input_shape), "macs": r.macs, "params": r.param_count}
        case = self.cases.get(case_id)
        return {"input_shape": list(case.input_shape) if case else None, "macs": None, "params": None}

    def latency(self, target: Target, case_id: str) -> Estimate | None:
        """Median latency in seconds with its bootstrap interval (a point estimate for median-only results)."""
        if (target, case_id) not in self._latencies:
            m = self.data.get(target, {}).get(case_id)
            self._latencies[target, case_id] = stats.median(m.samples, m.median_s) if m and m.ok else None
        return self._latencies[target, case_id]

    def profile(self, target: Target, case_id: str) -> Breakdown | str | None:
        """Where the case's time went on the target (its profiling pass), why there is none, or None; derived once
        (every section with model evidence asks for it)."""
        if (target, case_id) not in self._profiles:
            result = self.results.get(target, {}).get(case_id)
            found = None
            if result is not None and result.profile:
                found = result.profile.get("unavailable") or breakdown(
                    [OpRow.from_json(r) for r in result.profile.get("rows", [])], result.profile["e2e_median_s"]
                )
            self._profiles[target, case_id] = found
        return self._profiles[target, case_id]

    def published_ratio(self, comparison: Comparison) -> tuple[float, str] | None:
        """The comparison's ratio from published numbers of one reference run and one backend (one protocol, one
        setting), labelled with where they come from; None unless such a pair has both cases. Never mixed."""
        found: dict[tuple[str, str], dict[str, float]] = {}
        for run, result in self.published:
            found.setdefault((run.run_id, f"{run.device.name}, {result.backend}"), {})[result.case] = (
                result.stats.median_s
            )
        for (_, label), medians in found.items():
            base, cand = medians.get(comparison.baseline.id), medians.get(comparison.candidate.id)
            if base and cand:
                return cand / base, label
        return None

    def rows(self, key: str) -> list[Row]:
        """Every comparison of the suite on every target, quantified (the rule's and the supporting ones)."""
        return [self.evidence.row(c, t) for c in self.plans[key].comparisons for t in self.targets]

    def verdict(self, key: str, target: Target) -> Verdict | None:
        for v in self.verdicts.get(key, []):
            if v.target in (None, target):
                return v
        return None

    def missing_observations(self) -> list[str]:
        return [
            self.suites[k].title
            for k, verdicts in self.verdicts.items()
            if all(v.status == "not_measured" for v in verdicts)
        ]


def _target_order(t: Target) -> tuple:
    """Measured runs first, then by device, then backends in registry order (eager, ORT, compilers, Core ML...)."""
    names = list(REGISTRY)
    rank = names.index(t.backend) if t.backend in names else len(names)
    return (t.source != "pytest-benchmark", t.device_name, rank, t.backend)


def build(inputs: Inputs, baseline: str | None = None) -> Report:
    """Pick each (device, backend, case)'s result, then every suite's comparisons and verdicts."""
    measured_runs = [r for r in inputs.runs if r.source != REFERENCE]
    grid = "full" if any(r.run.protocol.get("grid") == "full" for r in inputs.runs) else "default"
    chosen: dict[Target, dict[str, tuple[str, Result]]] = {}
    for loaded in sorted(measured_runs, key=lambda r: r.run.created):  # later runs overwrite earlier ones
        device = loaded.run.device
        for result in loaded.run.results:
            target = Target(device.slug, result.backend, device.name, loaded.source)
            per_case = chosen.setdefault(target, {})
            previous = per_case.get(result.case)
            if previous is None or result.status == "ok" or previous[1].status != "ok":
                per_case[result.case] = (loaded.run.run_id, result)
    targets = sorted(chosen, key=_target_order)
    data = {t: {c: _measured(r, run_id) for c, (run_id, r) in chosen[t].items()} for t in targets}
    results = {t: {c: r for c, (_, r) in chosen[t].items()} for t in targets}
    published = [(r.run, result) for r in inputs.runs if r.source == REFERENCE for result in r.run.results if result.ok]
    known = suites()
    report = Report(inputs, grid, known, plans(grid), targets, data, results, published, Evidence({}))
    report.evidence = Evidence(data, report.macs)
    report.baseline = _baseline(targets, baseline)
    for key, suite in known.items():
        if suite.rule:
            report.verdicts[key] = suite.rule.verdicts(key, report.plans[key], report.evidence)
    return report


def _baseline(targets: list[Target], spec: str | None) -> Target | None:
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


# ---- the tables behind the report (also written as CSV) ----


def _est_columns(prefix: str, e: Estimate | None, scale: float = 1.0) -> dict:
    if e is None:
        return {prefix: None, f"{prefix}_low": None, f"{prefix}_high": None}
    return {
        prefix: e.value * scale,
        f"{prefix}_low": e.low * scale if e.has_interval else None,
        f"{prefix}_high": e.high * scale if e.has_interval else None,
    }


def results_table(report: Report) -> pd.DataFrame:
    rows = []
    for t in report.targets:
        for case_id, m in report.data[t].items():
            r = report.results[t][case_id]
            lat = report.latency(t, case_id)
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
    for run, r in report.published:
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


def comparisons_table(report: Report) -> pd.DataFrame:
    """Every comparison of every suite on every target: the rules' and the supporting ones."""
    rows = []
    for key in report.suites:
        for row in report.rows(key):
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


def verdicts_table(report: Report) -> pd.DataFrame:
    rows = []
    for key, verdicts in report.verdicts.items():
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


def environment_table(report: Report) -> pd.DataFrame:
    rows = []
    for loaded in sorted(report.inputs.runs, key=lambda r: (r.source == REFERENCE, r.run.created)):
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


def cross_backend_table(report: Report) -> pd.DataFrame:
    """Median latency of every case on every target, divided by the baseline target's (NaN where missing)."""
    base = report.baseline
    rows = []
    case_ids = [c for c in report.cases if any(c in report.data[t] for t in report.targets)]
    for case_id in case_ids:
        ref = report.latency(base, case_id) if base else None
        row = {"case": case_id}
        for t in report.targets:
            lat = report.latency(t, case_id)
            row[f"{t.device}/{t.backend} ms"] = lat.value * 1e3 if lat else np.nan
            row[f"{t.device}/{t.backend} rel"] = lat.value / ref.value if lat and ref else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def published_table(report: Report) -> pd.DataFrame:
    rows = []
    for run, r in report.published:
        ref = r.reference or {}
        local = {}
        for t in report.targets:
            lat = report.latency(t, r.case)
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


def breakdown_table(report: Report) -> pd.DataFrame:
    """Every profiled (device, backend, case): seconds and share per category, coverage of the end-to-end median;
    a backend without a profiler says why."""
    rows = []
    for t in report.targets:
        for case_id in report.results[t]:
            found = report.profile(t, case_id)
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


def predicted(report: Report, extra: Predictions) -> pd.DataFrame:
    """A Predictions extra's validation table over the measured (not published) targets."""
    return prediction.validation(
        {(t.device_name, t.backend): report.data[t] for t in report.targets if t.source != REFERENCE}, extra
    )


def _predictions(report: Report) -> list[tuple[Predictions, pd.DataFrame]]:
    extras = [e for p in report.plans.values() for e in p.extras if isinstance(e, Predictions)]
    return [(e, predicted(report, e)) for e in extras]


def prediction_table(report: Report) -> pd.DataFrame:
    """Whole models predicted from their measured parts against measured, per target (every Predictions extra)."""
    return pd.concat([table for _, table in _predictions(report)] or [pd.DataFrame()], ignore_index=True)


def prediction_summary_table(report: Report) -> pd.DataFrame:
    """Per target: share of models within +-10% / +-5%, RMSPE, mean error; then the same per model family."""
    frames = [
        prediction.summary(t, by)
        for e, t in _predictions(report)
        for by in (("device", "backend"), ("device", "backend", "family"))
    ]
    return pd.concat(frames or [pd.DataFrame()], ignore_index=True)
