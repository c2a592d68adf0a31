"""Checks of the values a user gives opbench, shared by the command line and the pytest plugin, so that one option
means the same and is refused the same way wherever it is given."""

from __future__ import annotations

import math
import os

from opbench.errors import OpbenchError


def is_positive_finite(value: object) -> bool:
    """A real number above 0 that is not infinite or NaN (a duration, a ratio threshold, a test level)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def threads(value: int, option: str = "--threads") -> int:
    """Intra-op threads: at least 1 and at most the machine's cores (more only time-slices the same cores)."""
    cores = os.cpu_count() or 1
    if value < 1:
        raise OpbenchError(f"{option} must be 1 or more, got {value}")
    if value > cores:
        raise OpbenchError(f"{option} {value} is more than the {cores} cores of this machine")
    return value


def positive_finite(value: float, option: str, unit: str = "") -> float:
    """A positive finite number (seconds, milliseconds, a level): NaN, infinities, 0 and negatives are refused."""
    if not is_positive_finite(value):
        what = f" of {unit}" if unit else ""
        raise OpbenchError(f"{option} must be a positive finite number{what}, got {value}")
    return value


MAX_INPUT_MIB = 256  # a float32 input above this heads for the OOM killer once a model's activations are added


def input_shape(text: str, option: str = "--input") -> tuple[int, ...]:
    """'1x3x224x224' -> (1, 3, 224, 224); an empty shape, or a float32 input above MAX_INPUT_MIB, is refused before
    anything is built."""
    try:
        shape = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise OpbenchError(f"{option} {text!r} is not a shape like 1x3x224x224 (positive integers joined by 'x')")
    mib = math.prod(shape) * 4 / 2**20
    if mib > MAX_INPUT_MIB:
        raise OpbenchError(
            f"{option} {text} is a {mib:,.0f} MiB float32 input; inputs up to {MAX_INPUT_MIB} MiB are measured"
        )
    return shape
