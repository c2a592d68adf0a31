"""The one small protocol every backend implements, and what a prepared case looks like."""

from __future__ import annotations

import contextlib
import importlib.metadata
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from opbench.cache import Artifact, ArtifactCache
from opbench.case import Case
from opbench.errors import ProfilerUnavailable

if TYPE_CHECKING:
    from opbench.attribution import OpRow

GPU_PROFILE_REASON = (
    "per-operator GPU profiles are not implemented: opbench's profilers attribute CPU-side events, and no GPU was at "
    "hand to verify kernel attribution (torch.profiler CUDA activity, ORT's CUDA/TensorRT provider events)"
)


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
    # the case will be profiled after it is timed: a backend whose profiler needs something made at export time
    # (ExecuTorch's ETRecord) makes it in the one export instead of exporting twice
    profiled: bool = False
    # which of a cold case's copies is being prepared (opbench.measure.cold): a backend that keeps what it prepared
    # in the process keys it by this too, so that every copy holds weights of its own
    copy: int = 0


class Backend(ABC):
    """One compiler/runtime on one kind of processor."""

    name: str
    precision: str = "float32"

    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run here (missing package, wrong OS), or None when it can."""
        return None

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the libraries that export and run; recorded and part of the cache key."""

    def options(self) -> dict:
        """Backend options recorded with every result and part of the cache key."""
        return {}

    def export(self, case: Case, config: RunConfig) -> None:
        """Write what `prepare` would write to disk first (the cached export, a compiler's own caches), load nothing.
        A timed run does this for every selected case in worker processes before the first is timed
        (opbench.measure.export_ahead).
        Raises UnsupportedCase as prepare would; a backend with nothing to write does nothing.
        """
        return None

    @abstractmethod
    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        """Export (cached) and load the case; raise UnsupportedCase when the exporter cannot."""

    def profile(self, case: Case, config: RunConfig, runs: int) -> list[OpRow]:
        """The case's operators under the runtime's own profiler, mean seconds per inference over `runs` runs
        after a warm-up, each with the module path it came from where the runtime keeps one (opbench.attribution).

        A pass of its own: a separately loaded session / compiled model, never the one that is timed.
        Raises ProfilerUnavailable with the reason when this backend has no usable profiler here.
        """
        raise ProfilerUnavailable(f"{self.name} has no per-operator profiler in opbench")


@dataclass(frozen=True)
class DeviceUnits:
    """How a format's packages are timed on another device: the backend names that stand for each setting of the
    device's runtime (Core ML's compute units), and the spellings measuring tools use for those settings."""

    by_backend: Mapping[str, str]  # backend name -> the setting it stands for
    spellings: Mapping[str, str]  # a tool's spelling, lower-case without spaces, dashes or underscores -> setting
    default_backend: str

    def parse(self, text: str) -> str | None:
        """The setting a measuring tool's spelling names, or None."""
        return self.spellings.get(re.sub(r"[\s_-]", "", text.lower()))

    def backend_for(self, unit: str) -> str:
        return next(name for name, u in self.by_backend.items() if u == unit)


@dataclass(frozen=True)
class ExportFormat:
    """What `opbench export` writes for another device (and `opbench import` reads back): how to get a case's cached
    artifact, how to read its input and output back, and how the device's measurements name their settings."""

    name: str
    suffix: str
    options: dict  # recorded in the manifest (and part of the artifact's cache key)
    versions: dict[str, str]
    artifact: Callable[[Case, ArtifactCache], Artifact] = field(repr=False)
    describe: Callable[[Path], dict] = field(repr=False)
    units: DeviceUnits | None = None  # None: the runtime that measured is named freely with --backend
    # files written beside the manifest, each made from the manifest (a script that measures the packages on the device)
    device_files: Mapping[str, Callable[[dict], str]] = field(default_factory=dict, repr=False)
    # reads the folder of what that script brought back: (package file -> DeviceMeasurement, problems found)
    read_measured: Callable[[Path, dict], tuple[dict[str, DeviceMeasurement], list[str]]] | None = field(
        default=None, repr=False
    )


@dataclass(frozen=True)
class DeviceMeasurement:
    """One package as a device's own benchmark tool measured it: its whole-model latency, and its operators where the
    tool profiled them (rows as opbench.attribution.OpRow JSON, without module paths)."""

    mean_s: float
    backend: str  # the backend these numbers stand for on the device (litert-xnnpack: benchmark_model with XNNPACK)
    sha256: str = ""  # the device's checksum of the file it ran ("" when the tool did not record one)
    runs: int | None = None
    settings: dict = field(default_factory=dict)  # threads, warm-up runs... as the tool ran
    rows: list[dict] = field(default_factory=list)
    source: str = ""  # the files it was read from
