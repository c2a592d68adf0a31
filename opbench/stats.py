"""Confidence intervals for medians and for ratios of medians, by bootstrap (scipy.stats.bootstrap).

Ratios between two cases are computed from their samples, never from two single numbers; a result
that has only a median (an imported device number) gives a point estimate with no interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0


@dataclass(frozen=True)
class Estimate:
    """A statistic with its confidence interval; low/high are None for a point estimate."""

    value: float
    low: float | None = None
    high: float | None = None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def above(self, threshold: float) -> bool:
        """The whole interval lies above the threshold (a point estimate only compares its value)."""
        return (self.low if self.has_interval else self.value) > threshold

    def below(self, threshold: float) -> bool:
        return (self.high if self.has_interval else self.value) < threshold

    def clearly_below(self, other: Estimate) -> bool:
        """This interval lies wholly below the other's (point estimates compare their values)."""
        return self.below(other.low if other.has_interval else other.value)


def _median_ratio(candidate: np.ndarray, baseline: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(candidate, axis=axis) / np.median(baseline, axis=axis)


def usable(samples: Sequence[float] | None) -> np.ndarray | None:
    data = np.asarray(samples if samples is not None else [], dtype=float)
    return data if data.size >= 2 else None


def median(samples: Sequence[float] | None, median_s: float | None = None) -> Estimate:
    """Median with a bootstrap interval; a point estimate from median_s when there are no samples."""
    data = usable(samples)
    if data is None:
        if median_s is None:
            raise ValueError("a median needs samples or a median value")
        return Estimate(float(median_s))
    ci = stats.bootstrap(
        (data,), np.median, confidence_level=CONFIDENCE, n_resamples=RESAMPLES, method="percentile", rng=SEED
    ).confidence_interval
    return Estimate(float(np.median(data)), float(ci.low), float(ci.high))


def ratio(
    candidate: Sequence[float] | None,
    baseline: Sequence[float] | None,
    candidate_median: float | None = None,
    baseline_median: float | None = None,
) -> Estimate:
    """median(candidate) / median(baseline) with a bootstrap interval over both (independent) sample sets.

    Without samples on either side, the ratio of the given medians as a point estimate.
    """
    a, b = usable(candidate), usable(baseline)
    if a is None or b is None:
        top = float(np.median(a)) if a is not None else candidate_median
        bottom = float(np.median(b)) if b is not None else baseline_median
        if top is None or bottom is None:
            raise ValueError("a ratio needs samples or medians on both sides")
        return Estimate(top / bottom)
    ci = stats.bootstrap(
        (a, b),
        _median_ratio,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        method="percentile",
        paired=False,
        vectorized=True,
        rng=SEED,
    ).confidence_interval
    return Estimate(float(_median_ratio(a, b)), float(ci.low), float(ci.high))


def of_medians(
    samples: Sequence[Sequence[float] | None],
    medians: Sequence[float | None],
    statistic: Callable[[list[np.ndarray]], np.ndarray],
) -> Estimate:
    """A statistic of several independent sample sets' medians, with one joint bootstrap interval.

    `statistic` receives the medians (one array per sample set, broadcastable) and returns the value, e.g. the
    geometric mean of several ratios of medians. Sets shared by several ratios (a common baseline) are drawn
    once per resample, so their correlation is kept. If any set has no samples, the statistic of the given
    medians is a point estimate.
    """
    data = [usable(s) for s in samples]
    if any(d is None for d in data):
        values = [float(np.median(d)) if d is not None else m for d, m in zip(data, medians, strict=True)]
        if any(v is None for v in values):
            raise ValueError("a statistic of medians needs samples or a median for every set")
        return Estimate(float(statistic([np.asarray(v) for v in values])))

    def on_resamples(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic([np.median(r, axis=axis) for r in resampled])

    ci = stats.bootstrap(
        tuple(data),
        on_resamples,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        method="percentile",
        paired=False,
        vectorized=True,
        batch=500,
        rng=SEED,
    ).confidence_interval
    return Estimate(float(on_resamples(*data)), float(ci.low), float(ci.high))
