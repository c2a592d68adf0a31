"""Two small models of the gap between a raw block sum and the model measured whole, from what the table knows,
each scored only by leave-one-family-out cross-validation:

    corrected: log(measured) = a + b * log(sum) + c * weight MB + d * number of blocks
    scaled:    log(measured) = a + log(hot sum)

`corrected` is fitted by least squares (numpy.linalg.lstsq) over the zoo models measured on one (device, backend),
from the cold sum where the target has cold rows for every model, the hot one otherwise; mnn-meter fitted such a
correction on 16 models. `scaled` is the hot sum times one constant per target (the mean log ratio): on ort-cpu
every zoo model ran 5-11% slower than its hot sum (Intel Xeon, EfficientNet and LeViT more), a gap one factor
carries to a family it never saw, where the four coefficients extrapolated (EfficientFormer-L7 predicted 2x).
A model's cross-validated prediction comes from a fit that saw no model of its family, so the score says how the
gap model does on a network it was not fitted to, which is what slim asks of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

FORMS = {"corrected": 4, "scaled": 1}  # a gap model's name -> the coefficients it fits (a, b, c, d; a alone)
ROWS = ["model", "family", "sum_s", "weight_bytes", "block_count", "measured_s"]  # what a fit reads, per model


def features(sum_s, weight_bytes, block_count) -> np.ndarray:
    """The regressors, one row per model: 1, log(sum), weight MB, number of blocks."""
    s, w, n = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (sum_s, weight_bytes, block_count))
    return np.column_stack([np.ones_like(s), np.log(s), w / 1e6, n])


@dataclass(frozen=True)
class Gap:
    """A fitted correction and the models it saw (tests check that a model is never scored on a fit of its own)."""

    coefficients: tuple[float, ...]
    seen: tuple[str, ...]

    def latency(self, sum_s: float, weight_bytes: float, block_count: float) -> float:
        a, b, c, d = self.coefficients
        return math.exp(a + b * math.log(sum_s) + c * weight_bytes / 1e6 + d * block_count)


def fit(rows: pd.DataFrame, form: str = "corrected") -> Gap:
    """Least squares of log(measured) on the form's features, over `rows` (columns ROWS); `scaled` keeps b = 1 and
    c = d = 0, so its a is the mean of log(measured / sum)."""
    measured = np.log(rows["measured_s"].to_numpy(dtype=float))
    x = features(rows["sum_s"], rows["weight_bytes"], rows["block_count"])
    if form == "scaled":
        coefficients = (float(np.mean(measured - x[:, 1])), 1.0, 0.0, 0.0)
    else:
        coefficients, *_ = np.linalg.lstsq(x, measured, rcond=None)
    return Gap(tuple(float(c) for c in coefficients), tuple(rows["model"]))


@dataclass(frozen=True)
class CrossValidated:
    """Each model's corrected prediction from a fit that saw no model of its family; or why there is none."""

    predicted_s: pd.Series  # model -> seconds (empty when absent)
    absent: str = ""


def cross_validate(rows: pd.DataFrame, form: str = "corrected") -> CrossValidated:
    """Leave one family out: for each family, fit the form on every other family's models, predict that family's."""
    coefficients = FORMS[form]
    families = rows["family"].unique()
    if len(families) < 2:
        return CrossValidated(pd.Series(dtype=float), f"too few families to cross-validate: {len(families)}")
    predicted = {}
    for family in families:
        held_out, rest = rows[rows["family"] == family], rows[rows["family"] != family]
        if len(rest) <= coefficients:
            return CrossValidated(
                pd.Series(dtype=float),
                f"too few models outside {family} to fit {coefficients} coefficient(s): {len(rest)} "
                f"(at least {coefficients + 1})",
            )
        gap = fit(rest, form)
        for r in held_out.itertuples():
            predicted[r.model] = gap.latency(r.sum_s, r.weight_bytes, r.block_count)
    return CrossValidated(pd.Series(predicted, dtype=float))


@dataclass(frozen=True)
class Predictor:
    """What slim searches with: the hot or the cold sum, and a gap model fitted on every validated model (or none:
    the raw sum), with the cross-validated score that chose it."""

    name: str  # hot, cold, scaled or corrected
    cold: bool
    gap: Gap | None = None
    rmspe: float | None = None  # over `validated` zoo models; None: not validated
    validated: int = 0

    def latency(self, sum_s: float, weight_bytes: float, block_count: float) -> float:
        return sum_s if self.gap is None else self.gap.latency(sum_s, weight_bytes, block_count)


RAW_HOT = Predictor("hot", cold=False)
