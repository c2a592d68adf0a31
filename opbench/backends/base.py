"""The one small protocol every backend implements, and what a prepared case looks like."""

from __future__ import annotations

import contextlib
import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from opbench.cache import ArtifactCache
from opbench.case import Case
from opbench.errors import ProfilerUnavailable

if TYPE_CHECKING:
    from opbench.profile import OpRow


@dataclass
class Prepared:
    """A case made ready on one backend, inputs and outputs bound.

    `run` is what the timer calls and does nothing else; `infer` runs once and returns the output as
    numpy for the check against eager; `context` is entered around timing (torch's inference_mode).
    `export_s` is what the backend charged up front in this process (export on a cache miss, plus a
    compile step at load time where the backend has one), never part of latency; `info` is anything
    else a result should record about how the case was prepared (plain JSON values: delegated nodes,
    the precision a library actually chose, compile time...).
    """

    run: Callable[[], object]
    infer: Callable[[], np.ndarray]
    context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    export_s: float = 0.0
    cache_hit: bool = False
    info: dict = field(default_factory=dict)


def package_version(package: str) -> str:
    """The installed distribution's version, or 'missing'."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


@dataclass(frozen=True)
class RunConfig:
    threads: int = 1
    cache: ArtifactCache = field(default_factory=ArtifactCache)


class Backend(ABC):
    """One compiler/runtime on one kind of processor."""

    name: str
    precision: str = "float32"
    description: str = ""

    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run here (missing package, wrong OS), or None when it can."""
        return None

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the libraries that export and run; recorded and part of the cache key."""

    def options(self) -> dict:
        """Backend options recorded with every result and part of the cache key."""
        return {}

    @abstractmethod
    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        """Export (cached) and load the case; raise UnsupportedCase when the exporter cannot."""

    def profile(self, case: Case, config: RunConfig, runs: int) -> list[OpRow]:
        """The case's operators under the runtime's own profiler, mean seconds per inference over `runs` runs
        after a warm-up, each with the module path it came from where the runtime keeps one (opbench.profile).

        A pass of its own: a separately loaded session / compiled model, never the one that is timed.
        Raises ProfilerUnavailable with the reason when this backend has no usable profiler here.
        """
        raise ProfilerUnavailable(f"{self.name} has no per-operator profiler in opbench")
