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
import time
from pathlib import Path

import numpy as np
import torch

from opbench.backends.base import Backend, Prepared, RunConfig, package_version
from opbench.case import Case
from opbench.errors import UnsupportedCase

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

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        import openvino as ov

        artifact = config.cache.get_or_create(case, "openvino", self.versions(), ".ir", lambda p: convert(case, p))
        core = ov.Core()
        model = core.read_model(artifact.path / "model.xml")
        start = time.perf_counter()
        try:
            compiled = core.compile_model(model, DEVICE, self.properties(config.threads))
        except Exception as exc:  # the plugin rejects the converted model
            raise UnsupportedCase(f"compile_model: {type(exc).__name__}: {exc}") from exc
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
