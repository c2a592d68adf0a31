"""mnn-cpu: Alibaba's MNN on the CPU, the engine of many Android apps, from an ONNX file of the case.

The case is exported to ONNX at opset 18 (cached) and converted to `.mnn` (cached) by the converter's extension
module, `_tools.mnnconvert`, called directly in a process and folder of its own (CONVERT says why). Never through
MNN's command-line wrapper (`mnnconvert`, `MNN.tools`): it runs `pip install aliyun-log-python-sdk` and uploads usage
logs with the machine's id.

GELU: ONNX's `Gelu` op (opset 20, the dynamo exporter's default) becomes MNN's own GELU kernel, which is the tanh
approximation whatever the model asked for (4.7e-4 off an exact GELU: it fails the float32 check inside an MLP). At
opset 18 the exact GELU is exported as its erf formula, which MNN runs exactly as five elementwise ops; that is what
this backend times, and `info` says so for every case that has an Erf. A tanh GELU is its tanh formula either way.

The session runs at precision "high" (f32; "low" allows fp16 on ARM), `numThread` = the run's threads. MNN reuses
the session's input memory during a run (a second `runSession` on the same input gave 3.5 off on an LN-Linear
projection), so every timed call copies the bound host input into the session first, as an app copies each frame.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from opbench.backends.base import Backend, Prepared, RunConfig, package_version
from opbench.backends.onnxruntime import OnnxScopes, onnx_versions
from opbench.cache import Artifact
from opbench.case import Case

if TYPE_CHECKING:
    from opbench.attribution import OpRow

OPSET = 18  # the exact GELU as Erf and elementwise ops; opset 20's Gelu op becomes MNN's tanh-approximate kernel
PRECISION = "high"
PROFILE_WARMUP = 3
INSTALL = "pip install 'opbench[mnn]'"
GELU_NOTE = (
    "exact GELU (erf) exported at ONNX opset 18 and run as Erf + 4 elementwise ops, not MNN's tanh-approximate GELU"
)


# The converter's own process, in a folder of its own: during optimization it spills weights to
# `.__convert_external_data.bin` in the current directory and reads them back, so two conversions in one folder (the
# export-ahead workers, two runs side by side) could read each other's weights.
SCRATCH = "own folder"  # in the cache key: a model converted in a shared folder is converted again
CONVERT = "import sys, _tools; sys.exit(0 if _tools.mnnconvert(sys.argv[1:]) else 1)"


def mnnconvert(onnx_path: Path, path: Path) -> None:
    """The converter itself (the `_tools` extension), never the wrapper that installs packages and uploads logs; run
    in a subprocess whose working directory is a fresh temporary folder (CONVERT says why)."""
    args = ["mnnconvert", "-f", "ONNX", "--modelFile", str(onnx_path.resolve()), "--MNNModel", str(path.resolve())]
    with tempfile.TemporaryDirectory(prefix="opbench-mnnconvert-") as scratch:
        done = subprocess.run([sys.executable, "-c", CONVERT, *args], cwd=scratch, capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip())[-2000:]
        raise RuntimeError(f"MNN's converter refused {onnx_path.name}: {said}")
    if not path.exists():
        raise RuntimeError(f"MNN's converter wrote no model for {onnx_path.name}")


class MnnCpu(Backend):
    name = "mnn-cpu"

    def unavailable_reason(self) -> str | None:
        missing = [m for m in ("MNN", "_tools", "onnx", "onnxscript") if importlib.util.find_spec(m) is None]
        return f"not installed: {', '.join(missing)} ({INSTALL})" if missing else None

    def versions(self) -> dict[str, str]:
        return {**onnx_versions(), "mnn": package_version("mnn")}

    def options(self) -> dict:
        return {"onnx_opset": OPSET, "precision": PRECISION, "backend": "CPU", "converter": "_tools.mnnconvert"}

    def onnx(self, case: Case, config: RunConfig) -> Artifact:
        key = {**onnx_versions(), "opset": OPSET}
        return config.cache.get_or_create(case, "onnx", key, ".onnx", lambda p: export_onnx(case, p))

    def export(self, case: Case, config: RunConfig) -> Artifact:
        """The cached .mnn model, converted from the cached opset-18 ONNX file."""
        source = self.onnx(case, config)
        return config.cache.get_or_create(
            case,
            "mnn",
            {**self.versions(), "opset": OPSET, "scratch": SCRATCH},
            ".mnn",
            lambda p: mnnconvert(source.path, p),
        )

    def session(self, case: Case, config: RunConfig):
        """(artifact, interpreter, session, feed) over the cached model; feed() copies the case's input in."""
        import MNN

        artifact = self.export(case, config)
        net = MNN.Interpreter(str(artifact.path))
        session = net.createSession({"numThread": config.threads, "precision": PRECISION, "backend": "CPU"})
        x = np.ascontiguousarray(case.example_input().numpy())
        host = MNN.Tensor(list(x.shape), MNN.Halide_Type_Float, x, MNN.Tensor_DimensionType_Caffe)
        inp = net.getSessionInput(session)

        def feed(array=x) -> None:  # the host tensor may read `array`'s memory: it lives as long as feed
            inp.copyFrom(host)

        return artifact, net, session, feed

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        import MNN

        source = self.onnx(case, config)  # first: its export time is counted (a cache hit afterwards)
        artifact, net, session, feed = self.session(case, config)
        output = net.getSessionOutput(session)
        shape = output.getShape()
        types = Counter(self.op_types(net, session))

        def run() -> None:
            feed()
            net.runSession(session)

        def infer() -> np.ndarray:
            run()
            host = MNN.Tensor(shape, MNN.Halide_Type_Float, np.zeros(shape, np.float32), MNN.Tensor_DimensionType_Caffe)
            output.copyToHostTensor(host)
            return np.array(host.getData(), dtype=np.float32).reshape(shape)

        approximated = [GELU_NOTE] if types.get("UnaryOp") and self.has_erf(case, config) else []
        return Prepared(
            run=run,
            infer=infer,
            export_s=source.export_s + artifact.export_s,
            cache_hit=source.cache_hit and artifact.cache_hit,
            info={
                **source.info,
                **artifact.info,
                "precision_used": f"float32 (session precision {PRECISION!r})",
                "ops": dict(sorted(types.items())),
                "delegated": "none: MNN runs every op on its CPU backend",
                "per_call": "input copied into the session, then runSession",
                "unfused_or_approximated": approximated,
            },
        )

    def has_erf(self, case: Case, config: RunConfig) -> bool:
        import onnx

        graph = onnx.load(str(self.onnx(case, config).path), load_external_data=False).graph
        return any(node.op_type == "Erf" for node in graph.node)

    @staticmethod
    def op_types(net, session) -> list[str]:
        seen: list[str] = []

        def after(tensors, info) -> bool:
            seen.append(info.getType())
            return True

        net.runSessionWithCallBackInfo(session, lambda tensors, info: True, after)
        return seen

    def profile(self, case: Case, config: RunConfig, runs: int) -> list[OpRow]:
        """MNN's per-op callbacks on a session of its own: `runSessionWithCallBackInfo` calls back before and after
        each op with its name and type; the time between is the op's (perf_counter), averaged over `runs` runs after
        a warm-up (typical_mean). Op names are the ONNX output tensors (or nodes) they come from, so module paths
        come from the ONNX file's scopes as for ONNX Runtime; ops MNN adds (`<tensor>_raster_0` layout copies,
        `__before_tr_` transposes) take the path of the tensor they are named after."""
        import onnx

        from opbench.attribution import module_index, typical_mean

        _, net, session, feed = self.session(case, config)
        per_run: list[dict[str, float]] = []
        types: dict[str, str] = {}
        for run in range(PROFILE_WARMUP + runs):
            times: dict[str, float] = {}
            started: dict[str, float] = {}

            def before(tensors, info, started=started) -> bool:
                started[info.getName()] = time.perf_counter()
                return True

            def after(tensors, info, started=started, times=times) -> bool:
                name = info.getName()
                times[name] = times.get(name, 0.0) + time.perf_counter() - started[name]
                types[name] = info.getType()
                return True

            feed()
            net.runSessionWithCallBackInfo(session, before, after)
            if run >= PROFILE_WARMUP:
                per_run.append(times)
        scopes = OnnxScopes(onnx.load(str(self.onnx(case, config).path), load_external_data=False), module_index(case))
        return [
            scopes.index.row(name, types[name], mnn_path(name, scopes), seconds)
            for name, seconds in typical_mean(per_run).items()
        ]


def mnn_path(name: str, scopes: OnnxScopes) -> str:
    """The module path of an MNN op, through the ONNX tensor or node it is named after ("" when none)."""
    for candidate in (name, name.split("__before_tr")[0], name.split("_raster_")[0]):
        path = scopes.path_of_name(candidate)
        if path is not None:
            return path
    return ""


def export_onnx(case: Case, path: Path) -> None:
    """torch.onnx dynamo export at opset 18 (the exact GELU as its erf formula); one file, weights inside."""
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(
            case.build(), (case.example_input(),), str(path), dynamo=True, external_data=False, opset_version=OPSET
        )
