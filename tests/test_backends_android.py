"""The runtimes Android apps ship (LiteRT, MNN, ncnn): each verifies against eager and records what it ran; ncnn's
unconverted layers are unsupported by name; MNN's GELU is exact; nothing ever runs MNN's logging wrapper or pip.
A backend whose package is missing is skipped with the reason."""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest
from builders import available, case, timer
from torch import nn

from opbench.backends import REGISTRY, RunConfig
from opbench.cache import ArtifactCache
from opbench.case import make_case
from opbench.measure import path as measuring

ANDROID = ("litert-xnnpack", "litert-builtin", "mnn-cpu", "ncnn-cpu")
# an activation alone, an LN-Linear projection on 2-D tokens, a GELU MLP (where MNN's own GELU is approximate)
CASES = ("obs4/act/relu/c1792_h7", "obs3/proj/ln_linear/c448_h7", "obs4/mlp/gelu_erf/c48_h56")
PACKAGE = Path(__file__).resolve().parents[1] / "opbench"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> ArtifactCache:
    return ArtifactCache(tmp_path_factory.mktemp("artifacts"))


@pytest.mark.parametrize("name", ANDROID)
@pytest.mark.parametrize("case_id", CASES)
def test_android_backend_verifies_against_eager_then_times_with_stable_output(name, case_id, cache):
    backend = available(name)
    calls: list[int] = []
    outcome = measuring.measure(case(case_id), backend, RunConfig(threads=1, cache=cache), timer(calls))
    assert outcome.status == "ok", outcome.reason
    assert outcome.check.passed and calls == [3]
    # after the timed calls the same bound input still gives eager's answer (MNN reuses its input's memory in a run)
    assert measuring.check(case(case_id), outcome.prepared, backend.precision).passed
    info = outcome.prepared.info
    assert "float32" in info["precision_used"]
    json.dumps(info)
    assert all(v != "missing" for v in backend.versions().values())


@pytest.mark.parametrize("name", ANDROID)
def test_second_prepare_exports_nothing(name, tmp_path):
    backend = available(name)
    config = RunConfig(threads=1, cache=ArtifactCache(tmp_path))
    first = backend.prepare(case(CASES[0]), config)
    second = backend.prepare(case(CASES[0]), config)
    assert not first.cache_hit and first.export_s > 0
    assert second.cache_hit and second.export_s == 0.0
    assert (second.infer() == first.infer()).all()


@pytest.mark.parametrize("name", ANDROID)
def test_a_relative_cache_folder_works(name, tmp_path, monkeypatch):
    """The default cache is `.opbench_cache`, relative: pnnx runs in a folder of its own and once wrote elsewhere."""
    backend = available(name)
    monkeypatch.chdir(tmp_path)
    outcome = measuring.prepare(case(CASES[0]), backend, RunConfig(cache=ArtifactCache(".opbench_cache")))
    assert outcome.status == "ok", outcome.reason


def test_litert_says_which_operators_xnnpack_took(cache):
    xnnpack = available("litert-xnnpack").prepare(case(CASES[1]), RunConfig(cache=cache)).info
    assert xnnpack["delegated_ops"]["FULLY_CONNECTED"] == 1 and xnnpack["non_delegated_ops"] == {}
    builtin = available("litert-builtin").prepare(case(CASES[1]), RunConfig(cache=cache)).info
    assert builtin["delegated_ops"] == {} and builtin["non_delegated_ops"] == xnnpack["delegated_ops"]


def test_litert_partition_leaves_operators_outside_the_delegate_undelegated():
    from opbench.backends.litert import partition

    ops = [
        {"index": 0, "op_name": "CONV_2D", "inputs": [0, 1], "outputs": [2]},
        {"index": 1, "op_name": "CUSTOM", "inputs": [2], "outputs": [3]},
        {"index": 2, "op_name": "ADD", "inputs": [3, 4], "outputs": [5]},
        {"index": 3, "op_name": "DELEGATE", "inputs": [0, 1], "outputs": [2]},
        {"index": 4, "op_name": "DELEGATE", "inputs": [3, 4], "outputs": [5]},
    ]
    delegated, kept = partition(ops)
    assert delegated == {"CONV_2D": 1, "ADD": 1} and kept == {"CUSTOM": 1}


def test_mnn_times_the_exact_gelu_and_says_so(cache):
    """MNN's own GELU kernel is the tanh approximation (4.7e-4 off): the backend exports the exact erf form at opset
    18, which passes the float32 check, and records that the GELU ran as elementwise ops."""
    import onnx

    backend = available("mnn-cpu")
    config = RunConfig(cache=cache)
    outcome = measuring.prepare(case("obs4/mlp/gelu_erf/c48_h56"), backend, config)
    assert outcome.status == "ok" and outcome.check.tolerance <= 1e-3, outcome.reason
    assert any("exact GELU" in note for note in outcome.prepared.info["unfused_or_approximated"])
    graph = onnx.load(str(backend.onnx(case("obs4/mlp/gelu_erf/c48_h56"), config).path)).graph
    types = {n.op_type for n in graph.node}
    assert "Erf" in types and "Gelu" not in types
    relu = measuring.prepare(case(CASES[0]), backend, config)
    assert relu.prepared.info["unfused_or_approximated"] == []


class FiveD(nn.Module):
    """ViT-style heads: a 5-D reshape and permute that pnnx leaves as torch/Tensor layers."""

    def forward(self, x):
        b, n, c = x.shape
        q = x.reshape(b, n, 2, 4, c // 8).permute(2, 0, 3, 1, 4)
        return (q[0] * q[1]).transpose(1, 2).reshape(b, n, c // 2)


def test_ncnn_reports_layers_pnnx_left_unconverted_as_unsupported(tmp_path):
    backend = available("ncnn-cpu")
    five = make_case("t", "five", "d", FiveD, (1, 49, 64), "t")
    outcome = measuring.prepare(five, backend, RunConfig(cache=ArtifactCache(tmp_path)))
    assert outcome.status == "unsupported"
    assert "ncnn cannot run" in outcome.reason and "Tensor.reshape" in outcome.reason


def test_leftover_layers_are_found_by_type_with_their_names():
    from opbench.backends.ncnn import leftover_layers

    param = "7767517\n3 3\nInput in0 0 1 in0\nTensor.reshape reshape_0 1 1 in0 1 shape=(1,2)\nGELU gelu_1 1 1 1 out0\n"
    assert leftover_layers(param) == ["Tensor.reshape reshape_0"]


def test_no_backend_imports_mnns_logging_wrapper():
    """MNN's `mnnconvert` / MNN.tools wrapper runs `pip install` and uploads logs: no opbench module may import it."""
    for file in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            assert not any(n == "MNN.tools" or n.startswith("MNN.tools.") for n in names), file


def test_mnn_conversion_runs_no_pip_and_loads_no_wrapper(tmp_path, monkeypatch):
    import sys

    backend = available("mnn-cpu")
    started: list = []
    real_popen = subprocess.Popen

    def watched_popen(args, *rest, **kwargs):
        started.append(args)
        return real_popen(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", watched_popen)
    monkeypatch.setattr(os, "system", lambda command: started.append(command) or 1)
    outcome = measuring.prepare(case(CASES[0]), backend, RunConfig(cache=ArtifactCache(tmp_path)))
    assert outcome.status == "ok", outcome.reason
    assert not any("pip" in str(command) for command in started)
    assert not [m for m in sys.modules if m.startswith("MNN.tools")]


@pytest.mark.parametrize("name", ANDROID)
def test_android_backend_without_its_package_is_unavailable_with_the_reason(name, monkeypatch):
    import importlib.util

    from opbench.backends import base

    monkeypatch.setattr(base.importlib.metadata, "version", _missing)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    reason = REGISTRY[name]().unavailable_reason()
    assert reason and "not installed" in reason and "opbench[" in reason


def _missing(package: str):
    import importlib.metadata

    raise importlib.metadata.PackageNotFoundError(package)


@pytest.mark.parametrize("name", ("litert-xnnpack", "ncnn-cpu"))
def test_litert_and_ncnn_say_why_they_have_no_profiler(name, cache):
    from opbench.errors import ProfilerUnavailable

    with pytest.raises(ProfilerUnavailable, match=name):
        available(name).profile(case(CASES[0]), RunConfig(cache=cache), runs=2)


FAKE_CONVERTER = """
import sys
from pathlib import Path

def mnnconvert(args):
    Path(".__convert_external_data.bin").write_bytes(b"spilled weights")  # what MNN's optimizer does
    if "refuse" in args[4]:
        print("unsupported op: Frobnicate", file=sys.stderr)
        return False
    Path(args[-1]).write_bytes(b"model")
    return True
"""


def test_mnn_converter_spills_its_weights_in_a_folder_of_its_own(tmp_path, monkeypatch):
    """MNN's converter writes `.__convert_external_data.bin` in its working directory: conversions run side by side
    (export-ahead workers) must not share one, so each runs in a fresh folder and leaves the caller's clean."""
    from opbench.backends.mnn import mnnconvert

    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "_tools.py").write_text(FAKE_CONVERTER)
    monkeypatch.setenv("PYTHONPATH", str(fake))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "case.onnx").write_bytes(b"onnx")
    mnnconvert(Path("case.onnx"), Path("case.mnn"))  # relative paths, as from a relative cache folder
    assert (work / "case.mnn").read_bytes() == b"model"
    assert not (work / ".__convert_external_data.bin").exists()
    (work / "refuse.onnx").write_bytes(b"onnx")
    with pytest.raises(RuntimeError, match="refused refuse.onnx: unsupported op: Frobnicate"):
        mnnconvert(Path("refuse.onnx"), Path("refuse.mnn"))
