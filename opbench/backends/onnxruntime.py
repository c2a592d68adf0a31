"""ONNX Runtime: ONNX files (torch.onnx dynamo exporter) in one session path for every provider.

ort-cpu and ort-cpu-noopt differ only in graph optimization level, so the report can show what fusion (BN
folding, GELU and LayerNorm fusion, ...) is worth. ort-cuda and ort-tensorrt run the same files on a GPU (f32:
TF32 and TensorRT's fp16 off; `run_with_iobinding` synchronizes its stream, so the timer sees the work). Every ORT
backend shares one exported file per case, and so does `opbench export --backend onnx`.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from opbench.backends.base import GPU_PROFILE_REASON, Backend, ExportFormat, Prepared, RunConfig, package_version
from opbench.cache import Artifact, ArtifactCache
from opbench.case import Case
from opbench.errors import OpbenchError, ProfilerUnavailable, UnsupportedCase

if TYPE_CHECKING:
    from opbench.attribution import ModuleIndex, OpRow

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

    def export(self, case: Case, config: RunConfig) -> None:
        onnx_artifact(case, config.cache)

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        return session_prepared(case, config, OPTIMIZATION_LEVELS[self.optimization], "CPUExecutionProvider")

    def profile(self, case: Case, config: RunConfig, runs: int) -> list[OpRow]:
        return session_profile(case, config, OPTIMIZATION_LEVELS[self.optimization], runs)


def session_options(config: RunConfig, level: str):
    """The options of every session opbench opens, timed or profiled: the run's intra-op threads, one inter-op
    thread, nodes run in order, the backend's graph optimization level."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    so.intra_op_num_threads = config.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return so


def session_prepared(
    case: Case, config: RunConfig, level: str, provider: str, provider_options: dict | None = None, device: str = "cpu"
) -> Prepared:
    """An ORT session over the case's cached ONNX file, input and output bound on `device` (IOBinding).

    Shared by every ORT backend; UnsupportedCase when the provider does not take the session (ORT would
    otherwise fall back to the CPU silently).
    """
    import onnxruntime as ort

    artifact = onnx_artifact(case, config.cache)
    so = session_options(config, level)
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

    def export(self, case: Case, config: RunConfig) -> None:
        onnx_artifact(case, config.cache)

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        return session_prepared(case, config, "ORT_ENABLE_ALL", self.provider, self.provider_options, "cuda")

    def profile(self, case: Case, config: RunConfig, runs: int) -> list[OpRow]:
        raise ProfilerUnavailable(f"{self.name}: {GPU_PROFILE_REASON}")


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


# -- profiling ----------------------------------------------------------------------------------------------------

PROFILE_WARMUP = 3
SCOPES = "pkg.torch.onnx.name_scopes"  # written on every node by the dynamo exporter: the module path as a list
COMPUTE_OPS = {"Conv", "FusedConv", "ConvTranspose", "Gemm", "FusedGemm", "MatMul", "FusedMatMul"}
# exported ops that ORT fuses into the Conv / MatMul before them
FUSABLE_OPS = {"Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "Tanh", "Gelu", "Add", "Sum"}
FUSABLE_OPS |= {"BatchNormalization", "Mul"}  # Mul: a layer scale or an attention scale folded into the weights


def session_profile(case: Case, config: RunConfig, level: str, runs: int) -> list[OpRow]:
    """ONNX Runtime's own profiler on a session of its own (never the timed one): `enable_profiling`, a warm-up,
    `runs` runs, `end_profiling()`'s Chrome trace; each `cat: "Node"` event `<node>_kernel_time` of the last `runs`
    `model_run` windows becomes a row, averaged over the runs (`typical_mean`). The session also writes the graph
    it really runs (`optimized_model_filepath`) so that fused and renamed nodes can be traced back; both files are
    deleted. ORT's profiler adds a few microseconds to every node it times, so on a model of many small nodes the
    rows sum to more than the unprofiled latency (coverage above 1).

    Module paths: the dynamo exporter's `pkg.torch.onnx.name_scopes` node metadata; see `OnnxScopes`.
    """
    import onnx
    import onnxruntime as ort

    from opbench.attribution import module_index, typical_mean

    artifact = onnx_artifact(case, config.cache)
    with tempfile.TemporaryDirectory(prefix="opbench-ort-profile-") as tmp:
        so = session_options(config, level)
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "ort_profile")
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        # its weights in a file beside it, unread: only the graph is traced back (EfficientFormer-L7's 330 MB of
        # weights, written into the graph and parsed again, were 1.5 s of its 6.8 s profile)
        so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "weights.bin")
        so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        so.log_severity_level = 3  # not the warning that an NCHWc graph, once saved, is specific to this CPU
        session = ort.InferenceSession(str(artifact.path), so, providers=["CPUExecutionProvider"])
        (inp,), (out,) = session.get_inputs(), session.get_outputs()
        binding = session.io_binding()
        binding.bind_ortvalue_input(inp.name, ort.OrtValue.ortvalue_from_numpy(case.example_input().numpy()))
        binding.bind_ortvalue_output(out.name, ort.OrtValue.ortvalue_from_shape_and_type(out.shape, np.float32))
        for _ in range(PROFILE_WARMUP + runs):
            session.run_with_iobinding(binding)
        trace = Path(session.end_profiling())
        events = json.loads(trace.read_text())
        trace.unlink(missing_ok=True)  # written where the prefix says, inside tmp; removed with it in any case
        optimized = onnx.load(str(Path(tmp) / "optimized.onnx"), load_external_data=False)
    scopes = OnnxScopes(onnx.load(str(artifact.path), load_external_data=False), module_index(case))
    runs_seen = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])[-runs:]
    windows = [(e["ts"], e["ts"] + e["dur"]) for e in runs_seen]
    per_run: list[dict[str, float]] = [defaultdict(float) for _ in windows]
    op_types: dict[str, str] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        run = next((i for i, (start, end) in enumerate(windows) if start <= event["ts"] <= end), None)
        if run is None:
            continue
        node = name[: -len("_kernel_time")]
        per_run[run][node] += event["dur"] * 1e-6  # microseconds
        op_types[node] = event.get("args", {}).get("op_name", "")
    paths = scopes.map_graph(optimized.graph)
    return [
        scopes.index.row(node, op_types[node], paths.get(node, ""), seconds)
        for node, seconds in typical_mean(per_run).items()
    ]


class OnnxScopes:
    """Module paths of ONNX nodes, from the exported file's metadata, and of the nodes ORT runs after optimizing.

    In the exported file every node carries `pkg.torch.onnx.name_scopes`; the innermost entry that is a module
    of the case is the node's path. Exporter-made nodes without metadata inherit from their producer. A Conv
    or Gemm whose weight or bias initializer is named `<module>.weight|bias` gets that module (onnxscript folds
    BatchNorm into the Conv and gives the fused Conv the BatchNorm's scope).

    ORT_ENABLE_ALL renames what it fuses: NCHWc convolutions are named after their output tensor
    (`relu_nchwc`, `getitem_6_nchwc`, `mul_1_mul_nchwc`), fusions get suffixes (`node_MatMul_38/MatMulAddFusion`,
    `node_matmul/MatMulScaleFusion/`), and new nodes appear (`ReorderInput/Output...`, `gemm_input_reshape...`).
    A node of the optimized graph is mapped, first match wins: by a `<module>.weight|bias` initializer it
    reads; by its name, its name before the first '/', its name without `_nchwc` and `_token_<n>` suffixes
    (then shortened by '_' parts), as an exported node or as a tensor whose producer is an exported node; then by
    its neighbours in the optimized graph (consumer first, then producer). A convolution or matmul that lands on
    a fused activation, BatchNorm or Add is moved upstream to the convolution or matmul that absorbed it.
    """

    def __init__(self, model, index: ModuleIndex):
        self.index = index
        graph = model.graph
        self.initializers = {t.name for t in graph.initializer}
        self.nodes = {n.name: n for n in graph.node}
        self.producer = {out: n.name for n in graph.node for out in n.output}
        self.path: dict[str, str] = {}
        for node in graph.node:  # topological order: a producer is mapped before its consumers
            path = self._param_path(node) if node.op_type in COMPUTE_OPS else None
            if path is None:
                path = self._metadata_path(node)
            if path is None:
                path = next((self.path[self.producer[i]] for i in node.input if i in self.producer), None)
            self.path[node.name] = path or ""

    def _metadata_path(self, node) -> str | None:
        props = {p.key: p.value for p in node.metadata_props}
        if SCOPES not in props:
            return None
        try:
            scopes = ast.literal_eval(props[SCOPES])
        except (ValueError, SyntaxError):
            return None
        return next((s for s in reversed(scopes) if s and s in self.index), "")

    def _param_path(self, node) -> str | None:
        for name in node.input:
            for suffix in (".weight", ".bias"):
                path = name.removesuffix(suffix)
                if path != name and self.index.class_of(path) in ("Conv1d", "Conv2d", "Conv3d", "Linear"):
                    return path
        return None

    def _by_name(self, name: str) -> str | None:
        """The exported node a runtime node name points at, or None."""
        base = name.split("/")[0]
        candidates = [name, base]
        parts = _strip_token(base.removesuffix("_nchwc")).split("_")
        candidates += ["_".join(parts[:i]) for i in range(len(parts), 0, -1)]
        for candidate in candidates:
            if candidate in self.nodes:
                return candidate
            if candidate in self.producer and candidate not in self.initializers:
                return self.producer[candidate]
        return None

    def path_of_name(self, name: str) -> str | None:
        """The module path of the exported node or tensor a runtime names an op after, or None."""
        source = self._by_name(name)
        return None if source is None else self.path[source]

    def _absorber(self, node_name: str, depth: int = 3) -> str:
        """Walk upstream from a fused activation/BN/Add to the Conv or MatMul/Gemm that absorbed it."""
        frontier = [node_name]
        for _ in range(depth):
            upstream = []
            for name in frontier:
                for tensor in self.nodes[name].input:
                    producer = self.producer.get(tensor)
                    if producer is None:
                        continue
                    if self.nodes[producer].op_type in COMPUTE_OPS:
                        return producer
                    upstream.append(producer)
            frontier = upstream
        return node_name

    def map_graph(self, graph) -> dict[str, str]:
        """Module path of every node of the graph ORT ran (its optimized graph); "" where none was found."""
        paths: dict[str, str] = {}
        for node in graph.node:
            path = self._param_path(node) if node.op_type in COMPUTE_OPS else None
            if path is None:
                source = self._by_name(node.name)
                if source is not None:
                    if node.op_type in COMPUTE_OPS and self.nodes[source].op_type in FUSABLE_OPS:
                        source = self._absorber(source)
                    path = self.path[source]
                elif any(out in self.producer for out in node.output):
                    path = self.path[self.producer[next(o for o in node.output if o in self.producer)]]
            if path is not None:
                paths[node.name] = path
        # the rest (layout reorders, reshapes around a Gemm): a neighbour's path, consumer first
        consumers = defaultdict(list)
        producers = {}
        for node in graph.node:
            for tensor in node.input:
                consumers[tensor].append(node.name)
            for tensor in node.output:
                producers[tensor] = node.name
        for _ in range(3):
            for node in graph.node:
                if node.name in paths:
                    continue
                near = [c for out in node.output for c in consumers[out]]
                near += [producers[i] for i in node.input if i in producers]
                found = next((paths[n] for n in near if n in paths), None)
                if found is not None:
                    paths[node.name] = found
        return paths


def _strip_token(name: str) -> str:
    """`ReorderOutput_token_39` -> `ReorderOutput`: ORT's suffix for a generated unique name."""
    head, sep, tail = name.rpartition("_token_")
    return head if sep and tail.isdigit() else name
