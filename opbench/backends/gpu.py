"""GPU backends, for machines that have one: torch-cuda, ort-cuda and ort-tensorrt.

On a machine without a CUDA GPU (or with CPU-only builds of torch and onnxruntime) each says why it is
unavailable and the run skips it. All three compute in f32: TF32 is switched off (cuDNN and cuBLAS
would otherwise use it for convolutions and matmuls on Ampere and later) and TensorRT's fp16 stays off.
Each timed call waits for the GPU to finish (torch: `cuda.synchronize()`; ORT: `run_with_iobinding`
synchronizes its stream), so the timer sees the work, not the launch. Inputs and outputs live on the GPU.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

from opbench.backends.base import Backend, Prepared, RunConfig, package_version
from opbench.backends.onnxruntime_cpu import onnx_versions, session_prepared
from opbench.case import Case
from opbench.errors import ProfilerUnavailable

GPU_PROFILE_REASON = (
    "per-operator GPU profiles are not implemented: opbench's profilers attribute CPU-side events, and no GPU was at "
    "hand to verify kernel attribution (torch.profiler CUDA activity, ORT's CUDA/TensorRT provider events)"
)


class TorchCuda(Backend):
    name = "torch-cuda"
    description = "PyTorch eager on CUDA, inference_mode, TF32 off"

    def unavailable_reason(self) -> str | None:
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            return f"no CUDA device visible to torch {torch.__version__} ({build})"
        return None

    def versions(self) -> dict[str, str]:
        cudnn = torch.backends.cudnn.version()
        return {"torch": torch.__version__, "cuda": str(torch.version.cuda), "cudnn": str(cudnn)}

    def options(self) -> dict:
        return {"device": "cuda:0", "allow_tf32": False, "cudnn_benchmark": False}

    def profile(self, case: Case, config: RunConfig, runs: int):
        raise ProfilerUnavailable(f"{self.name}: {GPU_PROFILE_REASON}")

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
        module, x = case.build().to("cuda"), case.example_input().to("cuda")

        def run() -> torch.Tensor:
            y = module(x)
            torch.cuda.synchronize()
            return y

        def infer() -> np.ndarray:
            with torch.inference_mode():
                return run().cpu().numpy()

        return Prepared(run=run, infer=infer, context=torch.inference_mode, info={"gpu": torch.cuda.get_device_name()})


class OrtGpu(Backend):
    """ONNX Runtime with a GPU execution provider, on the ONNX file the CPU backends use."""

    def __init__(self, name: str, provider: str, provider_options: dict[str, str], pip_hint: str):
        self.name = name
        self.provider = provider
        self.provider_options = provider_options
        self.pip_hint = pip_hint
        self.description = f"ONNX Runtime, {provider}"

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

    def profile(self, case: Case, config: RunConfig, runs: int):
        raise ProfilerUnavailable(f"{self.name}: {GPU_PROFILE_REASON}")

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
