"""Confidence intervals for medians, ratios of medians and any statistic of several medians: one hierarchical
bootstrap over the passes of a run, the one place every verdict, `opbench compare` and the report get them from.

A measurement is its samples per pass (`--opbench-passes`): the passes ran minutes apart, interleaved with every
other case, so the spread between them is the machine's drift. An interval from one uninterrupted block of samples
says nothing about that drift. So a set's latency is the mean of its passes' medians (`center`), and each bootstrap
replicate first resamples the passes (with replacement), then the samples within each chosen pass. With one pass
(a schema-1 file, or --opbench-passes 1) this is the ordinary percentile bootstrap of the median.

Each set's replicates are drawn once (cached) and a statistic of several sets is computed replicate by replicate: a
ratio pairs replicate i of the candidate with replicate i of the baseline, and a set used twice (a shared baseline)
uses the same draws both times, keeping the correlation. Sets whose passes line up (one run: pass k of every case ran
in the same minutes) draw the same passes in each replicate, so drift that moved both sides of a ratio in a pass
cancels, as it did in the measurement, and the interval carries how much the ratio itself moves from pass to pass;
sets from different runs draw their passes independently. Within a pass, every set draws its own samples (seeded by
the samples themselves). Two sets with identical samples count as one measurement.

A result with only a median (an imported device number) gives a point estimate with no interval.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0

Samples = Sequence[Sequence[float]] | Sequence[float]  # per pass, or one pass as a flat sequence


@dataclass(frozen=True)
class Estimate:
    """A statistic with its confidence interval; low/high are None for a point estimate.

    `passes` is the same statistic computed on each pass alone, when the passes of every sample set behind it line
    up (same run, same number of passes, two or more); empty otherwise."""

    value: float
    low: float | None = None
    high: float | None = None
    passes: tuple[float, ...] = field(default=(), compare=False)

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

    def map(self, f: Callable[[float], float]) -> Estimate:
        """The estimate of f(statistic) for a monotone increasing f: value, interval and passes mapped alike."""
        low, high = (f(self.low), f(self.high)) if self.has_interval else (None, None)
        return Estimate(f(self.value), low, high, tuple(f(p) for p in self.passes))


def passes_of(samples: Samples | None) -> tuple[tuple[float, ...], ...]:
    """The samples as a tuple of passes (a flat sequence is one pass); empty passes dropped."""
    if samples is None or len(samples) == 0:
        return ()
    if np.ndim(samples[0]) == 0:
        return (tuple(float(x) for x in samples),)
    return tuple(tuple(float(x) for x in p) for p in samples if len(p))


def usable(samples: Samples | None) -> tuple[tuple[float, ...], ...] | None:
    """The one rule for samples that give an interval: two or more in all, else None (a median alone)."""
    passes = passes_of(samples)
    return passes if sum(map(len, passes)) >= 2 else None


def center(passes: tuple[tuple[float, ...], ...]) -> float:
    """The latency of a sample set: the mean of its passes' medians (with one pass, its median). Each pass weighs
    the same, so a pass that ran while the machine was slower moves it by its share, no more."""
    return float(np.mean([np.median(p) for p in passes]))


@functools.lru_cache(maxsize=8192)
def _replicates(passes: tuple[tuple[float, ...], ...], paired: bool) -> np.ndarray:
    """RESAMPLES bootstrap replicates of center(): resample the passes, then the samples within each chosen pass.
    `paired`: the passes drawn depend only on how many there are, so every set of a run draws the same ones.

    The second stage needs no drawing of samples: the median of n values resampled from a pass is the sorted pass
    at the order statistics of n uniforms, and the k-th of those is Beta(k, n+1-k) (for an even n the next one is
    U_(k) + (1 - U_(k)) * Beta(1, n-k)). So each (replicate, chosen pass) costs two Beta draws, exactly."""
    ordered = [np.sort(np.asarray(p, dtype=float)) for p in passes]
    flat = np.concatenate(ordered)
    sizes = np.array([p.size for p in ordered])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rng = np.random.default_rng([SEED, zlib.crc32(flat.tobytes())])
    draw_passes = np.random.default_rng([SEED, len(passes)]) if paired else rng
    chosen = draw_passes.integers(0, len(passes), size=(RESAMPLES, len(passes)))
    n, start = sizes[chosen], offsets[chosen]
    k = (n + 1) // 2  # the lower median's rank (1-based)
    u = rng.beta(k, n + 1 - k)
    v = u + (1 - u) * rng.beta(1, np.maximum(n - k, 1))

    def at(q: np.ndarray) -> np.ndarray:
        return flat[start + np.minimum((q * n).astype(np.int64), n - 1)]

    medians = np.where(n % 2 == 1, at(u), (at(u) + at(v)) / 2)
    return medians.mean(axis=1)


def _interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


def of_medians(
    samples: Sequence[Samples | None],
    medians: Sequence[float | None],
    statistic: Callable[[list[np.ndarray]], np.ndarray],
    confidence: float = CONFIDENCE,
    by_pass: bool = True,
) -> Estimate:
    """A statistic of several independent sample sets' medians, with one joint hierarchical bootstrap interval.

    `statistic` receives the medians (one array per sample set, broadcastable) and returns the value, e.g. the
    geometric mean of several ratios of medians. If any set has no usable samples, the statistic of the given
    medians is a point estimate. `by_pass`: the sets' passes line up (measured in the same run): when every set has
    the same two or more passes, each replicate draws the same passes for all sets, and the statistic on each pass
    alone is kept in Estimate.passes.
    """
    data = [usable(s) for s in samples]
    if any(d is None for d in data):
        values = [center(d) if d else m for d, m in zip(data, medians, strict=True)]
        if any(v is None for v in values):
            raise ValueError("every sample set needs samples or a median")
        return Estimate(float(statistic([np.asarray(v) for v in values])))
    counts = {len(d) for d in data}
    paired = by_pass and len(counts) == 1 and min(counts) >= 2
    value = float(statistic([np.asarray(center(d)) for d in data]))
    low, high = _interval(statistic([_replicates(d, paired) for d in data]), confidence)
    per_pass: tuple[float, ...] = ()
    if paired:
        per_pass = tuple(float(statistic([np.asarray(np.median(d[k])) for d in data])) for k in range(min(counts)))
    return Estimate(value, low, high, per_pass)


def median(samples: Samples | None, median_s: float | None = None, confidence: float = CONFIDENCE) -> Estimate:
    """The set's latency (center: its median, with passes the mean of their medians) with its interval; a point
    estimate from median_s without samples."""
    return of_medians([samples], [median_s], lambda m: m[0], confidence)


def ratio(
    candidate: Samples | None,
    baseline: Samples | None,
    candidate_median: float | None = None,
    baseline_median: float | None = None,
    confidence: float = CONFIDENCE,
    by_pass: bool = True,
) -> Estimate:
    """median(candidate) / median(baseline) with a joint interval over both (independent) sample sets.

    Without samples on either side, the ratio of the given medians as a point estimate."""
    medians = [candidate_median, baseline_median]
    return of_medians([candidate, baseline], medians, lambda m: m[0] / m[1], confidence, by_pass)
