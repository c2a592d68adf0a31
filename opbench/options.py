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
