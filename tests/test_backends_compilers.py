"""The compiler backends: each prepares, verifies against eager and records what it did; caches work; GPU ones
say why they cannot run on a machine without a GPU. Backends whose package is missing are skipped with the reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from builders import available, case, timer
from torch import nn

from opbench.backends import REGISTRY, RunConfig, get_backend, parse_backends
from opbench.cache import ArtifactCache
from opbench.case import make_case
from opbench.errors import BackendUnavailable
from opbench.measure import path as measuring
from opbench.results import Device, Result, load_run, new_run, validate

COMPILERS = ("torch-inductor", "openvino-cpu", "openvino-cpu-default", "executorch-xnnpack")
GPU = ("torch-cuda", "ort-cuda", "ort-tensorrt")
# small cases: an activation alone, and an LN-Linear projection (LayerNorm is not delegated everywhere)
CASES = ("obs4/act/relu/c1792_h7", "obs3/proj/ln_linear/c448_h7")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> ArtifactCache:
    return ArtifactCache(tmp_path_factory.mktemp("artifacts"))


def test_compilers_and_gpu_backends_are_registered():
    assert set(COMPILERS + GPU) <= set(REGISTRY)
    assert parse_backends("all") == list(REGISTRY)


@pytest.mark.parametrize("name", COMPILERS)
@pytest.mark.parametrize("case_id", CASES)
def test_backend_verifies_against_eager_then_times(name, case_id, cache):
    backend = available(name)
    calls: list[int] = []
    outcome = measuring.measure(case(case_id), backend, RunConfig(threads=1, cache=cache), timer(calls))
    assert outcome.status == "ok", outcome.reason
    assert outcome.check.passed and outcome.check.max_abs_err <= outcome.check.tolerance
    assert calls == [3]  # timed only after the check passed
    assert backend.precision in measuring.TOLERANCES
    versions = backend.versions()
    assert versions["torch"] == torch.__version__ and all(v != "missing" for v in versions.values())
    assert backend.options()
    json.dumps(outcome.prepared.info)  # plain JSON, recorded in the result


@pytest.mark.parametrize("name", COMPILERS)
def test_second_prepare_exports_nothing(name, tmp_path):
    backend = available(name)
    config = RunConfig(threads=1, cache=ArtifactCache(tmp_path))
    relu = case(CASES[0])
    first = backend.prepare(relu, config)
    second = backend.prepare(relu, config)
    assert second.cache_hit
    if name == "torch-inductor":  # in-process: the compiled module is reused, nothing is compiled again
        assert second.info["in_process_cache"] and second.export_s == 0.0
    else:  # a fresh cache folder: the first prepare exported to it
        assert not first.cache_hit and first.export_s > 0
    if name.startswith("openvino"):  # the IR comes from disk; only compile_model runs again
        assert second.info["convert_s"] == 0.0 and second.export_s == pytest.approx(second.info["compile_s"], abs=1e-3)
    elif name == "executorch-xnnpack":
        assert second.export_s == 0.0
    assert (second.infer() == first.infer()).all()


def test_openvino_default_reports_the_precision_it_really_uses(cache):
    backend = available("openvino-cpu-default")
    import openvino as ov

    from opbench.backends.openvino_cpu import _precision_name

    library_default = _precision_name(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT"))
    prepared = backend.prepare(case(CASES[0]), RunConfig(threads=1, cache=cache))
    assert prepared.info["inference_precision"] == backend.precision == library_default
    pinned = available("openvino-cpu")
    prepared = pinned.prepare(case(CASES[0]), RunConfig(threads=1, cache=cache))
    assert prepared.info["inference_precision"] == pinned.precision == "float32"
    assert prepared.info["inference_num_threads"] == 1


def test_executorch_records_delegated_and_non_delegated_nodes(cache):
    backend = available("executorch-xnnpack")
    relu = backend.prepare(case(CASES[0]), RunConfig(threads=1, cache=cache)).info
    assert relu["delegated_ops"] == {"aten_relu_default": 1} and relu["non_delegated_nodes"] == 0
    ln = backend.prepare(case(CASES[1]), RunConfig(threads=1, cache=cache)).info
    assert ln["delegated_nodes"] == sum(ln["delegated_ops"].values()) >= 1  # the Linear at least
    assert ln["non_delegated_nodes"] == sum(ln["non_delegated_ops"].values())
    assert ln["threadpool_threads"] == 1


def test_executorch_lowers_a_case_it_will_profile_once_with_its_etrecord(tmp_path, monkeypatch):
    """The profile needs an ETRecord made at lowering time; a profiled case (a model) is lowered once with it, not
    once for timing and again for profiling (a model's lowering takes 10-60 s on 2 cores)."""
    from opbench.backends import executorch_xnnpack

    backend, lowered = available("executorch-xnnpack"), []
    real = executorch_xnnpack.export_program

    def counting(case, folder, etrecord=False):
        lowered.append(etrecord)
        real(case, folder, etrecord)

    monkeypatch.setattr(executorch_xnnpack, "export_program", counting)
    config = RunConfig(cache=ArtifactCache(tmp_path), profiled=True)
    backend.prepare(case(CASES[1]), config)
    assert backend.profile(case(CASES[1]), config, runs=2)
    assert lowered == [True]
    backend.prepare(case(CASES[0]), RunConfig(cache=config.cache))  # not profiled: no ETRecord
    assert lowered == [True, False]


def test_executorch_refuses_tanh_gelu_that_xnnpack_computes_as_erf_gelu(cache):
    """XNNPACK computes gelu(approximate='tanh') as exact GELU: timing that would time another function."""
    backend = available("executorch-xnnpack")
    outcome = measuring.measure(case("obs4/act/gelu_tanh/c1792_h7"), backend, RunConfig(cache=cache), timer([]))
    assert outcome.status == "unsupported" and "approximate='tanh'" in outcome.reason
    erf = measuring.measure(case("obs4/act/gelu_erf/c1792_h7"), backend, RunConfig(cache=cache), timer([]))
    assert erf.status == "ok" and erf.prepared.info["delegated_ops"] == {"aten_gelu_default": 1}


def test_executorch_keeps_a_softmax_after_a_convolution_out_of_xnnpack_which_computes_it_wrongly(cache):
    """EfficientFormerV2's talking-head attention (1x1 conv, softmax over the last axis, 1x1 conv): XNNPACK lays the
    conv's output out channels-last and normalizes over the channels (max abs error 0.18 of 0.34, every V2 model
    failed its check). Left to the portable kernel, it passes; a softmax after a view (LeViT, DeiT) stays delegated."""
    backend = available("executorch-xnnpack")
    config = RunConfig(cache=cache)
    outcome = measuring.measure(softmax_case("talking_head", nn.Identity()), backend, config, timer([]))
    assert outcome.status == "ok", outcome.reason
    assert outcome.prepared.info["non_delegated_ops"] == {"aten__softmax_default": 1}
    viewed = softmax_case("viewed", nn.Sequential(nn.Flatten(2), nn.Unflatten(2, (49, 49))))
    outcome = measuring.measure(viewed, backend, config, timer([]))
    assert outcome.status == "ok" and outcome.prepared.info["delegated_ops"]["aten__softmax_default"] == 1


def softmax_case(variant: str, between: nn.Module):
    def build() -> nn.Module:
        return nn.Sequential(nn.Conv2d(8, 8, 1), between, nn.Softmax(dim=-1), nn.Conv2d(8, 8, 1))

    return make_case("t", "softmax", variant, build, (1, 8, 49, 49), "t")


def test_inductor_compile_time_is_export_not_latency(tmp_path):
    from opbench.backends import torch_inductor

    backend = available("torch-inductor")
    relu = case(CASES[0])
    torch_inductor._COMPILED.clear()
    prepared = backend.prepare(relu, RunConfig(threads=1, cache=ArtifactCache(tmp_path)))
    assert not prepared.cache_hit or prepared.info["fx_graph_cache"] == "hit"
    assert prepared.export_s > 0 and prepared.export_s == pytest.approx(prepared.info["compile_s"], abs=1e-3)
    assert (tmp_path / "inductor").is_dir()  # Inductor's own caches live in opbench's cache folder


@pytest.mark.parametrize("name", GPU)
def test_gpu_backends_unavailable_with_a_reason_without_gpu(name):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    reason = REGISTRY[name]().unavailable_reason()
    assert reason and ("CUDA" in reason or "TensorRT" in reason or "Tensorrt" in reason)
    with pytest.raises(BackendUnavailable, match=name):
        get_backend(name)


def test_result_records_accept_backend_info():
    result = Result(case="c", suite="obs4", backend="b", info={"delegated_nodes": 3})
    validate(new_run(Device("test host", "test-host"), [result], "pytest-benchmark").to_json(), "test")


def test_default_run_covers_available_backends_and_lists_unavailable(tmp_path):
    """`pytest cases/` with the default backends: every available one runs, the others are listed with reasons."""
    root = Path(__file__).resolve().parents[1]
    results = tmp_path / "results"
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(root / "cases" / "test_overhead.py"),
        "--benchmark-only",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--opbench-results-dir={results}",
        f"--opbench-cache-dir={tmp_path / 'cache'}",
        "--opbench-passes=1",
        "--benchmark-min-rounds=3",
        "--benchmark-max-time=0.01",
        "--benchmark-warmup-iterations=1",
    ]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = results.rglob("*.json")
    run = load_run(path).to_json()
    ran = {r["backend"] for r in run["results"]}
    unavailable = run.get("unavailable_backends", {})
    assert ran | set(unavailable) == set(REGISTRY) and not ran & set(unavailable)
    assert {"torch-eager", "ort-cpu", "ort-cpu-noopt"} <= ran
    assert all(unavailable.values())
    assert all(r["export_s"] is not None and "info" in r for r in run["results"])
