"""torch-eager: the PyTorch module as written, in inference mode; the reference every backend is checked against."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import torch

from opbench.backends.base import Backend, Prepared, RunConfig
from opbench.case import Case

if TYPE_CHECKING:
    from opbench.attribution import OpRow

MODULE_MARK = "opbench.module:"  # record_function names that carry a module path
PROFILE_WARMUP = 3


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

    def profile(self, case: Case, config: RunConfig, runs: int) -> list[OpRow]:
        """torch.profiler over `runs` calls; every module's forward wrapped in a `record_function` named after its
        path (forward pre/post hooks), each top-level aten op attributed to its innermost enclosing module
        through the event tree (`cpu_parent`). A row is one aten op call as the module issues it
        (`aten::conv2d`, `aten::linear`, ...: its total time, the kernels it calls included), averaged over
        the runs (`typical_mean`); the hooks' own time is in no row, so it shows as coverage below 1.
        """
        from torch.profiler import ProfilerActivity, record_function
        from torch.profiler import profile as torch_profile

        from opbench.attribution import ModuleIndex, typical_mean

        torch.set_num_threads(config.threads)
        module, x = case.build(), case.example_input()
        index = ModuleIndex(module)
        handles, open_marks = [], []

        def enter(path: str):
            def hook(_module, _args):
                mark = record_function(MODULE_MARK + path)
                mark.__enter__()
                open_marks.append(mark)

            return hook

        def leave(_module, _args, _output):
            open_marks.pop().__exit__(None, None, None)

        for path, sub in module.named_modules():
            handles.append(sub.register_forward_pre_hook(enter(path)))
            handles.append(sub.register_forward_hook(leave))
        try:
            with torch.inference_mode():
                for _ in range(PROFILE_WARMUP):
                    module(x)
                with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                    for _ in range(runs):
                        module(x)
        finally:
            for handle in handles:
                handle.remove()

        per_run: list[dict[tuple[str, str, int], float]] = []
        roots = [e for e in prof.events() if e.name == MODULE_MARK and e.cpu_parent is None]
        for root in roots:
            seen: dict[tuple[str, str], int] = defaultdict(int)
            totals: dict[tuple[str, str, int], float] = {}
            per_run.append(totals)
            stack = [root]
            while stack:
                event = stack.pop()
                children = sorted(event.cpu_children, key=lambda e: e.time_range.start, reverse=True)
                if event.name.startswith(MODULE_MARK):
                    stack.extend(children)
                    continue
                path = event.cpu_parent.name[len(MODULE_MARK) :]
                ordinal = seen[(path, event.name)]
                seen[(path, event.name)] += 1
                totals[(path, event.name, ordinal)] = event.cpu_time_total * 1e-6  # microseconds
        return [
            index.row(f"{path or '<model>'}/{op}" + (f"#{k + 1}" if k else ""), op, path, seconds)
            for (path, op, k), seconds in typical_mean(per_run).items()
        ]
