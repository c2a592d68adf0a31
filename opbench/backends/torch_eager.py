"""torch-eager: the PyTorch module as written, in inference mode; the reference every backend is checked against."""

from __future__ import annotations

import torch

from opbench.backends.base import Backend, Prepared, RunConfig
from opbench.case import Case


class TorchEager(Backend):
    name = "torch-eager"

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        torch.set_num_threads(config.threads)
        module, x = case.build(), case.example_input()

        def run() -> torch.Tensor:
            return module(x)

        def infer():
            with torch.inference_mode():
                return run().numpy()

        return Prepared(run=run, infer=infer, context=torch.inference_mode)
