"""Judging, apart from showing: result files -> runs -> targets with their measured data -> evidence (latency
estimates, profiles, published ratios) -> each suite's verdicts, and the prediction validation. `opbench report`
shows what this judges, `opbench stability` judges each run alone with it, and neither judges anything itself.

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

import pandas as pd

from opbench import stats
from opbench.attribution import Breakdown, OpRow, breakdown
from opbench.backends import REGISTRY
from opbench.case import Case
from opbench.errors import OpbenchError
from opbench.files import short
from opbench.lookup import predict as prediction
from opbench.lookup.measured import laid_over
from opbench.plan import Comparison, Plan, Predictions
from opbench.results import DEFAULT_DIR, Result, Run, load_run, result_files
from opbench.stats import Estimate
from opbench.suite import Suite, plans, suites
from opbench.verdict import Evidence, Measured, Row, Target, Verdict

REFERENCE = "reference"
TARGET = ("device", "backend")  # the columns that name a target in the prediction validation


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


def select(
    inputs: Inputs,
    devices: list[str] | None = None,
    backends: list[str] | None = None,
    suites: list[str] | None = None,
) -> Inputs:
    """Keep the devices (name or slug, glob), backends (glob) and suites (keys) asked for; an empty selection is an
    error. Published reference numbers are kept whatever the selection: they are shown beside it, never judged."""
    if not devices and not backends and not suites:
        return inputs
    kept = []
    for loaded in inputs.runs:
        device = loaded.run.device
        if loaded.source == REFERENCE:
            kept.append(loaded)
            continue
        if devices and not (_matches(device.slug, devices) or _matches(device.name, devices)):
            continue
        results = [
            r
            for r in loaded.run.results
            if (not backends or _matches(r.backend, backends)) and (not suites or r.suite in suites)
        ]
        if results:
            kept.append(LoadedRun(loaded.path, dataclasses.replace(loaded.run, results=results)))
    if not any(r.source != REFERENCE for r in kept):
        measured = [r for r in inputs.runs if r.source != REFERENCE]
        known_devices = sorted({r.run.device.slug for r in measured})
        known_backends = sorted({x.backend for r in measured for x in r.run.results})
        known_suites = sorted({x.suite for r in measured for x in r.run.results})
        raise OpbenchError(
            f"no result matches --device {devices or 'any'} --backend {backends or 'any'} --suite {suites or 'any'}; "
            f"devices: {', '.join(known_devices)}; backends: {', '.join(known_backends)}; "
            f"suites: {', '.join(known_suites)}"
        )
    return Inputs(kept, inputs.skipped)


@dataclass
class Judgement:
    """The runs judged: every target's measured data and results, the published numbers beside them, the evidence
    every rule and table reads, and each suite's verdicts."""

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


def judge(inputs: Inputs) -> Judgement:
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
            if result.replaces(previous and previous[1]):
                per_case[result.case] = (loaded.run.run_id, result)
    targets = sorted(chosen, key=_target_order)
    data = {t: {c: Measured.of(r, run_id) for c, (run_id, r) in chosen[t].items()} for t in targets}
    results = {t: {c: r for c, (_, r) in chosen[t].items()} for t in targets}
    published = [(r.run, result) for r in inputs.runs if r.source == REFERENCE for result in r.run.results if result.ok]
    known = suites()
    judged = Judgement(inputs, grid, known, plans(grid), targets, data, results, published, Evidence({}))
    judged.evidence = Evidence(data, judged.macs)
    for key, suite in known.items():
        if suite.rule:
            judged.verdicts[key] = suite.rule.verdicts(key, judged.plans[key], judged.evidence)
    return judged


@dataclass(frozen=True)
class Validation:
    """A Predictions extra checked against the models measured whole: one row per (target, model), then the
    summaries per target and per target and family (opbench.lookup.predict), and per target which run the table
    and the models came from (opbench.lookup.measured: the same table `opbench predict` reads)."""

    extra: Predictions
    models: pd.DataFrame
    by_target: pd.DataFrame
    by_family: pd.DataFrame
    sources: dict[tuple[str, str], str]  # (device, backend) -> the table's note


def validate_predictions(judged: Judgement) -> list[Validation]:
    """Every Predictions extra of every suite, validated over the measured targets (published numbers never are),
    each target's table the run that timed the blocks and the models together laid over the latest results."""
    found = []
    for extra in (e for p in judged.plans.values() for e in p.extras if isinstance(e, Predictions)):
        tables = {(t.device_name, t.backend): laid_over(_runs_of(judged, t), t.backend, extra) for t in judged.targets}
        models = prediction.validation({k: table.data for k, table in tables.items()}, extra)
        by_target, by_family = (prediction.summary(models, by) for by in (TARGET, (*TARGET, "family")))
        found.append(Validation(extra, models, by_target, by_family, {k: t.note for k, t in tables.items()}))
    return found


def _runs_of(judged: Judgement, target: Target) -> list[Run]:
    """The measured runs judged for the target's device (published numbers are never validated against)."""
    return [r.run for r in judged.inputs.runs if r.source != REFERENCE and r.run.device.slug == target.device]
