"""The backend registry: names to backends, with why one cannot run here."""

from __future__ import annotations

from collections.abc import Callable

from opbench.backends import gpu
from opbench.backends.base import Backend, Prepared, RunConfig
from opbench.backends.coreml import CoreML
from opbench.backends.executorch_xnnpack import ExecuTorchXnnpack
from opbench.backends.onnxruntime_cpu import OnnxRuntimeCpu
from opbench.backends.openvino_cpu import OpenVinoCpu
from opbench.backends.torch_eager import TorchEager
from opbench.backends.torch_inductor import TorchInductor
from opbench.errors import BackendUnavailable, OpbenchError

# Optional backends import their libraries only when they prepare a case (or check that they can).
REGISTRY: dict[str, Callable[[], Backend]] = {
    "torch-eager": TorchEager,
    "ort-cpu": lambda: OnnxRuntimeCpu("ort-cpu", "all"),
    "ort-cpu-noopt": lambda: OnnxRuntimeCpu("ort-cpu-noopt", "none"),
    # Core ML times predictions on macOS only; elsewhere `opbench export --backend coreml` writes the packages
    "coreml-all": lambda: CoreML("coreml-all"),
    "coreml-cpu-gpu": lambda: CoreML("coreml-cpu-gpu"),
    "coreml-cpu": lambda: CoreML("coreml-cpu"),
    "torch-inductor": TorchInductor,
    "openvino-cpu": lambda: OpenVinoCpu("openvino-cpu", "f32"),
    "openvino-cpu-default": lambda: OpenVinoCpu("openvino-cpu-default", None),
    "executorch-xnnpack": ExecuTorchXnnpack,
    "torch-cuda": gpu.TorchCuda,
    "ort-cuda": gpu.ort_cuda,
    "ort-tensorrt": gpu.ort_tensorrt,
}
# The backends that come with `pip install opbench` alone (no extras, no GPU); `make test`'s smoke run uses them.
# A benchmark run's default is every registered backend that is available on the machine ('all').
DEFAULT_BACKENDS = ("torch-eager", "ort-cpu", "ort-cpu-noopt")


def get_backend(name: str) -> Backend:
    """The backend by name; OpbenchError for an unknown name, BackendUnavailable when it cannot run here."""
    if name not in REGISTRY:
        raise OpbenchError(f"unknown backend {name!r}; known backends: {', '.join(REGISTRY)}")
    backend = REGISTRY[name]()
    reason = backend.unavailable_reason()
    if reason:
        raise BackendUnavailable(f"backend {name} is unavailable: {reason}")
    return backend


def unavailable_reason(name: str) -> str | None:
    """Why the named (registered) backend cannot run here, or None."""
    return REGISTRY[name]().unavailable_reason()


def parse_backends(spec: str) -> list[str]:
    """A comma-separated list of backend names ('all' = every registered one), checked against the registry."""
    names = list(REGISTRY) if spec.strip() == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in REGISTRY]
    if unknown or not names:
        raise OpbenchError(f"unknown backend(s) {', '.join(unknown) or spec!r}; known backends: {', '.join(REGISTRY)}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise OpbenchError(f"backend(s) {', '.join(twice)} named more than once in {spec!r}: each would run twice")
    return names


__all__ = [
    "DEFAULT_BACKENDS",
    "REGISTRY",
    "Backend",
    "Prepared",
    "RunConfig",
    "get_backend",
    "parse_backends",
    "unavailable_reason",
]
