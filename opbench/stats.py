"""Confidence intervals for medians, ratios and any statistic of several of them: one hierarchical bootstrap over
the passes of a run, the one place every verdict, `opbench compare` and the report get them from.

A measurement is its samples per pass (`--opbench-passes`): the passes ran minutes apart, interleaved with every
other case, so the spread between them is the machine's drift. An interval from one uninterrupted block of samples
says nothing about that drift. So a set's latency is the mean of its passes' medians (`center`), and each bootstrap
replicate first resamples the passes (with replacement), then the samples within each chosen pass. With one pass
(a schema-1 file, or --opbench-passes 1) this is the ordinary percentile bootstrap of the median.

A ratio of two sets that share a timing window (`SampleSet.window`: the members of a comparison group timed call
by call, sample i of pass k of each taken in round i of pass k) with equal pass lengths is paired: per round the
log ratio of the two adjacent calls, per pass its median, the ratio exp(mean of those medians). The machine's speed
steps between tenths of a second (block medians of one stage from -22% to +27% on an Intel Xeon, `make drift-check`)
and a step moves both calls of a round alike, so it cancels round by round; timed in blocks of their own, Obs 2's
ratio with a true value of 1.02 spread 0.85-1.27, timed call by call 0.97-1.06. Its bootstrap resamples passes,
then rounds within each chosen pass: the same rounds for both sides, by resampling the per-round log ratios. Any
other pair of sets (other windows, timed alone, unequal passes) is unpaired: center(candidate) / center(baseline),
each set resampled on its own. `Estimate.paired` says which way a ratio was measured. A case's own latency is its
center either way.

Each unpaired set's replicates are drawn once (cached) and a statistic of several is computed replicate by
replicate: a set used twice (a shared baseline) uses the same draws both times, keeping the correlation. Sets whose
passes line up (one run: pass k of every case ran in the same minutes) draw the same passes in each replicate, so
drift that moved both sides in a pass cancels, as it did in the measurement; sets from different runs draw their
passes independently. Within a pass every unpaired set draws its own samples (seeded by the samples themselves); two
sets with identical samples count as one measurement. The paired ratios of one window draw the same order statistics
of their rounds (seeded by the window), which keeps the correlation between ratios sharing a baseline positive
(a little more than the true one: the interval of a geometric mean of them errs wide, not narrow).

Every interval is the bootstrap's percentile interval expanded for the number of passes behind it (`expansion`):
with a handful of passes, resampling them covers the spread between them no wider than their range, which is too
narrow to hold the next run's value. A result with only a median (an imported device number) gives a point estimate
with no interval.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.stats

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0

Samples = Sequence[Sequence[float]] | Sequence[float]  # per pass, or one pass as a flat sequence
Passes = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class Estimate:
    """A statistic with its confidence interval; low/high are None for a point estimate.

    `passes` is the same statistic computed on each pass alone, when the passes of every sample set behind it line
    up (same run, same number of passes, two or more); empty otherwise. `paired`: every ratio behind it was paired
    round by round in a shared timing window (else some side was timed apart)."""

    value: float
    low: float | None = None
    high: float | None = None
    passes: tuple[float, ...] = field(default=(), compare=False)
    paired: bool = field(default=False, compare=False)

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high), or the value twice for a point estimate."""
        return (self.low, self.high) if self.has_interval else (self.value, self.value)  # type: ignore[return-value]

    def above(self, threshold: float) -> bool:
        """The whole interval lies above the threshold (a point estimate only compares its value)."""
        return self.bounds[0] > threshold

    def below(self, threshold: float) -> bool:
        return self.bounds[1] < threshold

    def within(self, low: float, high: float) -> bool:
        """The whole interval lies in [low, high]."""
        return low <= self.bounds[0] and self.bounds[1] <= high

    def clearly_below(self, other: Estimate) -> bool:
        """This interval lies wholly below the other's (point estimates compare their values)."""
        return self.below(other.bounds[0])

    def map(self, f: Callable[[float], float]) -> Estimate:
        """The estimate of f(statistic) for a monotone increasing f: value, interval and passes mapped alike."""
        low, high = (f(self.low), f(self.high)) if self.has_interval else (None, None)
        return Estimate(f(self.value), low, high, tuple(f(p) for p in self.passes), self.paired)


@dataclass(frozen=True)
class SampleSet:
    """One case's samples as a statistic takes them: per pass (None: a median alone), its median, and the timing
    window it shares with the cases timed round by round beside it (None: timed alone). A window names one window
    of one run: sets from two runs never share one."""

    samples: Samples | None
    median: float | None = None
    window: Hashable | None = None


def passes_of(samples: Samples | None) -> Passes:
    """The samples as a tuple of passes (a flat sequence is one pass); empty passes dropped."""
    if samples is None or len(samples) == 0:
        return ()
    if np.ndim(samples[0]) == 0:
        return (tuple(float(x) for x in samples),)
    return tuple(tuple(float(x) for x in p) for p in samples if len(p))


def usable(samples: Samples | None) -> Passes | None:
    """The one rule for samples that give an interval: two or more in all, else None (a median alone)."""
    passes = passes_of(samples)
    return passes if sum(map(len, passes)) >= 2 else None


def center(passes: Passes) -> float:
    """The latency of a sample set: the mean of its passes' medians (with one pass, its median). Each pass weighs
    the same, so a pass that ran while the machine was slower moves it by its share, no more."""
    return float(np.mean([np.median(p) for p in passes]))


def round_log_ratios(candidate: SampleSet, baseline: SampleSet) -> Passes | None:
    """Per pass, the log ratio of each round's two calls, when the two sets were timed round by round in one
    window (same window, same pass lengths, two or more rounds); else None (the ratio is unpaired)."""
    c, b = usable(candidate.samples), usable(baseline.samples)
    if candidate.window is None or candidate.window != baseline.window or c is None or b is None:
        return None
    if tuple(map(len, c)) != tuple(map(len, b)):
        return None
    return tuple(tuple(np.log(np.asarray(x) / np.asarray(y)).tolist()) for x, y in zip(c, b, strict=True))


@functools.lru_cache(maxsize=8192)
def _replicates(passes: Passes, paired: bool, key: int | None = None) -> np.ndarray:
    """RESAMPLES bootstrap replicates of center(): resample the passes, then the samples within each chosen pass.
    `paired`: the passes drawn depend only on how many there are, so every set of a run draws the same ones.
    `key` seeds the draws (default: the samples themselves); sets with one key draw the same order statistics.

    The second stage needs no drawing of samples: the median of n values resampled from a pass is the sorted pass
    at the order statistics of n uniforms, and the k-th of those is Beta(k, n+1-k) (for an even n the next one is
    U_(k) + (1 - U_(k)) * Beta(1, n-k)). So each (replicate, chosen pass) costs two Beta draws, exactly."""
    ordered = [np.sort(np.asarray(p, dtype=float)) for p in passes]
    flat = np.concatenate(ordered)
    sizes = np.array([p.size for p in ordered])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rng = np.random.default_rng([SEED, zlib.crc32(flat.tobytes()) if key is None else key])
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


def expansion(passes: int, confidence: float = CONFIDENCE) -> float:
    """How much wider than its percentile interval a bootstrap over `passes` top-level units must be to cover as a
    t interval does: Hesterberg's expanded percentile interval, sqrt(n / (n - 1)) * t(n - 1) / z (2.69 for 3
    passes, 1.58 for 5, 1.22 for 10; 1 for one pass, whose units are its many samples). Resampling three passes
    draws at most ten distinct sets of them, so the plain percentile interval is about as wide as the passes'
    range: two identical cases prepared apart differed from run to run by more than it covered."""
    if passes < 2:
        return 1.0
    q = 1 - (1 - confidence) / 2
    return float(np.sqrt(passes / (passes - 1)) * scipy.stats.t.ppf(q, passes - 1) / scipy.stats.norm.ppf(q))


def _interval(replicates: np.ndarray, value: float, passes: int, confidence: float) -> tuple[float, float]:
    """The percentile interval of the replicates, expanded about the value for the number of passes (expansion);
    on the log scale when everything is positive, so that a ratio's interval stays positive."""
    tail = (1 - confidence) / 2 * 100
    low, high = (float(b) for b in np.percentile(replicates, [tail, 100 - tail]))
    f = expansion(passes, confidence)
    if min(low, value) > 0:
        return value * (low / value) ** f, value * (high / value) ** f
    return value - f * (value - low), value + f * (high - value)


def _lined_up(data: Sequence[Passes], by_pass: bool) -> bool:
    """The sets' passes line up: measured in one run (by_pass), each with the same two or more passes."""
    counts = {len(d) for d in data}
    return by_pass and len(counts) == 1 and min(counts) >= 2


def _units(data: Sequence[Passes]) -> int:
    """The top-level units an interval rests on: the fewest passes of any set behind it."""
    return min(len(d) for d in data)


def of_medians(
    samples: Sequence[Samples | None],
    medians: Sequence[float | None],
    statistic: Callable[[list[np.ndarray]], np.ndarray],
    confidence: float = CONFIDENCE,
    by_pass: bool = True,
) -> Estimate:
    """A statistic of several sample sets' medians (a sum of block latencies, one latency), with one joint
    hierarchical bootstrap interval; ratios between sets go through of_ratios, which pairs them where it can.

    `statistic` receives the medians (one array per sample set, broadcastable) and returns the value. If any set
    has no usable samples, the statistic of the given medians is a point estimate. `by_pass`: the sets' passes line
    up (measured in the same run): when every set has the same two or more passes, each replicate draws the same
    passes for all sets, and the statistic on each pass alone is kept in Estimate.passes.
    """
    data = [usable(s) for s in samples]
    if any(d is None for d in data):
        values = [center(d) if d else m for d, m in zip(data, medians, strict=True)]
        if any(v is None for v in values):
            raise ValueError("every sample set needs samples or a median")
        return Estimate(float(statistic([np.asarray(v) for v in values])))
    lined_up = _lined_up(data, by_pass)
    value = float(statistic([np.asarray(center(d)) for d in data]))
    low, high = _interval(statistic([_replicates(d, lined_up) for d in data]), value, _units(data), confidence)
    per_pass: tuple[float, ...] = ()
    if lined_up:
        per_pass = tuple(float(statistic([np.asarray(np.median(d[k])) for d in data])) for k in range(len(data[0])))
    return Estimate(value, low, high, per_pass)


def of_ratios(
    pairs: Sequence[tuple[SampleSet, SampleSet]],
    statistic: Callable[[list[np.ndarray]], np.ndarray],
    confidence: float = CONFIDENCE,
    by_pass: bool = True,
) -> Estimate:
    """A statistic of several (candidate, baseline) ratios, e.g. their geometric mean, with one joint interval.

    `statistic` receives the ratios (one array per pair, broadcastable). A pair timed round by round in one window
    gives its paired ratio (round_log_ratios); any other its unpaired ratio of centers. Without samples on some
    side, the statistic of the centers or given medians is a point estimate. `by_pass` as in of_medians."""
    logs = [round_log_ratios(c, b) for c, b in pairs]
    sides = [(usable(c.samples), usable(b.samples)) for c, b in pairs]
    if any(d is None for side in sides for d in side):
        values = []
        for (c, b), (dc, db) in zip(pairs, sides, strict=True):
            top, bottom = (center(dc) if dc else c.median), (center(db) if db else b.median)
            if top is None or bottom is None:
                raise ValueError("every sample set needs samples or a median")
            values.append(np.asarray(top / bottom))
        return Estimate(float(statistic(values)))
    lined_up = _lined_up([d for side in sides for d in side], by_pass)
    values, replicates, per_pass = [], [], []
    for (c, _), (dc, db), log in zip(pairs, sides, logs, strict=True):
        if log is not None:
            window_key = zlib.crc32(repr(c.window).encode())
            values.append(np.asarray(np.exp(center(log))))
            replicates.append(np.exp(_replicates(log, by_pass, window_key)))
            per_pass.append([np.exp(np.median(p)) for p in log])
        else:
            values.append(np.asarray(center(dc) / center(db)))
            replicates.append(_replicates(dc, lined_up) / _replicates(db, lined_up))
            per_pass.append([np.median(x) / np.median(y) for x, y in zip(dc, db, strict=False)])
    value = float(statistic(values))
    units = _units([d for side in sides for d in side])
    low, high = _interval(statistic(replicates), value, units, confidence)
    passes: tuple[float, ...] = ()
    if lined_up:
        passes = tuple(float(statistic([np.asarray(p[k]) for p in per_pass])) for k in range(len(sides[0][0])))
    paired = all(log is not None for log in logs)
    return Estimate(value, low, high, passes, paired)


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
    windows: tuple[Hashable | None, Hashable | None] = (None, None),
) -> Estimate:
    """candidate / baseline with a joint interval over both sample sets: paired when both sides share a window
    (`windows`, one per side) with equal pass lengths, else the ratio of their centers.

    Without samples on either side, the ratio of the given medians as a point estimate."""
    pair = (SampleSet(candidate, candidate_median, windows[0]), SampleSet(baseline, baseline_median, windows[1]))
    return of_ratios([pair], lambda r: r[0], confidence, by_pass)
