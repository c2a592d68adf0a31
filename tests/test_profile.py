"""Profiles: the category rule set on constructed rows, the breakdown's arithmetic, and real profiles of a small model
that follows the naming contract on every CPU backend with a profiler (those not installed are skipped with the
reason; the ones without a profiler say why)."""

from __future__ import annotations

import json

import pytest
import torch
from contract_model import ContractFormer, small

from opbench.attribution import (
    CATEGORIES,
    ModuleIndex,
    OpRow,
    breakdown,
    categorize,
    common_path,
    merge_rows,
    typical_mean,
)
from opbench.backends import REGISTRY, RunConfig
from opbench.backends.base import Backend, Prepared
from opbench.cache import ArtifactCache
from opbench.case import make_case
from opbench.errors import OpbenchError, ProfilerUnavailable
from opbench.measure.profile_pass import PROFILE_RUNS, profile_case, profile_pass

MIXER = "stages.1.blocks.2.token_mixer"
MLP = "stages.0.blocks.0.mlp"

RULES = [
    # path components
    (OpRow("c", "aten::conv2d", "stem.0.0", "Conv2d", kernel=3), "stem"),
    (OpRow("c", "Conv", "stages.1.downsample.0", "Conv2d", kernel=3), "downsampling"),
    (OpRow("fc", "Gemm", "head.fc", "Linear"), "head"),
    (OpRow("mean", "ReduceMean", "head", "Head"), "head"),
    (OpRow("pool", "AvgPool", "head.pool", "AdaptiveAvgPool2d"), "head"),
    # token mixers: pooling, attention pieces, spatial / depthwise convolutions inside blocks
    (OpRow("pool", "AveragePool", f"{MIXER}.pool", "AvgPool2d"), "token_mixer"),
    (OpRow("gap", "GlobalAveragePool", "stages.3.blocks.0.se", "Foo"), "token_mixer"),
    (OpRow("sub", "Sub", MIXER, "PoolMixer"), "token_mixer"),
    (OpRow("qk", "MatMul", MIXER, "Attention"), "token_mixer"),
    (OpRow("bias", "aten::add", MIXER, "Attention"), "token_mixer"),
    (OpRow("sm", "aten::softmax", MIXER, "Attention"), "token_mixer"),
    (OpRow("sm", "Softmax (NC, F32)"), "token_mixer"),
    (OpRow("bmm", "Batch Matrix Multiply (NC, F32) GEMM"), "token_mixer"),
    (OpRow("dw", "Conv", f"{MLP}.dw", "Conv2d", kernel=3), "token_mixer"),
    (OpRow("scale", "Mul", f"{MIXER}.talking_head", "Foo"), "token_mixer"),
    # projections: Linear and 1x1 convolutions, whatever op the runtime runs them as
    (OpRow("c", "aten::conv2d", f"{MLP}.0.0", "Conv2d", kernel=1), "projection"),
    (OpRow("qkv", "aten::linear", f"{MIXER}.qkv", "Linear"), "projection"),
    (OpRow("mm", "MatMul", "stages.1.blocks.2.mlp.0", "Linear"), "projection"),
    (OpRow("bias", "Add", "stages.1.blocks.2.mlp.0", "Linear"), "projection"),
    (OpRow("fc", "Fully Connected (NC, F32) GEMM"), "projection"),
    (OpRow("fc", "FullyConnected", "stages.1.blocks.2", "Meta3D"), "projection"),
    # norms and activations the runtime kept as their own ops win over the path
    (OpRow("bn", "aten::batch_norm", "stem.0.1", "BatchNorm2d"), "normalization"),
    (OpRow("ln", "LayerNormalization", "head.norm", "LayerNorm"), "normalization"),
    (OpRow("ln", "SkipLayerNormalization", "stages.1.blocks.2.norm2", "LayerNorm"), "normalization"),
    (OpRow("ln", "MVN", "stages.1.blocks.2.norm1", "LayerNorm"), "normalization"),
    (OpRow("ln", "aten.native_layer_norm.default"), "normalization"),
    (OpRow("mean", "ReduceMean", "stages.1.blocks.2.norm1", "LayerNorm"), "normalization"),  # a decomposed norm
    (OpRow("relu", "Relu", "stem.1", "ReLU"), "activation"),
    (OpRow("gelu", "aten::gelu", f"{MLP}.1", "GELU"), "activation"),
    (OpRow("gelu", "GELU (NC)"), "activation"),
    (OpRow("erf", "Erf", f"{MLP}.1", "GELU"), "activation"),
    (OpRow("mul", "Mul", f"{MLP}.1", "GELU"), "activation"),  # a decomposed GELU
    (OpRow("hs", "HardSigmoid", "stages.0.blocks.0.mlp.act", "Hardswish"), "activation"),
    # data movement, wherever it is
    (OpRow("r", "aten::reshape", MIXER, "Attention"), "reshape"),
    (OpRow("t", "Transpose", "stages.1.blocks.0", "To3D"), "reshape"),
    (OpRow("r", "ReorderOutput", "stem.1", "ReLU"), "reshape"),
    (OpRow("r", "Reorder", "head", "Head"), "reshape"),
    (OpRow("t", "Transpose (ND, X32)"), "reshape"),
    (OpRow("s", "VariadicSplit", MIXER, "Attention"), "reshape"),
    (OpRow("e", "aten::expand_copy", MIXER, "Attention"), "reshape"),
    # fused nodes count as the op that absorbed them
    (OpRow("relu_nchwc", "Conv", "stem.0.0", "Conv2d", kernel=3), "stem"),
    (OpRow("getitem_6_nchwc", "Conv", f"{MLP}.0.0", "Conv2d", kernel=1), "projection"),
    (OpRow("fused", "FusedConv", f"{MLP}.0.0", "Conv2d", kernel=1), "projection"),
    (OpRow("fc+gelu", "FullyConnected", "stages.1.blocks.2.mlp.1", "GELU"), "projection"),
    (OpRow("conv+bn", "Convolution", f"{MLP}.0.1", "BatchNorm2d"), "other"),  # not normalization: a conv ran
    # everything else
    (OpRow("add", "Add", "stages.0.blocks.0", "Meta4D"), "other"),
    (OpRow("ls", "aten::mul", "stages.0.blocks.0", "Meta4D"), "other"),
    (OpRow("call", "DELEGATE_CALL"), "other"),
    (OpRow("conv", "Conv", "stages.0.blocks.0", "Meta4D"), "other"),  # a convolution of unknown kernel
    (OpRow("add", "Add", "stages.0.header.stemless", "Foo"), "other"),  # components, not substrings
]


@pytest.mark.parametrize(("row", "category"), RULES, ids=[f"{r.op_type}@{r.scope or '-'}" for r, _ in RULES])
def test_rule_set(row: OpRow, category: str):
    assert categorize(row) == category


def test_rule_set_reaches_every_category():
    assert {category for _, category in RULES} == set(CATEGORIES)
    assert CATEGORIES[0] == "stem" and CATEGORIES[-1] == "other" and len(set(CATEGORIES)) == 9


def test_row_json_round_trip_keeps_no_category():
    row = OpRow("node_Conv_69", "Conv", "stem.0.0", "Conv2d", 1.25e-5, 3)
    data = json.loads(json.dumps(row.to_json()))
    assert OpRow.from_json(data) == row
    assert set(data) == {"name", "op_type", "scope", "module_class", "time_s", "kernel"}
    assert OpRow.from_json({"name": "n", "op_type": "Relu", "time_s": 1e-6}) == OpRow("n", "Relu", time_s=1e-6)


def test_breakdown_sums_categories_and_coverage():
    rows = [
        OpRow("a", "aten::conv2d", "stem.0.0", "Conv2d", 3e-3, 3),
        OpRow("b", "Relu", "stem.1", "ReLU", 1e-3),
        OpRow("c", "Transpose (ND, X32)", "", "", 0.5e-3),
        OpRow("d", "Gemm", "head.fc", "Linear", 0.5e-3),
    ]
    result = breakdown(rows, e2e_median_s=4e-3, top=2)
    assert list(result.seconds) == list(CATEGORIES)
    assert result.seconds["stem"] == pytest.approx(3e-3)
    assert result.seconds["activation"] == pytest.approx(1e-3)
    assert result.seconds["reshape"] == pytest.approx(0.5e-3)
    assert result.seconds["head"] == pytest.approx(0.5e-3)
    assert result.seconds["token_mixer"] == 0.0
    assert result.profiled_s == pytest.approx(5e-3)
    assert result.coverage == pytest.approx(1.25)
    assert result.shares["stem"] == pytest.approx(0.6)
    assert [r.name for r in result.top] == ["a", "b"]
    assert (result.rows, result.unscoped_rows, result.unscoped_s) == (4, 1, pytest.approx(0.5e-3))
    assert "coverage 1.25" in result.table()


def test_typical_mean_leaves_out_interrupted_runs():
    runs = [{"conv": 1.0, "add": 0.1}] * 6 + [{"conv": 50.0, "add": 0.1}, {"conv": 0.01, "add": 0.0, "new": 0.0}]
    means = typical_mean(runs)
    assert list(means) == ["conv", "add", "new"]
    assert means["conv"] == pytest.approx(1.0)  # neither the 50x run nor the near-empty one
    assert typical_mean([]) == {}
    assert typical_mean([{"x": 2.0}]) == {"x": 2.0}


def test_module_index_finds_the_absorbing_module():
    torch.manual_seed(0)
    index = ModuleIndex(small())
    assert index.innermost("stem.0.1._native_batch_norm_legit_no_training") == "stem.0.1"
    assert (index.class_of("stem.0.0"), index.kernel_of("stem.0.0"), index.kernel_of("stem.0.1")) == ("Conv2d", 3, 0)
    # the 1x1 convs C->4C and 4C->C of one MLP have transposed shapes: told apart by the order of dimensions
    assert index.find_weight([128, 32, 1, 1], "stages.0.blocks.0.mlp", "conv") == "stages.0.blocks.0.mlp.0.0"
    assert index.find_weight([1, 32, 128], "stages.0.blocks.0.mlp", "conv") == "stages.0.blocks.0.mlp.2.0"
    # walks up from a block to find the Linear fused with its layer scale; ambiguous at the root -> None
    assert index.find_weight([1, 64, 1024], "stages.1.blocks.1", "linear") == "stages.1.blocks.1.token_mixer.proj"
    assert index.find_weight([128, 32, 1, 1], "", "conv") is None  # one per Meta4D block
    assert common_path(["stem.0.1", "stem.1"]) == "stem" and common_path([]) == ""


def test_merge_rows_averages_profiles_by_name():
    one = [OpRow("conv", "Conv", "stem.0.0", "Conv2d", 2e-3, 3), OpRow("relu", "Relu", "stem.1", "ReLU", 1e-3)]
    two = [OpRow("conv", "Conv", "stem.0.0", "Conv2d", 4e-3, 3), OpRow("Multiply_7", "Eltwise", time_s=2e-3)]
    merged = merge_rows([one, two])
    assert [r.name for r in merged] == ["conv", "relu", "Multiply_7"]
    assert [r.time_s for r in merged] == pytest.approx([3e-3, 0.5e-3, 1e-3])  # absent from a profile: 0 there
    assert merged[0].scope == "stem.0.0" and merged[0].kernel == 3


class FakeBackend(Backend):
    """A backend whose profile says each call takes 1 ms, and whose calls sleep about 1 ms."""

    name = "fake"

    def __init__(self, profiler: bool = True):
        self.calls: list[str] = []
        self.profiler = profiler

    def versions(self) -> dict[str, str]:
        return {}

    def prepare(self, case, config) -> Prepared:
        import time

        self.calls.append("prepare")
        return Prepared(run=lambda: time.sleep(1e-3), infer=lambda: None)

    def profile(self, case, config, runs):
        self.calls.append(f"profile {runs}")
        if not self.profiler:
            return super().profile(case, config, runs)
        return [OpRow("conv", "Conv", "stem.0.0", "Conv2d", 1e-3, 3)]


def test_profile_case_alternates_profile_chunks_with_plain_timing():
    backend = FakeBackend()
    rows, result = profile_case(backend, None, RunConfig(), runs=10, rounds=8, chunks=3)
    assert backend.calls == ["profile 4", "prepare", "profile 3", "profile 3"]
    assert rows == [OpRow("conv", "Conv", "stem.0.0", "Conv2d", 1e-3, 3)]
    assert result.seconds["stem"] == pytest.approx(1e-3)
    assert 1e-3 <= result.e2e_median_s < 0.1  # timed plainly: the sleeps
    given = profile_case(FakeBackend(), None, RunConfig(), runs=4, e2e_median_s=2e-3)[1]
    assert given.coverage == pytest.approx(0.5)


def test_the_profiling_pass_opens_one_profiler_session_and_compares_it_with_the_pass_timed_before():
    """A profiler session costs 1-2.5 s for a large model (as much as its runs): the pass after timing opens one, and
    neither prepares nor calls the case again; coverage is against the median it is given."""
    backend = FakeBackend()
    found = profile_pass(None, backend, RunConfig(), e2e_median_s=2e-3)
    assert backend.calls == [f"profile {PROFILE_RUNS}"]
    assert found["runs"] == PROFILE_RUNS and found["e2e_median_s"] == 2e-3 and found["rows"][0]["name"] == "conv"


def test_profile_case_fails_before_preparing_when_there_is_no_profiler():
    backend = FakeBackend(profiler=False)
    with pytest.raises(ProfilerUnavailable, match="fake has no per-operator profiler"):
        profile_case(backend, None, RunConfig(), runs=10)
    assert backend.calls == ["profile 2"]


def test_default_profile_is_unavailable_with_a_reason():
    for name in ("torch-inductor", "coreml-all", "torch-cuda", "ort-cuda"):
        with pytest.raises(ProfilerUnavailable) as info:
            REGISTRY[name]().profile(None, RunConfig(), 1)
        assert isinstance(info.value, OpbenchError) and len(info.value.reason) > 40, name


# -- real profiles of a model that follows the naming contract ------------------------------------------------------

CASE = make_case("models", "contract", "small", small, (1, 3, 112, 112), group="")
# categories with time on each backend; a fused one is missing where the runtime fuses it into its neighbour
FUSED_AWAY = {"openvino-cpu": {"activation"}}  # OpenVINO fuses every ReLU and GELU into the conv / FC before it
PROFILED = ("torch-eager", "ort-cpu-noopt", "ort-cpu", "openvino-cpu", "executorch-xnnpack", "mnn-cpu")
ABSORBERS = {"Conv", "FusedConv", "Convolution", "FullyConnected", "Gemm"}


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> RunConfig:
    return RunConfig(threads=1, cache=ArtifactCache(tmp_path_factory.mktemp("profile-artifacts")))


@pytest.mark.parametrize("name", PROFILED)
def test_profile_of_a_contract_model(name: str, config: RunConfig):
    backend = REGISTRY[name]()
    reason = backend.unavailable_reason()
    if reason:
        pytest.skip(f"{name} unavailable here: {reason}")
    assert isinstance(CASE.build(), ContractFormer)
    # a shared machine's speed can change by 2x within a second: a coverage outside the band is measured again
    # (artifacts are cached, so a retry costs seconds); a profiler that really misses or double counts fails all
    for _attempt in range(3):
        rows, result = profile_case(backend, CASE, config, runs=30, rounds=30, chunks=5)
        if 0.5 <= result.coverage <= 1.5:
            break

    expected = set(CATEGORIES) - FUSED_AWAY.get(name, set())
    empty = [c for c in expected if result.seconds[c] <= 0]
    assert not empty, f"{name}: no time in {empty}\n{result.table()}"
    assert 0.5 <= result.coverage <= 1.5, f"{name}: coverage {result.coverage:.2f}\n{result.table()}"
    assert all(r.time_s >= 0 for r in rows) and len({r.name for r in rows}) == len(rows)
    assert [OpRow.from_json(json.loads(json.dumps(r.to_json()))) for r in rows] == rows

    # paths: the stem's convolution is found on every backend, and what fusion absorbed counts as the absorber
    assert any(r.scope == "stem.0.0" and categorize(r) == "stem" for r in rows), name
    absorbed = [r for r in rows if r.op_type in ABSORBERS and r.module_class in {"BatchNorm2d", "ReLU", "GELU"}]
    assert not absorbed, absorbed
    if name in ("torch-eager", "ort-cpu-noopt", "ort-cpu"):
        assert result.unscoped_rows == 0, [r for r in rows if not r.scope]
