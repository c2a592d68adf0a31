"""A model's latency predicted from the block lookup table, and how far the predictions are from measured models.

Prediction = the sum of the model's blocks' measured medians (each block counted as often as the model uses it),
less the backend's per-call floor for every block but one: each block timed alone pays one call into the runtime
(the `overhead` suite's floor, measured in the same run), the whole model pays it once. Without a measured floor the
plain sum is the prediction, and says so. Interval: a bootstrap of that statistic (stats.of_medians: every sample set
resampled, medians combined), not a sum of the blocks' intervals (too wide: the blocks' errors are independent).
The validation table uses point values; nn-Meter's metric is the share of models predicted within +-10% (and +-5%).

Four predictors side by side: the hot sum (blocks timed with their weights in cache), the cold sum (the same rule
on the blocks' cold twins, opbench.lookup.table.cold_id: weights from memory, as inside a model), and two gap models
(opbench.lookup.gap, each scored by leave-one-family-out cross-validation): the scaled hot sum and the corrected
prediction. A model measured between its hot and its cold sum is inside the bracket; outside it points at fusion
across blocks or at per-call costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opbench import stats
from opbench.errors import OpbenchError
from opbench.lookup import gap
from opbench.lookup.table import cold_id, is_cold
from opbench.plan import BlockSum, Predictions
from opbench.stats import Estimate
from opbench.verdict import Measured

# a predictor's name -> its columns' prefix; simplest first (the best of equal scores)
PREDICTORS = {"hot": "", "cold": "cold_", "scaled": "scaled_", "corrected": "corrected_"}
ABSENT = [f"{name}_absent" for name in PREDICTORS if name != "hot"]  # why a predictor is absent, per model


def gap_forms(corrected_from: str) -> tuple[tuple[str, str], ...]:
    """Each gap model with the sum it reads: the scaled one the hot sum, the corrected one `corrected_from`."""
    return (("scaled", "hot"), ("corrected", corrected_from))


NO_COLD = "no cold rows for this device/backend (its lookup table was timed hot only)"


@dataclass(frozen=True)
class Prediction:
    model: str
    blocks: tuple[tuple[str, int], ...]  # (block case id, times used), in first-use order
    predicted: Estimate  # seconds: the hot sum less the floor of every block but one
    measured: Estimate | None  # the whole model's median, where it was measured
    plain_sum_s: float  # the blocks' hot medians summed, no floor taken off
    floor_s: float | None  # the backend's per-call floor, where measured
    cold: Estimate | None = None  # the same rule over the blocks' cold twins, where every one was timed
    cold_absent: str = ""  # why there is no cold sum

    @property
    def plain_error(self) -> float | None:
        return self.plain_sum_s / self.measured.value - 1 if self.measured else None

    @property
    def error(self) -> float | None:
        """Predicted over measured, minus 1 (+0.1: the sum is 10% above the measured model)."""
        return self.predicted.value / self.measured.value - 1 if self.measured else None

    @property
    def cold_error(self) -> float | None:
        return self.cold.value / self.measured.value - 1 if self.measured and self.cold else None

    @property
    def in_bracket(self) -> bool | None:
        """The measured model between its hot and its cold sum (None: one of them is missing)."""
        if not (self.measured and self.cold):
            return None
        low, high = sorted((self.predicted.value, self.cold.value))
        return low <= self.measured.value <= high


def _floored_sum(counts: dict[str, int], floor_id: str | None, table: dict[str, Measured], interval: bool) -> Estimate:
    """The blocks' medians summed with their counts, less the floor of every block but one."""
    ids = list(counts)
    weights = np.array([counts[b] for b in ids], dtype=float)
    floor = _ok(table, floor_id) if floor_id else None
    if floor is not None:  # the floor is one more sample set, counted minus (blocks - 1) times
        ids, weights = [*ids, floor_id], np.append(weights, 1.0 - weights.sum())
    sets = [table[b] for b in ids]
    medians = [m.median_s for m in sets]
    if not interval:
        return Estimate(float(np.dot(weights, medians)))

    def statistic(meds: list[np.ndarray]) -> np.ndarray:
        return sum(w * m for w, m in zip(weights, meds, strict=True))

    return stats.of_medians([m.samples for m in sets], medians, statistic)


def _cold(counts: dict[str, int], floor_id: str | None, table: dict[str, Measured], interval: bool):
    """The cold sum and '' where every block's cold twin was timed ok; else None and why not."""
    cold = {cold_id(b): n for b, n in counts.items()}
    missing = [b for b in cold if _ok(table, b) is None]
    if not missing:
        return _floored_sum(cold, floor_id, table, interval), ""
    if not any(is_cold(b) for b in table):
        return None, NO_COLD
    first = table.get(missing[0], Measured(missing[0], status="missing"))
    return None, f"{len(missing)} block(s) without an ok cold result, e.g. {first.why_missing()}"


def predict_blocks(
    model: BlockSum, floor_id: str | None, table: dict[str, Measured], interval: bool = True
) -> Prediction:
    """The hot and cold sums of the blocks' medians (with bootstrap intervals) and the measured model, if any."""
    counts = dict(model.blocks)
    missing = [b for b in counts if _ok(table, b) is None]
    if missing:
        first = table.get(missing[0], Measured(missing[0], status="missing"))
        raise OpbenchError(
            f"{model.model}: {len(missing)} block(s) without an ok result for this device/backend, e.g. "
            f"{first.why_missing()}; measure the lookup table there"
        )
    predicted = _floored_sum(counts, floor_id, table, interval)
    cold, cold_absent = _cold(counts, floor_id, table, interval)
    plain = float(sum(counts[b] * table[b].median_s for b in counts))
    whole = _ok(table, model.case)
    measured = stats.median(whole.samples, whole.median_s) if whole and interval else None
    if whole and not interval:
        measured = Estimate(whole.median_s)
    floor = _ok(table, floor_id) if floor_id else None
    floor_s = floor.median_s if floor is not None else None
    return Prediction(model.model, model.blocks, predicted, measured, plain, floor_s, cold, cold_absent)


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


COLUMNS = ["device", "backend", "model", "family", "predicted_ms", "measured_ms", "error", "plain_sum_ms",
           "plain_error", "floor_ms", "cold_ms", "cold_error", "scaled_ms", "scaled_error", "corrected_ms",
           "corrected_error", "corrected_from", "in_bracket", "weight_mb", "block_count", *ABSENT]  # fmt: skip


def validation(tables: dict[tuple[str, str], dict[str, Measured]], extra: Predictions) -> pd.DataFrame:
    """One row per model measured whole and from blocks on a (device, backend): the hot, cold, scaled and corrected
    predictions against measured, each with its error (the scaled and corrected ones cross-validated by family)."""
    frames = [_target_rows(device, backend, table, extra) for (device, backend), table in tables.items()]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True)[COLUMNS] if frames else pd.DataFrame(columns=COLUMNS)


def _target_rows(device: str, backend: str, table: dict[str, Measured], extra: Predictions) -> pd.DataFrame:
    rows = []
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
             "floor_ms": None if p.floor_s is None else p.floor_s * 1e3,
             "cold_ms": p.cold.value * 1e3 if p.cold else None, "cold_error": p.cold_error,
             "in_bracket": p.in_bracket, "weight_mb": model.weight_bytes / 1e6,
             "block_count": sum(n for _, n in model.blocks), "cold_absent": p.cold_absent}
        )  # fmt: skip
    frame = pd.DataFrame(rows)
    return frame if frame.empty else _corrected(frame)


def _corrected(frame: pd.DataFrame) -> pd.DataFrame:
    """The target's scaled (from the hot sums) and corrected predictions (from the cold sums where every model has
    one), each cross-validated (opbench.lookup.gap)."""
    base = "cold" if frame["cold_ms"].notna().all() else "hot"
    frame = frame.assign(corrected_from=base)
    for form, form_base in gap_forms(base):
        rows = _gap_rows(frame, form_base)
        absent = "" if (rows["sum_s"] > 0).all() else f"a {form_base} sum at or below zero (the floor exceeds a block)"
        found = gap.cross_validate(rows, form) if not absent else gap.CrossValidated(pd.Series(dtype=float), absent)
        predicted_ms = frame["model"].map(found.predicted_s) * 1e3
        frame = frame.assign(**{f"{form}_ms": predicted_ms, f"{form}_error": predicted_ms / frame["measured_ms"] - 1,
                                f"{form}_absent": found.absent})  # fmt: skip
    return frame


def _gap_rows(frame: pd.DataFrame, base: str) -> pd.DataFrame:
    """The validation rows as a gap fit reads them (columns gap.ROWS), the `base` predictor's sum as the sum."""
    column = "cold_ms" if base == "cold" else "predicted_ms"
    return pd.DataFrame(
        {"model": frame["model"], "family": frame["family"], "sum_s": frame[column] / 1e3,
         "weight_bytes": frame["weight_mb"] * 1e6, "block_count": frame["block_count"],
         "measured_s": frame["measured_ms"] / 1e3}
    )  # fmt: skip


SCORES = ["models", "within_10pct", "within_5pct", "rmspe", "mean_error"]  # per predictor, in the summary


def _scores(errors: pd.Series, prefix: str) -> dict:
    e = errors.dropna().astype(float)
    if e.empty:
        return {f"{prefix}models": 0}
    return {f"{prefix}models": len(e), f"{prefix}within_10pct": float((e.abs() <= 0.10).mean()),
            f"{prefix}within_5pct": float((e.abs() <= 0.05).mean()), f"{prefix}rmspe": float(np.sqrt((e**2).mean())),
            f"{prefix}mean_error": float(e.mean())}  # fmt: skip


def _reason(column: pd.Series) -> str:
    return next((r for r in column if isinstance(r, str) and r), "")


def summary(table: pd.DataFrame, by: Sequence[str] = ("device", "backend")) -> pd.DataFrame:
    """Per group, for each predictor (hot, cold, scaled, corrected): models validated, share within +-10% and +-5%,
    RMSPE, mean error (the bias: negative where the whole runs slower than its parts, caches and memory; positive where
    the backend fuses across block boundaries); the plain hot sum's share within +-10%; how many models fall
    inside their hot-cold bracket; the best predictor (lowest RMSPE); why a predictor is absent."""
    scored = [f"{prefix}{c}" for prefix in PREDICTORS.values() for c in SCORES]
    columns = [*by, *scored, "plain_within_10pct", "bracketed", "bracket_models", "best", *ABSENT]
    if table.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, group in table.groupby(list(by), sort=False):
        row = dict(zip(by, key, strict=True))
        for prefix in PREDICTORS.values():
            row |= _scores(group[f"{prefix}error"], prefix)
        row["plain_within_10pct"] = float((group["plain_error"].abs() <= 0.10).mean())
        bracket = group["in_bracket"].dropna()
        row |= {"bracketed": int(bracket.astype(bool).sum()), "bracket_models": len(bracket)}
        row["best"] = best(row)
        row |= {column: _reason(group[column]) for column in ABSENT}
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=columns)


def scores_of(row: dict, name: str) -> dict:
    """One predictor's scores from a summary row, without its prefix; `validated`: how many models, `absent`: why
    none (or '')."""
    prefix = PREDICTORS[name]
    found = {c: row.get(f"{prefix}{c}") for c in SCORES[1:]}
    return {"validated": int(row.get(f"{prefix}{SCORES[0]}") or 0), **found, "absent": row.get(f"{name}_absent", "")}


def best(scores: dict) -> str:
    """The predictor with the lowest RMSPE over its validated models (the simpler one on a tie)."""
    present = [n for n, prefix in PREDICTORS.items() if scores.get(f"{prefix}models", 0)]
    return min(present, key=lambda n: scores[f"{PREDICTORS[n]}rmspe"]) if present else ""


def best_predictor(rows: pd.DataFrame) -> gap.Predictor:
    """For one target's validation rows: the predictor with the lowest cross-validated RMSPE, a gap model (scaled,
    corrected) fitted again on every validated model for use on networks outside the zoo; the raw hot sum where no
    model was validated."""
    if rows.empty:
        return gap.RAW_HOT
    scores = summary(rows).iloc[0].to_dict()
    name = scores["best"]
    chosen = scores_of(scores, name)
    base = dict(gap_forms(rows["corrected_from"].iloc[0])).get(name)
    fitted = gap.fit(_gap_rows(rows, base), name) if base else None
    cold = name == "cold" or base == "cold"
    return gap.Predictor(name, cold, fitted, chosen["rmspe"], chosen["validated"])
