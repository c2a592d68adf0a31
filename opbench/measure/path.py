"""Build, verify against eager, time: the one path every backend goes through.

A prepared case is run once and compared with eager PyTorch on the same input before anything is
timed; a wrong artifact is never timed.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from opbench.backends.base import Backend, Prepared, RunConfig
from opbench.case import Case
from opbench.errors import UnsupportedCase, error_text
from opbench.measure import cold
from opbench.results import Check, ColdWeights, Result, Stats

# (atol, rtol): passes when max |out - ref| <= atol + rtol * max |ref|
TOLERANCES: dict[str, tuple[float, float]] = {
    "float32": (1e-4, 1e-4),
    "float16": (1e-2, 1e-2),
    "bfloat16": (3e-2, 3e-2),
}

Status = Literal["ok", "unsupported", "failed"]


@dataclass
class Outcome:
    status: Status
    reason: str = ""
    check: Check | None = None
    prepared: Prepared | None = None
    weights: ColdWeights | None = None  # a cold case's copies (opbench.measure.cold)


@dataclass(frozen=True)
class Preparation:
    """What a case's first preparation in the process cost and noted (export time, cache hit, info such as a repaired
    cache entry): recorded with its result, though every pass times an instance prepared afresh."""

    export_s: float
    cache_hit: bool
    info: dict

    @classmethod
    def of(cls, prepared: Prepared) -> Preparation:
        return cls(prepared.export_s, prepared.cache_hit, prepared.info)

    def onto(self, outcome: Outcome) -> Outcome:
        """The outcome of a later pass, recorded with the first preparation's costs and notes."""
        if outcome.prepared is None:
            return outcome
        prepared = dataclasses.replace(
            outcome.prepared, export_s=self.export_s, cache_hit=self.cache_hit, info=self.info
        )
        return dataclasses.replace(outcome, prepared=prepared)


@functools.cache
def reference(case: Case) -> np.ndarray:
    """Eager PyTorch's output for the case's example input, kept for the run: every backend checks against it, and
    the whole models run backend by backend (an output is at most a few MB; building a model can take a second)."""
    with torch.inference_mode():
        return case.build()(case.example_input()).numpy()


def check(case: Case, prepared: Prepared, precision: str) -> Check:
    expected = reference(case)
    got = np.asarray(prepared.infer(), dtype=np.float32).reshape(expected.shape)
    atol, rtol = TOLERANCES[precision]
    tolerance = atol + rtol * float(np.abs(expected).max())
    err = float(np.abs(got - expected).max())
    return Check(err, tolerance, bool(err <= tolerance))


def nondeterminism(case: Case) -> str | None:
    """Why no backend can be checked against the case, when eager PyTorch answers the same input twice differently
    (dropout or noise left on); None when it answers the same. Asked only after a check failed."""
    module, x = case.build(), case.example_input()
    with torch.inference_mode():
        first, second = module(x), module(x)
    atol, rtol = TOLERANCES["float32"]
    if torch.allclose(first, second, atol=atol, rtol=rtol, equal_nan=True):
        return None
    return (
        f"case {case.id} is not deterministic: eager PyTorch answers the same input twice differently (by up to "
        f"{float((first - second).abs().max()):.3g}; dropout or randomness left on?), so no backend can be checked"
    )


def prepare(case: Case, backend: Backend, config: RunConfig) -> Outcome:
    """Prepare the case on the backend and check it against eager: ok (ready to time), unsupported or failed.

    Never raises for a problem of the case on this backend: an exporter's refusal is `unsupported`; any other
    error while preparing or checking is `failed` with the error as its reason (nothing is counted ok), and so is a
    case that cannot be built or run in eager (Case.problem) or that is not deterministic, named as such.
    A cold case is its hot twin prepared and checked once per copy, timed in rotation (prepare_cold).
    """
    if case.problem:
        return Outcome("failed", case.problem)
    if case.weights == "cold":
        return prepare_cold(case, backend, config)
    try:
        prepared = backend.prepare(case, config)
    except UnsupportedCase as exc:
        return Outcome("unsupported", str(exc))
    except Exception as exc:
        return Outcome("failed", f"{backend.name} could not prepare the case: {error_text(exc)}")
    try:
        result = check(case, prepared, backend.precision)
    except Exception as exc:
        return Outcome("failed", f"{backend.name} failed on its first run: {error_text(exc)}", prepared=prepared)
    if not result.passed:
        reason = (
            f"{backend.name} output differs from torch-eager: max abs error {result.max_abs_err:.3g} "
            f"> tolerance {result.tolerance:.3g} ({backend.precision})"
        )
        return Outcome("failed", nondeterminism(case) or reason, result, prepared)
    return Outcome("ok", check=result, prepared=prepared)


def prepare_cold(case: Case, backend: Backend, config: RunConfig, llc: cold.LastLevelCache | None = None) -> Outcome:
    """The case's hot twin prepared and checked cold.copies_needed times, as one rotation (opbench.measure.cold);
    the first copy that is not ok is the outcome, its copy named. `llc`: the cache to size for (default: this
    machine's)."""
    llc = llc or cold.last_level_cache()
    weight_bytes = case.costs.weight_bytes
    copies = cold.copies_needed(weight_bytes, llc.bytes)
    start, made = time.perf_counter(), []
    for i in range(copies):
        outcome = prepare(case.hot, backend, dataclasses.replace(config, copy=i))
        if outcome.status != "ok" or outcome.prepared is None or outcome.check is None:
            reason = f"copy {i + 1} of {copies} (weights cold): {outcome.reason}" if i else outcome.reason
            return Outcome(outcome.status, reason, outcome.check, outcome.prepared)
        made.append(outcome)
    weights = ColdWeights(copies, weight_bytes, llc.bytes, llc.source, round(time.perf_counter() - start, 4))
    worst = max((o.check for o in made), key=lambda c: c.max_abs_err)
    return Outcome("ok", check=worst, prepared=cold.rotation([o.prepared for o in made]), weights=weights)


def time_pass(outcome: Outcome, backend: Backend, timer: Callable[[Callable[[], object]], object]) -> Outcome:
    """Hand a checked case's bound call to the timer (pytest-benchmark), inside its context; once per pass.
    The outcome again, or `failed` with the error when the backend fails while timed."""
    if outcome.status != "ok" or outcome.prepared is None:
        raise ValueError(f"only a checked case is timed, not a {outcome.status} one")
    try:
        with outcome.prepared.context():
            timer(outcome.prepared.run)
    except Exception as exc:
        return Outcome(
            "failed", f"{backend.name} failed while timed: {error_text(exc)}", outcome.check, outcome.prepared
        )
    return outcome


def measure(
    case: Case, backend: Backend, config: RunConfig, timer: Callable[[Callable[[], object]], object]
) -> Outcome:
    """Prepare, check, and time once: the whole path for one (case, backend)."""
    outcome = prepare(case, backend, config)
    return time_pass(outcome, backend, timer) if outcome.status == "ok" else outcome


def to_result(
    case: Case, backend: Backend, outcome: Outcome, config: RunConfig, stats: Stats | None, profile: dict | None
) -> Result:
    """The result record of one measured (case, backend): what the measurement found, how, and its statistics."""
    prepared = outcome.prepared
    return Result.for_case(
        case,
        backend.name,
        status=outcome.status,
        reason=outcome.reason,
        backend_options=backend.options(),
        backend_versions=backend.versions(),
        threads=config.threads,
        precision=backend.precision,
        export_s=prepared.export_s if prepared else None,
        cache_hit=prepared.cache_hit if prepared else None,
        info=prepared.info if prepared else {},
        check=outcome.check,
        stats=stats,
        profile=profile,
        weights=outcome.weights,
    )
