"""litert-xnnpack and litert-builtin: LiteRT (TFLite), what Android apps ship, from the torch module (litert-torch).

The case's module is converted straight from torch by `litert_torch.convert` (no TensorFlow, no ONNX) into one
float32 `.tflite` flatbuffer in the artifact cache; `opbench export --backend litert` writes the same files for a
phone (with a script that runs LiteRT's `benchmark_model` on them; see `device_script`).

- `litert-xnnpack`: the interpreter's default, the XNNPACK delegate on the CPU (what an app gets).
- `litert-builtin`: TFLite's own reference kernels (`BUILTIN_WITHOUT_DEFAULT_DELEGATES`): what XNNPACK is worth,
  as ort-cpu-noopt shows what ORT's graph optimizations are worth.

The input is set once (`set_tensor` copies it into the interpreter's buffer); the timer calls `invoke()` alone.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from opbench.backends.base import Backend, DeviceMeasurement, ExportFormat, Prepared, RunConfig, package_version
from opbench.cache import Artifact, ArtifactCache
from opbench.case import Case
from opbench.errors import OpbenchError, ProfilerUnavailable

CONVERTER = ("litert-torch", "litert-converter")
RUNTIME = "ai-edge-litert"
RESOLVERS = {"litert-xnnpack": "AUTO", "litert-builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}
INSTALL = "pip install 'opbench[litert]' (then the converter with --no-deps, as the Makefile does)"


def litert_versions() -> dict[str, str]:
    return {"torch": torch.__version__, **{p: package_version(p) for p in CONVERTER}}


def convert(case: Case, path: Path) -> None:
    """The torch module through litert-torch at its example input, written as one float32 .tflite file."""
    import litert_torch

    # the converter reports its progress on stdout: keep it off the CLI (its errors still raise)
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        litert_torch.convert(case.build().eval(), (case.example_input(),)).export(str(path))


def tflite_artifact(case: Case, cache: ArtifactCache) -> Artifact:
    """The case's cached .tflite file, shared by both LiteRT backends and `opbench export --backend litert`."""
    missing = [p for p in CONVERTER if package_version(p) == "missing"]
    if missing:  # must not be cached as an unsupported case
        raise OpbenchError(f"not installed: {', '.join(missing)} ({INSTALL})")
    return cache.get_or_create(case, "litert", litert_versions(), ".tflite", lambda p: convert(case, p))


def interpreter(path: Path, resolver: str, threads: int):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = getattr(OpResolverType, resolver)
    return Interpreter(model_path=str(path), num_threads=threads, experimental_op_resolver_type=kind)


def describe(path: Path) -> dict:
    """The file's single input and output as the interpreter reads them: {input: {name, shape, dtype}, output}."""
    model = interpreter(path, "BUILTIN_WITHOUT_DEFAULT_DELEGATES", 1)
    (inp,), (out,) = model.get_input_details(), model.get_output_details()

    def feature(detail: dict) -> dict:
        return {"name": detail["name"], "shape": [int(d) for d in detail["shape"]], "dtype": detail["dtype"].__name__}

    return {"input": feature(inp), "output": feature(out)}


def device_script(manifest: dict, threads: int = 1, warmup_runs: int = 10, runs: int = 50) -> str:
    """run_on_android.sh: push every exported .tflite with adb, run `benchmark_model` on each (XNNPACK, op profiling
    to a proto per case), bring its log, its proto and the phone's sha256 of the file it ran into measured/ beside the
    manifest: what `opbench import measured/` reads (`read_measured`)."""
    files = [e["file"] for e in manifest["entries"] if e["status"] == "ok"]
    lines = [
        "#!/bin/sh",
        "# Measures every exported .tflite on the Android phone adb sees, with LiteRT's benchmark_model.",
        "# Get the tool for the phone's ABI from LiteRT's releases (android_aarch64_benchmark_model) and set",
        "# BENCHMARK_MODEL to it. Then: opbench import measured/ --device 'YOUR PHONE'",
        "set -eu",
        'cd "$(dirname "$0")"',
        ': "${BENCHMARK_MODEL:?set BENCHMARK_MODEL to the benchmark_model binary for the phone}"',
        f': "${{THREADS:={threads}}}" "${{WARMUP_RUNS:={warmup_runs}}}" "${{RUNS:={runs}}}"',
        "REMOTE=/data/local/tmp/opbench",
        "rm -rf measured && mkdir measured  # only this run's measurements are imported",
        'adb shell mkdir -p "$REMOTE"',
        'adb push "$BENCHMARK_MODEL" "$REMOTE/benchmark_model"',
        'adb shell chmod +x "$REMOTE/benchmark_model"',
        'echo "threads=$THREADS warmup_runs=$WARMUP_RUNS runs=$RUNS" > measured/settings.txt',
        "adb shell getprop ro.product.model >> measured/settings.txt",
        f"for file in {' '.join(shlex.quote(f) for f in files)}; do",
        '  name="${file%.tflite}"',
        '  adb push "$file" "$REMOTE/$file"',
        '  adb shell sha256sum "$REMOTE/$file" > "measured/$name.sha256"',
        '  adb shell "$REMOTE/benchmark_model" --graph="$REMOTE/$file" --num_threads="$THREADS" \\',
        '    --warmup_runs="$WARMUP_RUNS" --num_runs="$RUNS" --use_xnnpack=true \\',
        "    --enable_op_profiling=true --op_profiling_output_mode=proto \\",
        '    --op_profiling_output_file="$REMOTE/$name.pb" > "measured/$name.log" 2>&1 \\',
        '    || echo "benchmark_model failed on $file: see measured/$name.log"',
        '  adb pull "$REMOTE/$name.pb" "measured/$name.pb" || true',
        '  adb shell rm -f "$REMOTE/$file" "$REMOTE/$name.pb"',
        "done",
        "",
    ]
    return "\n".join(lines)


def export_format(precision: str = "float32", target: str | None = None) -> ExportFormat:
    """.tflite files for `opbench export`, timed on an Android phone by benchmark_model (run_on_android.sh)."""
    if precision != "float32" or target:
        raise OpbenchError("--precision and --target apply to Core ML only; LiteRT is exported in float32")
    return ExportFormat(
        "litert",
        ".tflite",
        {"precision": "float32", "converter": "litert_torch.convert"},
        {**litert_versions(), RUNTIME: package_version(RUNTIME)},
        tflite_artifact,
        describe,
        device_files={"run_on_android.sh": device_script},
        read_measured=read_measured,
    )


# benchmark_model's summary: "Inference timings in us: Init: 6128, First inference: 1340, Warmup (avg): 1190.4,
# Inference (avg): 1176.2"
INFERENCE_AVG = re.compile(r"Inference \(avg\):\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?)")
SETTINGS = re.compile(r"(\w+)=(\d+)")


def read_measured(folder: Path, manifest: dict) -> tuple[dict[str, DeviceMeasurement], list[str]]:
    """What run_on_android.sh brought back, per package file: `<name>.log` (the whole-model "Inference (avg)" line,
    microseconds), `<name>.pb` (benchmark_model's BenchmarkProfilingData: one row per operator, the delegate's own
    operators in place of its DELEGATE node), `<name>.sha256` (the phone's checksum of the file it ran). Every problem
    is returned, with the file it is in; a package without a log was not measured."""
    if package_version(RUNTIME) == "missing":
        raise OpbenchError(f"reading benchmark_model's profiles needs {RUNTIME}: {INSTALL}")
    settings = {k: int(v) for k, v in SETTINGS.findall(_read(folder / "settings.txt") or "")}
    found: dict[str, DeviceMeasurement] = {}
    problems: list[str] = []
    for log in sorted(folder.glob("*.log")):
        file = log.stem + ".tflite"
        text = _read(log) or ""
        match = INFERENCE_AVG.search(text)
        if match is None:
            problems.append(
                f"{log.name}: no 'Inference (avg)' line: benchmark_model did not finish (see the log; delete the "
                "case's files from this folder to import the others)"
            )
            continue
        mean_us = float(match.group(1))
        if not mean_us > 0:
            problems.append(f"{log.name}: Inference (avg) {match.group(1)} us must be a positive time")
            continue
        rows, problem = _profile_rows(log.with_suffix(".pb"))
        if problem:
            problems.append(problem)
            continue
        checksum = (_read(log.with_suffix(".sha256")) or "").split()
        found[file] = DeviceMeasurement(
            mean_s=mean_us * 1e-6,
            backend="litert-xnnpack",
            sha256=checksum[0] if checksum else "",
            runs=settings.get("runs"),
            settings={"threads": settings.get("threads"), "warmup_runs": settings.get("warmup_runs")},
            rows=rows,
            source=", ".join(p.name for p in (log, log.with_suffix(".pb")) if p.exists()),
        )
    return found, problems


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _profile_rows(path: Path) -> tuple[list[dict], str | None]:
    """The proto's per-operator rows (OpRow JSON, mean seconds per inference), or the problem with the file."""
    from ai_edge_litert import profiling_info_pb2
    from google.protobuf.message import DecodeError

    data = profiling_info_pb2.BenchmarkProfilingData()
    try:
        data.ParseFromString(path.read_bytes())
    except OSError:
        return [], f"{path.name}: missing: run_on_android.sh pulls one per package (op profiling)"
    except DecodeError as exc:
        return [], f"{path.name}: not a complete BenchmarkProfilingData proto ({exc}): truncated? measure again"
    runtime = data.runtime_profile
    delegated = [op for delegate in runtime.delegate_profiles for op in delegate.per_op_profiles]
    ops = [op for sub in runtime.subgraph_profiles for op in sub.per_op_profiles]
    if delegated:  # the DELEGATE node's time is the sum of its own operators'
        ops = [op for op in ops if op.node_type != "DELEGATE" and "Delegate" not in op.node_type] + delegated
    if not ops:
        return [], f"{path.name}: holds no operator rows (was it written with --enable_op_profiling=true?)"
    rows = []
    for op in ops:
        if op.inference_microseconds.avg < 0:
            return [], f"{path.name}: operator {op.name or op.node_type} has a negative time"
        rows.append({"name": op.name, "op_type": op.node_type, "time_s": op.inference_microseconds.avg * 1e-6})
    return rows, None


def partition(ops: list[dict]) -> tuple[Counter, Counter]:
    """(delegated, kept) operator counts of an interpreter's graph (`_get_ops_details()`): each DELEGATE node lists
    the tensors it reads and writes, so the operators it took are those found walking back from what it writes to
    what it reads; every other operator (besides the DELEGATE nodes) runs on TFLite's own kernels."""
    producer = {int(t): op for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    taken: set[int] = set()
    for node in (op for op in ops if op["op_name"] == "DELEGATE"):
        reads = {int(t) for t in node["inputs"]}
        frontier = [int(t) for t in node["outputs"]]
        while frontier:
            op = producer.get(frontier.pop())
            if op is None or op["index"] in taken:
                continue
            taken.add(op["index"])
            frontier += [int(t) for t in op["inputs"] if int(t) not in reads]
    originals = [op for op in ops if op["op_name"] != "DELEGATE"]
    delegated = Counter(op["op_name"] for op in originals if op["index"] in taken)
    return delegated, Counter(op["op_name"] for op in originals if op["index"] not in taken)


class LiteRT(Backend):
    def __init__(self, name: str):
        self.name = name
        self.resolver = RESOLVERS[name]

    def unavailable_reason(self) -> str | None:
        missing = [p for p in (RUNTIME, *CONVERTER) if package_version(p) == "missing"]
        return f"not installed: {', '.join(missing)} ({INSTALL})" if missing else None

    def versions(self) -> dict[str, str]:
        return {**litert_versions(), RUNTIME: package_version(RUNTIME)}

    def options(self) -> dict:
        return {"op_resolver": self.resolver, "converter": "litert_torch.convert"}

    def export(self, case: Case, config: RunConfig) -> None:
        tflite_artifact(case, config.cache)

    def profile(self, case: Case, config: RunConfig, runs: int):
        raise ProfilerUnavailable(
            f"{self.name}: LiteRT's Python interpreter has no per-operator profiler; per-operator times come from "
            "benchmark_model --enable_op_profiling on the phone (`opbench export --backend litert`, then import)"
        )

    def prepare(self, case: Case, config: RunConfig) -> Prepared:
        artifact = tflite_artifact(case, config.cache)
        model = interpreter(artifact.path, self.resolver, config.threads)
        model.allocate_tensors()
        (inp,), (out,) = model.get_input_details(), model.get_output_details()
        model.set_tensor(inp["index"], case.example_input().numpy())
        delegated, kept = partition(model._get_ops_details())

        def run() -> None:
            model.invoke()

        def infer() -> np.ndarray:
            run()
            return model.get_tensor(out["index"]).copy()

        return Prepared(
            run=run,
            infer=infer,
            export_s=artifact.export_s,
            cache_hit=artifact.cache_hit,
            info={
                **artifact.info,
                "precision_used": "float32 (float32 .tflite, no fp16 or int8 rewrite)",
                "delegated_ops": dict(sorted(delegated.items())),
                "non_delegated_ops": dict(sorted(kept.items())),
            },
        )
