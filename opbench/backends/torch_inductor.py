"""torch-inductor: `torch.compile` with the Inductor CPU backend (C++/OpenMP code generation), weights frozen.

Each case is compiled once per process, at its example input, and the compiled module is kept in an
in-process cache keyed by the case, the options and the thread count; the compile (dynamo tracing,
Inductor lowering, C++ build: the first call) is timed and reported as `export_s`, never as latency.
Inductor's own on-disk caches (FX graph cache, compiled kernels) are pointed at the opbench cache folder
(`<cache>/inductor`) while a case compiles, so a warm run reuses them and `make clean` makes the next run cold.

Freezing is on: weights become constants, so Inductor folds BN into the preceding convolution and
prepacks weights for oneDNN, which is how `torch.compile` is used for CPU inference. Graph breaks are
errors (fullgraph=True): a case that dynamo cannot capture whole is unsupported, not silently eager.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from opbench.backends.base import Backend, Prepared, RunConfig
from opbench.case import Case
from opbench.errors import ProfilerUnavailable, UnsupportedCase, error_line

OPTIONS = {"fullgraph": True, "dynamic": False, "isolate_recompiles": True, "options": {"freezing": True}}
# Cases share forward code (one module class at several shapes): each compile keeps its own entries
# (isolate_recompiles), the process-wide cap is raised for long runs, and hitting a limit is an error, never a
# silent fall back to eager.
RECOMPILE_LIMITS = {"accumulated_recompile_limit": 65536, "fail_on_recompile_limit_hit": True}


@dataclass
class _Compiled:
    module: torch.nn.Module
    x: torch.Tensor
    compile_s: float
    error: str | None = None
    fx_graph_cache: str = "miss"  # Inductor's on-disk FX graph cache: "hit" when a warm run skipped lowering


# the in-process compile cache (case id, fingerprint, options, threads, copy) -> compiled module or the compile error;
# each copy of a cold case (RunConfig.copy) compiles a module of its own (from Inductor's on-disk caches)
_COMPILED: dict[tuple[str, str, str, int, int], _Compiled] = {}


class TorchInductor(Backend):
    name = "torch-inductor"

    def versions(self) -> dict[str, str]:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return {"torch": torch.__version__, "cxx": os.path.basename(get_cpp_compiler())}

    def options(self) -> dict:
        return {**OPTIONS, **RECOMPILE_LIMITS}

    def export(self, case: Case, config: RunConfig) -> None:
        """Compile once into Inductor's on-disk caches, so that the timed process compiles from them; a small record
        in the artifact cache (the compile's cost) says that this was done for the case, options and threads."""

        def compile_into_caches(path: Path) -> None:
            torch.set_num_threads(config.threads)
            entry = self._compile(case, config.cache.root / "inductor")
            if entry.error:
                raise UnsupportedCase(entry.error)
            path.write_text(
                json.dumps({"compile_s": round(entry.compile_s, 4), "fx_graph_cache": entry.fx_graph_cache})
            )

        key = {**self.versions(), "options": self.options(), "threads": config.threads}
        config.cache.get_or_create(case, "inductor-compiled", key, ".json", compile_into_caches)

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        torch.set_num_threads(config.threads)  # Inductor bakes the thread count into its kernels at compile time
        key = (case.id, case.fingerprint, json.dumps(self.options(), sort_keys=True), config.threads, config.copy)
        entry = _COMPILED.get(key)
        in_process = entry is not None
        if entry is None:
            entry = _COMPILED[key] = self._compile(case, config.cache.root / "inductor")
        if entry.error:
            raise UnsupportedCase(entry.error)
        compiled, x = entry.module, entry.x

        def run() -> torch.Tensor:
            return compiled(x)

        def infer():
            with torch.inference_mode():
                return run().numpy()

        return Prepared(
            run=run,
            infer=infer,
            context=torch.inference_mode,
            export_s=0.0 if in_process else entry.compile_s,
            cache_hit=in_process or entry.fx_graph_cache == "hit",
            info={
                "compile_s": round(entry.compile_s, 4),
                "in_process_cache": in_process,
                "fx_graph_cache": entry.fx_graph_cache,
            },
        )

    def profile(self, case: Case, config: RunConfig, runs: int):
        """Unavailable: Inductor's kernels cannot be attributed to the categories soundly.

        With TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE=1 (config.cpp.enable_kernel_profile) torch.profiler shows one
        event per generated kernel, named after the aten ops it fused, and the extern convolutions and matmuls as
        aten ops, all without module paths. Inductor fuses across module boundaries: on the contract test model
        one kernel, `cpp_fused__native_batch_norm_legit_no_training_add_avg_pool2d_mul_relu_sub`, runs the stem's
        last BatchNorm and ReLU, the first block's pool token mixer and its residual; a kernel's time cannot be
        split between stem, token mixer and normalization, and the externs do not say which module they serve.
        """
        raise ProfilerUnavailable(
            "torch-inductor: its generated kernels fuse across modules (e.g. one kernel runs the stem's BatchNorm + "
            "ReLU, the next block's pool mixer and its residual add) and neither they nor the extern convolution / "
            "matmul calls carry module paths, so per-category times would be guesses"
        )

    @staticmethod
    def _compile(case: Case, cache_dir: Path) -> _Compiled:
        from torch._dynamo.utils import counters
        from torch._inductor.runtime.cache_dir_utils import temporary_cache_dir

        module, x = case.build(), case.example_input()
        hits = counters["inductor"]["fxgraph_cache_hit"]
        compiled = torch.compile(module, **OPTIONS)
        start = time.perf_counter()
        try:
            with (
                temporary_cache_dir(str(cache_dir.absolute())),
                torch._dynamo.config.patch(**RECOMPILE_LIMITS),
                torch.inference_mode(),
            ):
                compiled(x)  # the first call traces, lowers and builds
        except Exception as exc:  # any compiler failure makes the case unsupported on this backend
            return _Compiled(module, x, time.perf_counter() - start, error_line(exc, 500))
        hit = "hit" if counters["inductor"]["fxgraph_cache_hit"] > hits else "miss"
        return _Compiled(compiled, x, time.perf_counter() - start, fx_graph_cache=hit)
