"""ncnn-cpu: Tencent's ncnn on the CPU, from the torch module through pnnx (TorchScript -> ncnn .param/.bin).

pnnx writes fp16 weights unless told `fp16=0`, and ncnn computes in fp16 by default: both are off, so this is a
float32 backend and is checked as one. pnnx exits 0 even when it leaves operators it cannot convert in the .param
file as `torch.*` / `Tensor.*` layers (which ncnn cannot run); such a model is unsupported, with the layers' names.

The input Mat is made once (a `.clone()` of a copy of the input, which stays referenced for as long as the Mat: a Mat
wrapping numpy memory crashed on a 2-D input, and one whose array was freed read garbage) and
the timer's call is what an app does per frame: a new extractor, `input`, `extract`. ncnn's Mats have no batch axis,
so the case's batch of 1 is dropped on the way in and put back on the way out. Threads: `opt.num_threads`.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from opbench.backends.base import Backend, Prepared, RunConfig, package_version
from opbench.cache import Artifact
from opbench.case import Case
from opbench.errors import ProfilerUnavailable, UnsupportedCase

INSTALL = "pip install 'opbench[ncnn]'"
# layers pnnx could not turn into ncnn layers: `torch.flatten`, `Tensor.reshape`, `torch.einsum`, ...
LEFTOVER = re.compile(r"^(?:torch|Tensor|F|nn)\.\S+$")
FP16_OFF = ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage", "use_bf16_packed")


def leftover_layers(param_text: str) -> list[str]:
    """`type name` of every layer in an ncnn .param file that pnnx left unconverted (a torch or Tensor op)."""
    found = []
    for line in param_text.splitlines()[2:]:  # the magic number, then the layer and blob counts
        fields = line.split()
        if len(fields) >= 2 and LEFTOVER.match(fields[0]):
            found.append(f"{fields[0]} {fields[1]}")
    return found


def layer_types(param_text: str) -> Counter:
    return Counter(line.split()[0] for line in param_text.splitlines()[2:] if line.split())


def convert(case: Case, folder: Path) -> None:
    """torch.jit.trace the case, run pnnx on it (fp16=0), keep model.param and model.bin; unsupported when pnnx fails
    or leaves torch/Tensor layers in the .param file."""
    import pnnx

    folder = folder.resolve()  # pnnx runs in a folder of its own: a relative cache path would point in there
    folder.mkdir(parents=True)
    x = case.example_input()
    with tempfile.TemporaryDirectory(prefix="opbench-pnnx-") as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace is deprecated; pnnx reads TorchScript
        traced = Path(tmp) / "model.pt"
        torch.jit.trace(case.build().eval(), (x,)).save(str(traced))
        shape = ",".join(map(str, x.shape))
        command = [
            pnnx.EXEC_PATH, str(traced), f"inputshape=[{shape}]f32", "fp16=0", "device=cpu",
            f"ncnnparam={folder / 'model.param'}", f"ncnnbin={folder / 'model.bin'}", f"ncnnpy={Path(tmp) / 'n.py'}",
            *(f"pnnx{part}={Path(tmp) / ('pnnx.' + part)}" for part in ("param", "bin", "py", "onnx")),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp)
    param = folder / "model.param"
    if done.returncode != 0 or not param.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"pnnx exited {done.returncode}: {' / '.join(tail)}")
    leftovers = leftover_layers(param.read_text())
    if leftovers:
        raise RuntimeError(f"pnnx left {len(leftovers)} layer(s) ncnn cannot run: {', '.join(leftovers[:8])}")


class NcnnCpu(Backend):
    name = "ncnn-cpu"

    def unavailable_reason(self) -> str | None:
        missing = [m for m in ("ncnn", "pnnx") if importlib.util.find_spec(m) is None]
        return f"not installed: {', '.join(missing)} ({INSTALL})" if missing else None

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__, "pnnx": package_version("pnnx"), "ncnn": package_version("ncnn")}

    def options(self) -> dict:
        return {"pnnx": "fp16=0", "fp16": "off (storage, packed, arithmetic; bf16 too)", "vulkan": False}

    def export(self, case: Case, config: RunConfig) -> Artifact:
        key = {"torch": torch.__version__, "pnnx": package_version("pnnx")}
        return config.cache.get_or_create(case, "ncnn", key, ".ncnn", lambda p: convert(case, p))

    def profile(self, case: Case, config: RunConfig, runs: int):
        raise ProfilerUnavailable(
            f"{self.name}: the ncnn wheel from PyPI is built without its per-layer benchmark (NCNN_BENCHMARK), and "
            "ncnn's Python API has no per-layer callbacks"
        )

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        import ncnn

        artifact = self.export(case, config)
        net = ncnn.Net()
        for flag in FP16_OFF:
            setattr(net.opt, flag, False)
        net.opt.use_vulkan_compute = False
        net.opt.num_threads = config.threads
        if net.load_param(str(artifact.path / "model.param")) or net.load_model(str(artifact.path / "model.bin")):
            raise UnsupportedCase(f"ncnn could not load the converted model {artifact.path.name}")
        (inp,), (out,) = net.input_names(), net.output_names()
        array = case.example_input().numpy()[0].copy()  # kept alive with the Mat made from it, for the whole run
        x = ncnn.Mat(array).clone()
        holder: list = [array]

        def run() -> None:
            extractor = net.create_extractor()
            extractor.input(inp, x)
            status, y = extractor.extract(out)
            if status:
                raise RuntimeError(f"ncnn extract returned {status}")
            holder[1:] = [extractor, y]  # y's memory is the extractor's: keep both

        def infer() -> np.ndarray:
            run()
            return np.array(holder[2], dtype=np.float32)  # without the batch axis; the check reshapes it

        return Prepared(
            run=run,
            infer=infer,
            export_s=artifact.export_s,
            cache_hit=artifact.cache_hit,
            info={
                **artifact.info,
                "precision_used": "float32 (pnnx fp16=0; ncnn fp16/bf16 storage and arithmetic off)",
                "layers": dict(sorted(layer_types((artifact.path / "model.param").read_text()).items())),
                "delegated": "none: every layer runs on ncnn's CPU kernels (Vulkan off)",
                "threads": int(net.opt.num_threads),
            },
        )
