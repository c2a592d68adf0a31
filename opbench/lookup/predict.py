"""A model's latency predicted from the block lookup table, and how far the predictions are from measured models.

Prediction = the sum of the model's blocks' measured medians (each block counted as often as the model uses it),
less the backend's per-call floor for every block but one: each block timed alone pays one call into the runtime
(the `overhead` suite's floor, measured in the same run), the whole model pays it once. Without a measured floor the
plain sum is the prediction, and says so. Interval: a bootstrap of that statistic (stats.of_medians: every sample set
resampled, medians combined), not a sum of the blocks' intervals (too wide: the blocks' errors are independent).
The validation table uses point values; nn-Meter's metric is the share of models predicted within +-10% (and +-5%).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from opbench import stats
from opbench.errors import OpbenchError
from opbench.plan import BlockSum, Predictions
from opbench.results import load_runs, slugify
from opbench.stats import Estimate
from opbench.verdict import Measured


@dataclass(frozen=True)
class Prediction:
    model: str
    blocks: tuple[tuple[str, int], ...]  # (block case id, times used), in first-use order
    predicted: Estimate  # seconds: the sum less the floor of every block but one
    measured: Estimate | None  # the whole model's median, where it was measured
    plain_sum_s: float  # the blocks' medians summed, no floor taken off
    floor_s: float | None  # the backend's per-call floor, where measured

    @property
    def plain_error(self) -> float | None:
        return self.plain_sum_s / self.measured.value - 1 if self.measured else None

    @property
    def error(self) -> float | None:
        """Predicted over measured, minus 1 (+0.1: the sum is 10% above the measured model)."""
        return self.predicted.value / self.measured.value - 1 if self.measured else None


def measured_table(
    paths: Iterable[Path | str], device: str, backend: str, extra: Predictions, suite: str
) -> dict[str, Measured]:
    """Every result of one (device, backend), the latest run winning: the lookup table (cases of `suite`, which
    draws `extra`) and the measured models; a failed or unsupported one is kept with its reason, so that a
    prediction that needs it says why it is missing."""
    runs = [r for r in load_runs(paths) if r.source != "reference"]
    wanted = slugify(device) if any(ch.isalnum() for ch in device) else device
    runs = [r for r in runs if device in (r.device.name, r.device.slug) or r.device.slug == wanted]
    if not runs:
        raise OpbenchError(f"no results for device {device!r}; measure there first (make bench) or check the name")
    measured_here = sorted({r.backend for run in runs for r in run.results})
    if backend not in measured_here:
        raise OpbenchError(
            f"no results for backend {backend!r} on {device!r}; measured there: {', '.join(measured_here) or 'none'}"
        )
    table: dict[str, Measured] = {}
    for run in sorted(runs, key=lambda r: r.created):
        for r in run.results:
            if r.backend != backend:
                continue
            if r.ok:
                s = r.stats
                table[r.case] = Measured(r.case, samples=s.samples, median_s=s.median_s, macs=r.macs, run_id=run.run_id)
            else:
                table[r.case] = Measured(r.case, status=r.status, reason=r.reason, run_id=run.run_id)
    if not any(_ok(table, block) for m in extra.models for block, _ in m.blocks):
        raise OpbenchError(
            f"no block lookup table for {device!r} / {backend!r}: run the {suite} suite there "
            f'(make bench ARGS="--opbench-suites {suite} --opbench-backends {backend}")'
        )
    return table


def predict_blocks(
    model: BlockSum, floor_id: str | None, table: dict[str, Measured], interval: bool = True
) -> Prediction:
    """The sum of the blocks' medians (with a bootstrap interval of the sum) and the measured model, if any."""
    counts = dict(model.blocks)
    missing = [b for b in counts if _ok(table, b) is None]
    if missing:
        first = table.get(missing[0], Measured(missing[0], status="missing"))
        raise OpbenchError(
            f"{model.model}: {len(missing)} block(s) without an ok result for this device/backend, e.g. "
            f"{first.why_missing()}; measure the lookup table there"
        )
    ids = list(counts)
    weights = np.array([counts[b] for b in ids], dtype=float)
    floor = _ok(table, floor_id) if floor_id else None
    if floor is not None:  # the floor is one more sample set, counted minus (blocks - 1) times
        ids, weights = [*ids, floor_id], np.append(weights, 1.0 - weights.sum())
    sets = [table[b] for b in ids]
    medians = [m.median_s for m in sets]

    def statistic(meds: list[np.ndarray]) -> np.ndarray:
        return sum(w * m for w, m in zip(weights, meds, strict=True))

    if interval:
        predicted = stats.of_medians([m.samples for m in sets], medians, statistic)
    else:
        predicted = Estimate(float(np.dot(weights, medians)))
    plain = float(sum(counts[b] * table[b].median_s for b in counts))
    whole = _ok(table, model.case)
    measured = stats.median(whole.samples, whole.median_s) if whole and interval else None
    if whole and not interval:
        measured = Estimate(whole.median_s)
    floor_s = floor.median_s if floor is not None else None
    return Prediction(model.model, model.blocks, predicted, measured, plain, floor_s)


def _ok(table: dict[str, Measured], case: str) -> Measured | None:
    """The case's entry when it was measured ok (a report's table also holds failed and unsupported cases)."""
    found = table.get(case)
    return found if found is not None and found.ok else None


def predict(model: str, extra: Predictions, table: dict[str, Measured], interval: bool = True) -> Prediction:
    """One of the extra's models predicted from the table."""
    found = extra.model(model)
    if found is None:
        raise OpbenchError(f"unknown model {model!r}; choose from {', '.join(m.model for m in extra.models)}")
    return predict_blocks(found, extra.floor, table, interval)


def validation(tables: dict[tuple[str, str], dict[str, Measured]], extra: Predictions) -> pd.DataFrame:
    """One row per model measured whole and from blocks on a (device, backend): predicted, measured, error."""
    rows = []
    for (device, backend), table in tables.items():
        for model in extra.models:
            if _ok(table, model.case) is None:
                continue
            try:
                p = predict_blocks(model, extra.floor, table, interval=False)
            except OpbenchError:
                continue  # blocks missing on this target: nothing to validate
            rows.append(
                {"device": device, "backend": backend, "model": model.model, "family": model.family,
                 "predicted_ms": p.predicted.value * 1e3, "measured_ms": p.measured.value * 1e3, "error": p.error,
                 "plain_sum_ms": p.plain_sum_s * 1e3, "plain_error": p.plain_error,
                 "floor_ms": None if p.floor_s is None else p.floor_s * 1e3}
            )  # fmt: skip
    columns = ["device", "backend", "model", "family", "predicted_ms", "measured_ms", "error", "plain_sum_ms",
               "plain_error", "floor_ms"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def summary(table: pd.DataFrame, by: Sequence[str] = ("device", "backend")) -> pd.DataFrame:
    """Per group: models validated, share within +-10% and +-5%, RMSPE, mean error (the sum's bias: negative where
    the backend fuses across block boundaries so that the whole runs faster than its parts)."""
    columns = [*by, "models", "within_10pct", "within_5pct", "rmspe", "mean_error", "plain_within_10pct"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    groups = table.groupby(list(by), sort=False)
    out = groups["error"].agg(
        models="size",
        within_10pct=lambda e: float((e.abs() <= 0.10).mean()),
        within_5pct=lambda e: float((e.abs() <= 0.05).mean()),
        rmspe=lambda e: float(np.sqrt((e**2).mean())),
        mean_error="mean",
    )
    out["plain_within_10pct"] = groups["plain_error"].agg(lambda e: float((e.abs() <= 0.10).mean()))
    return out.reset_index()[columns]
