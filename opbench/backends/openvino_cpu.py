"""openvino-cpu and openvino-cpu-default: OpenVINO's CPU plugin, from the torch module (`ov.convert_model`).

The case's module is converted by OpenVINO's PyTorch frontend and saved as OpenVINO IR (f32 weights,
`compress_to_fp16=False`) in the artifact cache, so a second run converts nothing; `compile_model` runs
in every process and its time is added to `export_s` (what OpenVINO charges up front), never to latency.

- `openvino-cpu` pins INFERENCE_PRECISION_HINT to f32: the protocol's precision, checked at f32 tolerance.
- `openvino-cpu-default` leaves the hint to the library. On processors with bf16 support (AVX512-BF16,
  AMX) OpenVINO then silently computes in bf16; the backend reads the precision back from the compiled
  model and reports that one, so the check against eager uses the tolerance of the precision really used.

Both run one stream with INFERENCE_NUM_THREADS = the run's threads and PERFORMANCE_HINT LATENCY; the
input and output tensors are bound once to an infer request, so the timer sees `infer()` alone.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from opbench.backends.base import Backend, Prepared, RunConfig, package_version
from opbench.cache import Artifact
from opbench.case import Case
from opbench.errors import UnsupportedCase, error_text

if TYPE_CHECKING:
    from opbench.attribution import ModuleIndex, OpRow

PROFILE_WARMUP = 3
# `__module.stages.0.blocks.0.mlp.0.1/aten::batch_norm/BatchNormInference`: the PyTorch frontend's node names
_MODULE_NAME = re.compile(r"__module(?:\.([\w.]+))?/")
# executed node types that absorb fused neighbours, with the module kind that owns their weight
_WEIGHTED = {
    "Convolution": "conv",
    "GroupConvolution": "conv",
    "Deconvolution": "conv",
    "FullyConnected": "linear",
    "MatMul": "linear",
}

# OpenVINO element type names -> the precision names of measure.TOLERANCES
PRECISIONS = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}
DEVICE = "CPU"


@functools.cache
def _default_precision() -> str:
    """The inference precision OpenVINO's CPU plugin picks on this processor when none is asked for."""
    import openvino as ov

    return _precision_name(ov.Core().get_property(DEVICE, "INFERENCE_PRECISION_HINT"))


def _precision_name(element_type) -> str:
    name = element_type.get_type_name() if hasattr(element_type, "get_type_name") else str(element_type)
    return PRECISIONS.get(name, name)


def convert(case: Case, folder: Path) -> None:
    """The torch module through OpenVINO's PyTorch frontend, saved as IR (model.xml + model.bin), weights f32."""
    import openvino as ov

    with torch.no_grad():
        model = ov.convert_model(case.build(), example_input=case.example_input())
    folder.mkdir(parents=True)
    ov.save_model(model, folder / "model.xml", compress_to_fp16=False)


class OpenVinoCpu(Backend):
    def __init__(self, name: str, precision_hint: str | None):
        self.name = name
        self.precision_hint = precision_hint  # "f32", or None for the library's default
        self._precision: str | None = "float32" if precision_hint == "f32" else None
        self._profiling: dict = {}  # (case fingerprint, threads) -> the compiled model of the profiling pass

    @property
    def precision(self) -> str:
        """The precision OpenVINO computes in: pinned, or read back from the library (the last compiled model)."""
        if self._precision is None:
            self._precision = _default_precision()
        return self._precision

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("openvino") is None:
            return "not installed: openvino (pip install 'opbench[openvino]')"
        return None

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__, "openvino": package_version("openvino")}

    def options(self) -> dict:
        return {
            "device": DEVICE,
            "frontend": "ov.convert_model(torch module, example_input)",
            "ir_weights": "f32 (compress_to_fp16=False)",
            "INFERENCE_PRECISION_HINT": self.precision_hint or "library default",
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }

    def properties(self, threads: int) -> dict:
        props = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": threads}
        if self.precision_hint:
            props["INFERENCE_PRECISION_HINT"] = self.precision_hint
        return props

    def export(self, case: Case, config: RunConfig) -> Artifact:
        """The case's IR (model.xml and its weights), converted once and cached; shared by both OpenVINO backends."""
        return config.cache.get_or_create(case, "openvino", self.versions(), ".ir", lambda p: convert(case, p))

    def compiled_model(self, case: Case, config: RunConfig, extra: dict | None = None):
        """The case's cached IR compiled for the CPU with this backend's properties (plus `extra`)."""
        import openvino as ov

        artifact = self.export(case, config)
        core = ov.Core()
        model = core.read_model(artifact.path / "model.xml")
        try:
            return core.compile_model(model, DEVICE, {**self.properties(config.threads), **(extra or {})})
        except Exception as exc:  # the plugin rejects the converted model
            raise UnsupportedCase(f"compile_model: {error_text(exc)}") from exc

    def profile(self, case: Case, config: RunConfig, runs: int) -> list[OpRow]:
        """OpenVINO's own per-node counters on a compiled model of its own (PERF_COUNT=YES; not the timed one):
        `request.get_profiling_info()` after each of `runs` inferences (after a warm-up) gives every executed
        node's real_time; nodes NOT_RUN (fused into another, or optimized out) and zero-time nodes (Parameter,
        Result, in-place reshapes) are left out. Module paths: see `_ov_path`.
        """
        import openvino as ov

        from opbench.attribution import module_index, typical_mean

        # compiled once per backend instance: OpenVINO names the nodes it creates with a global counter
        # (`Multiply_15867`), so a second compile would name the same node differently in a second profile
        key = (case.fingerprint, config.threads)
        fresh = key not in self._profiling
        if fresh:
            self._profiling[key] = self.compiled_model(case, config, {"PERF_COUNT": "YES"})
        compiled = self._profiling[key]
        request = compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(case.example_input().numpy(), shared_memory=False))
        # a freshly compiled model is slow for its first inferences (weights repacked on first use, bf16 most)
        for _ in range(PROFILE_WARMUP * 4 if fresh else PROFILE_WARMUP):
            request.infer()
        per_run: list[dict[str, float]] = []
        node_types: dict[str, str] = {}
        for _ in range(runs):
            request.infer()
            times: dict[str, float] = {}
            for info in request.get_profiling_info():
                seconds = info.real_time.total_seconds()
                if info.status != ov.ProfilingInfo.Status.EXECUTED or seconds <= 0:
                    continue
                times[info.node_name] = times.get(info.node_name, 0.0) + seconds
                node_types[info.node_name] = info.node_type
            per_run.append(times)
        index = module_index(case)
        runtime_ops = {op.get_friendly_name(): op for op in compiled.get_runtime_model().get_ordered_ops()}
        return [
            index.row(node, node_types[node], _ov_path(node, runtime_ops.get(node), index), seconds)
            for node, seconds in typical_mean(per_run).items()
        ]

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        import openvino as ov

        artifact = self.export(case, config)
        core = ov.Core()
        model = core.read_model(artifact.path / "model.xml")
        start = time.perf_counter()
        try:
            compiled = core.compile_model(model, DEVICE, self.properties(config.threads))
        except Exception as exc:  # the plugin rejects the converted model
            raise UnsupportedCase(f"compile_model: {error_text(exc)}") from exc
        compile_s = time.perf_counter() - start
        self._precision = _precision_name(compiled.get_property("INFERENCE_PRECISION_HINT"))

        x = case.example_input().numpy()
        request = compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(x, shared_memory=False))  # copied once, here, not per call
        output = request.get_output_tensor(0)

        def run() -> None:
            request.infer()

        def infer() -> np.ndarray:
            run()
            return np.array(output.data, copy=True)

        return Prepared(
            run=run,
            infer=infer,
            export_s=artifact.export_s + compile_s,
            cache_hit=artifact.cache_hit,
            info={
                **artifact.info,
                "convert_s": round(artifact.export_s, 4),
                "compile_s": round(compile_s, 4),
                "inference_precision": self._precision,
                "inference_num_threads": int(compiled.get_property("INFERENCE_NUM_THREADS")),
                "num_streams": int(compiled.get_property("NUM_STREAMS")),
                "cpu_pinning": bool(compiled.get_property("ENABLE_CPU_PINNING")),
            },
        )


def _ov_path(node_name: str, op, index: ModuleIndex) -> str:
    """The module path of an executed node of OpenVINO's runtime model ("" when none is found).

    Every original layer the node stands for is in its rt_info `originalLayersNames` (comma-separated), named
    `__module.<path>/aten::<op>/<Type>` by the PyTorch frontend; fused nodes list all they absorbed (a
    Convolution with the BatchNorm folded into it and the ReLU or GELU after it; a FullyConnected with the layer
    scale's Multiply), and OpenVINO's own nodes (`Multiply_4707`, the folded convolution; reorders) carry no
    path. A Convolution or FullyConnected is attributed to the convolution or Linear whose weight has its
    weight's shape, searched under the deepest module containing every listed path (then upwards): so the
    convolution that absorbed a BatchNorm and an activation is that convolution, not the BatchNorm. Other
    nodes take the first listed path (then a path in the node's own name, as reorders carry one).
    """
    from opbench.attribution import common_path

    names = op.get_rt_info()["originalLayersNames"].astype(str) if op is not None else ""
    paths = [m.group(1) or "" for m in map(_MODULE_NAME.search, names.split(",")) if m]
    kind = _WEIGHTED.get(op.get_rt_info()["layerType"].astype(str)) if op is not None else None
    if kind and len(op.inputs()) > 1 and op.input(1).get_partial_shape().is_static:
        shape = list(op.input(1).get_partial_shape().to_shape())
        found = index.find_weight(shape, index.innermost(common_path(paths)), kind)
        if found is not None:
            return found
    if paths:
        return paths[0]
    match = _MODULE_NAME.search(node_name)
    return (match.group(1) or "") if match else ""
