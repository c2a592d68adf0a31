"""The backend registry: names to backends, with why one cannot run here; and the export formats they own."""

from __future__ import annotations

from collections.abc import Callable

from opbench.backends import coreml, litert, onnxruntime
from opbench.backends.base import Backend, DeviceMeasurement, DeviceUnits, ExportFormat, Prepared, RunConfig
from opbench.backends.coreml import CoreML
from opbench.backends.executorch_xnnpack import ExecuTorchXnnpack
from opbench.backends.litert import LiteRT
from opbench.backends.mnn import MnnCpu
from opbench.backends.ncnn import NcnnCpu
from opbench.backends.onnxruntime import OnnxRuntimeCpu, ort_cuda, ort_tensorrt
from opbench.backends.openvino_cpu import OpenVinoCpu
from opbench.backends.torch_cuda import TorchCuda
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
    # the runtimes Android apps ship, on this CPU: the phone's graph, decomposition and partitioning, x86 kernels
    "litert-xnnpack": lambda: LiteRT("litert-xnnpack"),
    "litert-builtin": lambda: LiteRT("litert-builtin"),
    "mnn-cpu": MnnCpu,
    "ncnn-cpu": NcnnCpu,
    "torch-cuda": TorchCuda,
    "ort-cuda": ort_cuda,
    "ort-tensorrt": ort_tensorrt,
}
# What `opbench export` writes for another device, each format owned by the backend module that runs it here:
# its export_format(precision, target), whose `units` say how the device's measurements name their settings.
EXPORT_FORMATS = {"coreml": coreml, "onnx": onnxruntime, "litert": litert}
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


def export_format(name: str, precision: str = "float32", target: str | None = None) -> ExportFormat:
    """The export format by name; OpbenchError for an unknown one or options it does not take."""
    if name not in EXPORT_FORMATS:
        raise OpbenchError(f"cannot export to {name!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    return EXPORT_FORMATS[name].export_format(precision, target)


def device_units(format_name: str) -> DeviceUnits | None:
    """How a format's device measurements name their settings (None: the runtime is named freely)."""
    return export_format(format_name).units if format_name in EXPORT_FORMATS else None


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
    "EXPORT_FORMATS",
    "REGISTRY",
    "Backend",
    "DeviceMeasurement",
    "DeviceUnits",
    "ExportFormat",
    "Prepared",
    "RunConfig",
    "device_units",
    "export_format",
    "get_backend",
    "parse_backends",
    "unavailable_reason",
]
