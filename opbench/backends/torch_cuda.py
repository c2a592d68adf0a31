"""torch-cuda: PyTorch eager on a CUDA GPU, for machines that have one (ONNX Runtime's GPU providers are in
onnxruntime.py).

On a machine without a CUDA GPU (or with a CPU-only build of torch) it says why it is unavailable and the run
skips it. It computes in f32: TF32 is switched off (cuDNN and cuBLAS would otherwise use it for convolutions and
matmuls on Ampere and later). Each timed call waits for the GPU to finish (`cuda.synchronize()`), so the timer
sees the work, not the launch. Inputs and outputs live on the GPU.
"""

from __future__ import annotations

import numpy as np
import torch

from opbench.backends.base import GPU_PROFILE_REASON, Backend, Prepared, RunConfig
from opbench.case import Case
from opbench.errors import ProfilerUnavailable


class TorchCuda(Backend):
    name = "torch-cuda"

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
