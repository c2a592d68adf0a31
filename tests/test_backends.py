"""Backends: prepare + verify on a few cases, the export cache, unsupported and wrong artifacts."""

import numpy as np
import pytest

from opbench.backends import (
    DEFAULT_BACKENDS,
    Backend,
    Prepared,
    RunConfig,
    get_backend,
    onnxruntime,
    parse_backends,
)
from opbench.cache import ArtifactCache
from opbench.errors import OpbenchError, UnsupportedCase
from opbench.measure.path import check, measure
from opbench.suite import select_cases

CASES = [
    "overhead/floor/add_one",
    "obs3/proj/ln_linear/c448_h7",
    "obs2/mixer/mhsa_4d/c448_h7",
    "obs4/act/gelu_tanh/c1792_h7",
]


@pytest.fixture(scope="module")
def cases():
    found = {c.id: c for c in select_cases() if c.id in CASES}
    return [found[i] for i in CASES]


@pytest.fixture
def config(tmp_path):
    return RunConfig(threads=1, cache=ArtifactCache(tmp_path / "cache"))


def timer_calls():
    calls = []
    return calls, lambda fn: calls.append(fn())


@pytest.mark.parametrize("name", DEFAULT_BACKENDS)
def test_prepare_verifies_against_eager_then_times(name, cases, config):
    backend = get_backend(name)
    for case in cases:
        calls, timer = timer_calls()
        outcome = measure(case, backend, config, timer)
        assert outcome.status == "ok", outcome.reason
        assert outcome.check.passed and outcome.check.max_abs_err <= outcome.check.tolerance
        assert len(calls) == 1


def test_second_prepare_exports_nothing(cases, config, monkeypatch):
    backend = get_backend("ort-cpu")
    first = backend.prepare(cases[1], config)
    assert not first.cache_hit and first.export_s > 0

    def no_export(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnxruntime, "export_onnx", no_export)
    for name in ("ort-cpu", "ort-cpu-noopt"):  # the two share one file
        again = get_backend(name).prepare(cases[1], config)
        assert again.cache_hit and again.export_s == 0
        assert check(cases[1], again, "float32").passed


def test_export_failure_is_unsupported_and_cached(cases, config, monkeypatch):
    def broken(case, path):
        raise RuntimeError("no such op: aten::frobnicate")

    monkeypatch.setattr(onnxruntime, "export_onnx", broken)
    outcome = measure(cases[0], get_backend("ort-cpu"), config, lambda fn: pytest.fail("timed"))
    assert outcome.status == "unsupported" and "aten::frobnicate" in outcome.reason
    monkeypatch.setattr(onnxruntime, "export_onnx", lambda *a: pytest.fail("retried a cached failure"))
    with pytest.raises(UnsupportedCase, match="frobnicate"):
        get_backend("ort-cpu").prepare(cases[0], config)


class WrongBackend(Backend):
    name = "wrong"

    def versions(self):
        return {}

    def prepare(self, case, config):
        out = np.zeros(1, dtype=np.float32)
        return Prepared(run=lambda: None, infer=lambda: out + 1.0)


def test_wrong_output_fails_and_is_never_timed(cases, config):
    outcome = measure(cases[0], WrongBackend(), config, lambda fn: pytest.fail("a wrong artifact was timed"))
    assert outcome.status == "failed"
    assert "max abs error" in outcome.reason and not outcome.check.passed


def test_unknown_backends_are_rejected():
    with pytest.raises(OpbenchError, match="unknown backend 'tvm'"):
        get_backend("tvm")
    with pytest.raises(OpbenchError, match="known backends"):
        parse_backends("torch-eager,nope")
    with pytest.raises(OpbenchError):
        parse_backends(" , ")
    assert parse_backends("ort-cpu, torch-eager") == ["ort-cpu", "torch-eager"]


def test_threads_are_applied(cases, tmp_path):
    import torch

    get_backend("torch-eager").prepare(cases[0], RunConfig(threads=2, cache=ArtifactCache(tmp_path)))
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
