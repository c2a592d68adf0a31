"""ort-cpu and ort-cpu-noopt: ONNX (torch.onnx dynamo exporter) on ONNX Runtime's CPU provider.

The two differ only in graph optimization level, so the report can show what fusion (BN folding,
GELU and LayerNorm fusion, ...) is worth. Both share one exported file per case.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from opbench.backends.base import Backend, Prepared, RunConfig, package_version
from opbench.cache import Artifact, ArtifactCache
from opbench.case import Case
from opbench.errors import UnsupportedCase

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


class OnnxRuntimeCpu(Backend):
    description = "ONNX Runtime, CPUExecutionProvider"

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
