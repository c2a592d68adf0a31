"""ONNX Runtime: ONNX files (torch.onnx dynamo exporter) in one session path for every provider.

ort-cpu and ort-cpu-noopt differ only in graph optimization level, so the report can show what fusion (BN
folding, GELU and LayerNorm fusion, ...) is worth. ort-cuda and ort-tensorrt run the same files on a GPU (f32:
TF32 and TensorRT's fp16 off; `run_with_iobinding` synchronizes its stream, so the timer sees the work). Every ORT
backend shares one exported file per case, and so does `opbench export --backend onnx`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from opbench.backends.base import Backend, ExportFormat, Prepared, RunConfig, package_version
from opbench.cache import Artifact, ArtifactCache
from opbench.case import Case
from opbench.errors import OpbenchError, UnsupportedCase

OPTIMIZATION_LEVELS = {"all": "ORT_ENABLE_ALL", "none": "ORT_DISABLE_ALL"}


def onnx_versions() -> dict[str, str]:
    return {"torch": torch.__version__, "onnx": package_version("onnx"), "onnxscript": package_version("onnxscript")}


def export_onnx(case: Case, path: Path) -> None:
    """torch.onnx dynamo export of the case's module at its example input; one file, weights inside."""
    torch.onnx.export(case.build(), (case.example_input(),), str(path), dynamo=True, verbose=False, external_data=False)


def onnx_artifact(case: Case, cache: ArtifactCache) -> Artifact:
    """The case's cached .onnx file, shared by the ORT backends and `opbench export --backend onnx`."""
    return cache.get_or_create(case, "onnx", onnx_versions(), ".onnx", lambda p: export_onnx(case, p))


def describe_onnx(path: Path) -> dict:
    """The file's single graph input and output read back with onnx: {input: {name, shape, dtype}, output}."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    (inp,), (out,) = graph.input, graph.output

    def feature(value) -> dict:
        tensor = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor.shape.dim]
        return {"name": value.name, "shape": shape, "dtype": onnx.TensorProto.DataType.Name(tensor.elem_type).lower()}

    return {"input": feature(inp), "output": feature(out)}


def export_format(precision: str = "float32", target: str | None = None) -> ExportFormat:
    """ONNX files for `opbench export`, for users who measure ONNX elsewhere (any runtime, named at import)."""
    if precision != "float32" or target:
        raise OpbenchError("--precision and --target apply to Core ML only; ONNX is exported in float32")
    return ExportFormat("onnx", ".onnx", {"precision": "float32"}, onnx_versions(), onnx_artifact, describe_onnx)


class OnnxRuntimeCpu(Backend):
    def __init__(self, name: str, optimization: str):
        self.name = name
        self.optimization = optimization

    def unavailable_reason(self) -> str | None:
        missing = [p for p in ("onnxruntime", "onnx", "onnxscript") if package_version(p) == "missing"]
        return f"not installed: {', '.join(missing)} (pip install opbench)" if missing else None

    def versions(self) -> dict[str, str]:
        return {**onnx_versions(), "onnxruntime": package_version("onnxruntime")}

    def options(self) -> dict:
        return {"graph_optimization_level": OPTIMIZATION_LEVELS[self.optimization], "provider": "CPUExecutionProvider"}

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        return session_prepared(case, config, OPTIMIZATION_LEVELS[self.optimization], "CPUExecutionProvider")


def session_prepared(
    case: Case, config: RunConfig, level: str, provider: str, provider_options: dict | None = None, device: str = "cpu"
) -> Prepared:
    """An ORT session over the case's cached ONNX file, input and output bound on `device` (IOBinding).

    Shared by every ORT backend; UnsupportedCase when the provider does not take the session (ORT would
    otherwise fall back to the CPU silently).
    """
    import onnxruntime as ort

    artifact = onnx_artifact(case, config.cache)
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    so.intra_op_num_threads = config.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    providers = [(provider, provider_options or {})]
    if provider != "CPUExecutionProvider":
        providers.append("CPUExecutionProvider")  # for the ops the provider leaves to the CPU
    session = ort.InferenceSession(str(artifact.path), so, providers=providers)
    if session.get_providers()[0] != provider:
        raise UnsupportedCase(f"{provider} did not load; the session fell back to {session.get_providers()}")
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    x = ort.OrtValue.ortvalue_from_numpy(case.example_input().numpy(), device, 0)
    y = ort.OrtValue.ortvalue_from_shape_and_type(out.shape, np.float32, device, 0)
    binding = session.io_binding()
    binding.bind_ortvalue_input(inp.name, x)
    binding.bind_ortvalue_output(out.name, y)

    def run() -> None:
        session.run_with_iobinding(binding)

    def infer() -> np.ndarray:
        run()
        return binding.copy_outputs_to_cpu()[0]

    return Prepared(run=run, infer=infer, export_s=artifact.export_s, cache_hit=artifact.cache_hit, info=artifact.info)


class OrtGpu(Backend):
    """ONNX Runtime with a GPU execution provider, on the ONNX file the CPU backends use."""

    def __init__(self, name: str, provider: str, provider_options: dict[str, str], pip_hint: str):
        self.name = name
        self.provider = provider
        self.provider_options = provider_options
        self.pip_hint = pip_hint

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return f"not installed: onnxruntime ({self.pip_hint})"
        import onnxruntime as ort

        providers = ort.get_available_providers()
        if self.provider not in providers:
            return (
                f"onnxruntime {package_version('onnxruntime')} has no {self.provider} (it has "
                f"{', '.join(providers)}); {self.pip_hint}"
            )
        return None  # a GPU build without a usable GPU is caught in prepare(): ORT falls back to CPU silently

    def versions(self) -> dict[str, str]:
        return {**onnx_versions(), "onnxruntime": package_version("onnxruntime")}

    def options(self) -> dict:
        return {"provider": self.provider, "provider_options": self.provider_options}

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        return session_prepared(case, config, "ORT_ENABLE_ALL", self.provider, self.provider_options, "cuda")


def ort_cuda() -> OrtGpu:
    options = {"device_id": "0", "use_tf32": "0"}
    return OrtGpu("ort-cuda", "CUDAExecutionProvider", options, "pip install onnxruntime-gpu")


def ort_tensorrt() -> OrtGpu:
    return OrtGpu(
        "ort-tensorrt",
        "TensorrtExecutionProvider",
        {"device_id": "0", "trt_fp16_enable": "False"},
        "pip install onnxruntime-gpu tensorrt",
    )
