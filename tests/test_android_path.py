"""The Android path: `opbench export --backend litert` writes .tflite files, a manifest, a template and the script that
runs benchmark_model on a phone; `opbench import` reads what that script brings back (a log and a per-operator proto
per package, written here through profiling_info_pb2) into a result file, or refuses it whole, writing nothing."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from opbench import export, importer, results
from opbench.backends import litert
from opbench.backends.base import package_version
from opbench.cache import ArtifactCache
from opbench.errors import OpbenchError
from opbench.suite import select_cases

pytestmark = pytest.mark.skipif(
    package_version("ai-edge-litert") == "missing", reason="ai-edge-litert is not installed (opbench[litert])"
)
CASES = ["obs4/act/relu/c1792_h7", "obs4/act/gelu_erf/c1792_h7"]


def fake_litert() -> export.ExportFormat:
    """LiteRT's export format with a stand-in converter: the import needs a manifest and packages, not litert-torch."""

    def artifact(case, cache):
        return cache.get_or_create(case, "fake-litert", {"v": 1}, ".tflite", lambda p: p.write_text(case.id))

    def describe(path: Path) -> dict:
        return {"input": {"name": "x", "shape": [1], "dtype": "float32"}, "output": {"name": "y", "shape": [1]}}

    real = litert.export_format()
    return dataclasses.replace(real, versions={"litert-torch": "0.10.0"}, artifact=artifact, describe=describe)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("litert")
    by_id = {c.id: c for c in select_cases()}
    fmt = fake_litert()
    export.export_cases([by_id[i] for i in CASES], fmt, root / "out", ArtifactCache(root / "cache"), log=io.StringIO())
    return root / "out"


def proto(rows: list[tuple[str, str, int]]) -> bytes:
    """A BenchmarkProfilingData as benchmark_model writes it: the DELEGATE node in the subgraph, XNNPACK's operators
    in the delegate's profile."""
    from ai_edge_litert import profiling_info_pb2

    data = profiling_info_pb2.BenchmarkProfilingData(model_name="m.tflite")
    subgraph = data.runtime_profile.subgraph_profiles.add(subgraph_name="main", subgraph_index=0)
    node = subgraph.per_op_profiles.add(node_type="TfLiteXNNPackDelegate", name="Delegate/XNNPACK:0")
    node.inference_microseconds.avg = sum(us for _, _, us in rows)
    delegate = data.runtime_profile.delegate_profiles.add(delegate_name="XNNPACK")
    for order, (name, op_type, us) in enumerate(rows):
        op = delegate.per_op_profiles.add(node_type=op_type, name=name, run_order=order, times_called=50)
        op.inference_microseconds.avg = us
        op.inference_microseconds.count = 50
    return data.SerializeToString()


LOG = """STARTING!
Graph: [/data/local/tmp/opbench/{file}]
Num threads: [1]
count=50 first=1290 curr=1201 min=1180 max=1302 avg=1210.5 std=21
Inference timings in us: Init: 6128, First inference: 1340, Warmup (avg): 1190.4, Inference (avg): {avg}
"""


def measured(out: Path, avg: str = "1210.5", op_us: int = 1000) -> Path:
    """The folder run_on_android.sh fills: settings, and per package a log, a proto and the phone's sha256."""
    folder = out / "measured"
    folder.mkdir()
    (folder / "settings.txt").write_text("threads=1 warmup_runs=10 runs=50\nPixel 8\n")
    for entry in json.loads((out / "manifest.json").read_text())["entries"]:
        name = entry["file"].removesuffix(".tflite")
        (folder / f"{name}.log").write_text(LOG.format(file=entry["file"], avg=avg))
        rows = [("[gelu]:1", "Unary Elementwise (NC)", op_us), ("[transpose]:0", "Transpose (ND)", 150)]
        (folder / f"{name}.pb").write_bytes(proto(rows))
        (folder / f"{name}.sha256").write_text(f"{entry['sha256']}  /data/local/tmp/opbench/{entry['file']}\n")
    return folder


@pytest.fixture
def work(exported, tmp_path) -> tuple[Path, Path]:
    out = tmp_path / "out"
    shutil.copytree(exported, out)
    return out, tmp_path / "device_results"


def test_export_writes_the_packages_manifest_template_and_the_phone_script(exported):
    manifest = export.load_manifest(exported / "manifest.json")
    assert manifest["format"] == "litert" and [e["status"] for e in manifest["entries"]] == ["ok", "ok"]
    assert (exported / "template.csv").exists()
    script = (exported / "run_on_android.sh").read_text()
    for entry in manifest["entries"]:
        assert (exported / entry["file"]).exists() and entry["file"] in script
    for flag in ("--use_xnnpack=true", "--enable_op_profiling=true", "--op_profiling_output_mode=proto"):
        assert flag in script
    assert '--num_threads="$THREADS"' in script and '--warmup_runs="$WARMUP_RUNS"' in script
    assert "adb push" in script and "adb pull" in script and "sha256sum" in script
    assert (exported / "run_on_android.sh").stat().st_mode & 0o100


def test_what_the_script_brought_back_imports_with_the_operators_as_the_profile(work):
    out, results_dir = work
    path = importer.import_file(measured(out), "Pixel 8", results_dir=results_dir, kind="phone", os_name="Android 15")
    run = results.load_run(path)
    assert run.device.name == "Pixel 8" and run.source == "import"
    by_case = {r.case: r for r in run.results}
    assert set(by_case) == set(CASES)
    result = by_case[CASES[1]]
    assert result.backend == "litert-xnnpack" and result.threads == 1 and result.suite == "obs4"
    assert result.stats.median_s == pytest.approx(1210.5e-6) and result.stats.rounds == 50
    rows = result.profile["rows"]
    assert [(r["op_type"], r["time_s"]) for r in rows] == [("Unary Elementwise (NC)", 1e-3), ("Transpose (ND)", 1.5e-4)]
    assert "mean" in run.protocol["method"]


def corrupt(folder: Path, kind: str) -> None:
    log = sorted(folder.glob("*.log"))[0]
    if kind == "wrong case":  # a package of another export: its log, proto and checksum
        for suffix in (".log", ".pb", ".sha256"):
            log.with_suffix(suffix).rename(folder / f"obs9-nothing-like-it{suffix}")
    elif kind == "checksum":
        log.with_suffix(".sha256").write_text("0" * 64 + "  /data/local/tmp/opbench/x.tflite\n")
    elif kind == "truncated proto":
        pb = log.with_suffix(".pb")
        pb.write_bytes(pb.read_bytes()[:-7])
    elif kind == "no inference line":
        log.write_text(log.read_text().replace("Inference (avg)", "Inference"))
    elif kind == "negative whole-model time":
        log.write_text(log.read_text().replace("Inference (avg): 1210.5", "Inference (avg): -1210.5"))


ERRORS = {
    "wrong case": "no such package in the manifest",
    "checksum": "not the manifest's",
    "truncated proto": "not a complete BenchmarkProfilingData",
    "no inference line": "no 'Inference (avg)' line",
    "negative whole-model time": "must be a positive time",
}


@pytest.mark.parametrize("kind", ERRORS)
def test_each_bad_device_output_is_refused_and_nothing_is_written(work, kind):
    out, results_dir = work
    folder = measured(out)
    corrupt(folder, kind)
    with pytest.raises(OpbenchError, match="rejected, nothing imported") as caught:
        importer.import_file(folder, "Pixel 8", results_dir=results_dir)
    assert ERRORS[kind] in str(caught.value)
    assert not results_dir.exists()


def test_a_negative_operator_time_is_refused(work):
    out, results_dir = work
    with pytest.raises(OpbenchError, match="negative time"):
        importer.import_file(measured(out, op_us=-5), "Pixel 8", results_dir=results_dir)
    assert not results_dir.exists()


def test_an_empty_folder_is_refused(work):
    out, results_dir = work
    (out / "measured").mkdir()
    with pytest.raises(OpbenchError, match="no measurements"):
        importer.import_file(out / "measured", "Pixel 8", results_dir=results_dir)


@pytest.mark.skipif(package_version("litert-torch") == "missing", reason="litert-torch is not installed")
def test_a_real_export_describes_its_tflite_file(tmp_path):
    (relu,) = [c for c in select_cases() if c.id == CASES[0]]
    manifest = export.export_cases(
        [relu], litert.export_format(), tmp_path / "out", ArtifactCache(tmp_path / "cache"), log=io.StringIO()
    )
    (entry,) = manifest["entries"]
    assert entry["status"] == "ok" and entry["input"]["shape"] == [1, 1792, 7, 7]
    assert entry["output"]["dtype"] == "float32"


def test_cli_imports_the_measured_folder_and_refuses_a_bad_one_with_exit_2(work, capsys):
    from opbench import cli

    out, results_dir = work
    folder = measured(out)
    base = ["--device", "Pixel 8", "--results-dir", str(results_dir)]
    log = sorted(folder.glob("*.log"))[0]
    good = log.read_text()
    log.write_text("benchmark_model crashed\n")
    assert cli.main(["import", str(folder), *base]) == 2
    assert "no 'Inference (avg)' line" in capsys.readouterr().err and not results_dir.exists()
    log.write_text(good)
    assert cli.main(["import", str(folder), *base]) == 0
    assert "imported measurements of Pixel 8" in capsys.readouterr().err
    (run,) = results.load_runs([results_dir / "pixel-8"])
    assert {r.backend for r in run.results} == {"litert-xnnpack"}


FAKE_ADB = """#!/bin/sh
# adb for a phone that is a folder: push/pull copy, shell runs the command with the phone's paths in that folder
getprop() { echo "Fake Phone"; }
command="$1"; shift
case "$command" in
  push) mkdir -p "$FAKE_PHONE$(dirname "$2")" && cp "$1" "$FAKE_PHONE$2" ;;
  pull) cp "$FAKE_PHONE$1" "$2" ;;
  shell) eval "$(printf '%s ' "$@" | sed "s#/data/local/tmp#$FAKE_PHONE/data/local/tmp#g")" ;;
esac
"""

FAKE_BENCHMARK_MODEL = """#!{python}
import sys
from ai_edge_litert import profiling_info_pb2

args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
assert args["use_xnnpack"] == "true" and args["enable_op_profiling"] == "true", args
assert args["op_profiling_output_mode"] == "proto"
data = profiling_info_pb2.BenchmarkProfilingData(model_name=args["graph"])
op = data.runtime_profile.subgraph_profiles.add().per_op_profiles.add(node_type="CONV_2D", name="conv")
op.inference_microseconds.avg = 700
with open(args["op_profiling_output_file"], "wb") as f:
    f.write(data.SerializeToString())
print("Num threads: [" + args["num_threads"] + "]")
print("Inference timings in us: Init: 10, First inference: 900, Warmup (avg): 800, Inference (avg): 750.5")
"""


def test_the_script_runs_benchmark_model_per_package_and_its_output_imports(work, tmp_path):
    """run_on_android.sh against a stand-in adb and benchmark_model: what it brings back is what import reads."""
    import stat
    import sys

    out, results_dir = work
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "adb").write_text(FAKE_ADB)
    (tools / "benchmark_model").write_text(FAKE_BENCHMARK_MODEL.format(python=sys.executable))
    for tool in tools.iterdir():
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    env = {
        **os.environ,
        "PATH": f"{tools}:{os.environ['PATH']}",
        "FAKE_PHONE": str(tmp_path / "phone"),
        "BENCHMARK_MODEL": str(tools / "benchmark_model"),
        "THREADS": "2",
    }
    done = subprocess.run([str(out / "run_on_android.sh")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    path = importer.import_file(out / "measured", "Fake Phone", results_dir=results_dir)
    run = results.load_run(path)
    assert {r.case for r in run.results} == set(CASES)
    assert {r.threads for r in run.results} == {2} and {r.stats.median_s for r in run.results} == {750.5e-6}
    assert {r.profile["rows"][0]["op_type"] for r in run.results} == {"CONV_2D"}
