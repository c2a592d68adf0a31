"""The model zoo: every definition pinned to its reference parameter count and MACs, and runnable at batch 1.

MACs are counted the way opbench/case.py's Case.costs counts them: torch.utils.flop_counter.FlopCounterMode over one
eval forward, total flops // 2. That counts the multiply-accumulates of convolutions (grouped and depthwise included),
Linear / matmul / bmm and scaled-dot-product attention; everything else (norms, activations, pooling, softmax,
elementwise adds and multiplies, resizes) counts 0. The papers' "FLOPs" for these models are multiply-adds of the same
layers (attention matmuls included), so the two agree to the papers' rounding, with these differences of convention:
- MobileViT-XS has no published MAC count at 224x224 (its paper trains and reports at 256x256): its reference is
  timm's count at 256x256 (timm's benchmark counter, which also gives norms and resizes a few MACs), and it is
  counted at 256x256 here too; at the suite's 224x224 it is 0.77 GMACs.
- Published values are rounded to one or two digits (DeiT-T "1.3 G" is 1.25 G counted), hence the 5% band.
- LeViT's stem convolutions carry a bias here (blocks.conv3x3_stem) and not in the reference: +480 parameters.
Parameters: within 2% of timm 1.0.31's counts (MODELS.md) or, for EfficientNet-B0 and MobileViT-XS (not in MODELS.md),
of timm's published results CSV (timm itself cannot be installed here).
"""

from __future__ import annotations

import importlib
import pickle
import sys

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from opbench.zoo import ZOO, ZooModel

TIMM = "timm 1.0.31, MODELS.md"
TIMM_CSV = "timm results/benchmark-infer-fp32-nchw-pt240-cpu-i9_10940x-dynamo.csv"

# name: (params M, source, GMACs, source)
REFERENCE = {
    "efficientformer_l1": (12.29, TIMM, 1.3, "EfficientFormer paper Table 1"),
    "efficientformer_l3": (31.41, TIMM, 3.9, "EfficientFormer paper Table 1"),
    "efficientformer_l7": (82.23, TIMM, 10.2, "EfficientFormer paper Table 1"),
    "efficientformerv2_s0": (3.60, TIMM, 0.40, "EfficientFormerV2 paper (MODELS.md)"),
    "efficientformerv2_s1": (6.19, TIMM, 0.65, "EfficientFormerV2 paper (MODELS.md)"),
    "efficientformerv2_s2": (12.71, TIMM, 1.25, "EfficientFormerV2 paper (MODELS.md)"),
    "efficientformerv2_l": (26.32, TIMM, 2.56, "EfficientFormerV2 paper (MODELS.md)"),
    "mobilenetv2_x1.0": (3.50, TIMM, 0.30, "MobileNetV2 paper (300M multiply-adds)"),
    "mobilenetv2_x1.4": (6.11, TIMM, 0.585, "MobileNetV2 paper (585M multiply-adds)"),
    "poolformer_s12": (11.92, TIMM, 1.8, "PoolFormer paper (MACs)"),
    "poolformer_s24": (21.39, TIMM, 3.4, "PoolFormer paper (MACs)"),
    "levit_256": (18.89, TIMM, 1.12, "LeViT paper (1120M FLOPs, multiply-adds)"),
    "levit_256_gelu": (18.89, TIMM, 1.12, "LeViT paper (activations change no MAC)"),
    "deit_s": (22.05, TIMM, 4.6, "facebookresearch/deit README_revenge.md, ViT-S"),
    "deit_t": (5.72, TIMM, 1.3, "published, as quoted in MODELS.md"),
    "efficientnet_b0": (5.29, TIMM_CSV, 0.39, "EfficientNet paper Table 2 (0.39B FLOPs, multiply-adds)"),
    "mobilevit_xs": (2.32, TIMM_CSV, 1.05, TIMM_CSV + " at 256x256"),
}
PARAMS_TOLERANCE, MACS_TOLERANCE = 0.02, 0.05


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread, the suite's default: steadier and no slower on a small shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def count(model: ZooModel) -> tuple[int, int, tuple[int, ...]]:
    """Parameters, MACs at the reference input shape and the output shape, from shapes alone: the module is built on
    the meta device (no weights are initialised, no arithmetic is done), which FlopCounterMode counts all the same."""
    with torch.device("meta"):
        module = model.factory().eval()
        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            out = module(torch.empty(model.macs_input_shape))
    return sum(p.numel() for p in module.parameters()), counter.get_total_flops() // 2, tuple(out.shape)


def test_zoo_is_the_reference_table():
    assert set(ZOO) == set(REFERENCE)
    assert all(name == model.name for name, model in ZOO.items())
    for name, (params_m, _, gmacs, _) in REFERENCE.items():
        assert (ZOO[name].params_m, ZOO[name].gmacs) == (params_m, gmacs), name


def test_entries_are_plain_data_with_sources():
    for model in ZOO.values():
        assert model.input_shape == (1, 3, 224, 224), model.name
        assert model.params_source and model.gmacs_source and model.top1_source, model.name
        assert 60 < model.top1 < 90, model.name
        assert pickle.loads(pickle.dumps(model.factory)) is not None  # factories travel to other processes


def test_importing_the_zoo_builds_nothing():
    """Import every zoo module afresh with nn.Module.__init__ watched: no module is constructed at import time."""
    saved = {name: module for name, module in sys.modules.items() if name.startswith("opbench.zoo")}
    built = []
    original = nn.Module.__init__

    def spy(self, *args, **kwargs):
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    for name in saved:
        del sys.modules[name]
    nn.Module.__init__ = spy
    try:
        fresh = importlib.import_module("opbench.zoo")
        assert set(fresh.ZOO) == set(ZOO)
    finally:
        nn.Module.__init__ = original
        sys.modules.update(saved)
    assert built == []


@pytest.mark.parametrize("name", list(REFERENCE))
def test_params_and_macs_match_the_reference(name):
    params_m, params_source, gmacs, gmacs_source = REFERENCE[name]
    params, macs, out_shape = count(ZOO[name])
    assert params / 1e6 == pytest.approx(params_m, rel=PARAMS_TOLERANCE), f"{params / 1e6:.3f} M vs {params_source}"
    assert macs / 1e9 == pytest.approx(gmacs, rel=MACS_TOLERANCE), f"{macs / 1e9:.3f} G vs {gmacs_source}"
    assert out_shape == (1, 1000)


def test_counts_on_meta_equal_counts_on_real_tensors():
    """The meta-device shortcut above counts what Case.costs counts on real tensors (one small model)."""
    model = ZOO["efficientformerv2_s0"]
    torch.manual_seed(0)
    module = model.factory().eval()
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        module(torch.randn(model.input_shape))
    assert count(model)[:2] == (sum(p.numel() for p in module.parameters()), counter.get_total_flops() // 2)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_every_model_runs_at_batch_one(name):
    """Real weights, real arithmetic: a 1x3x224x224 image gives finite (1, 1000) logits (L7 takes a few seconds)."""
    model = ZOO[name]
    torch.manual_seed(0)
    module = model.factory().eval()
    assert isinstance(module, nn.Module)
    with torch.inference_mode():
        out = module(torch.randn(model.input_shape))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", list(REFERENCE))
def test_module_paths_follow_the_naming_contract(name):
    """What a profiler attributes time by: stem, downsample, token_mixer, mlp, head; norms and activations visible."""
    with torch.device("meta"):
        module = ZOO[name].factory()
    paths = [path for path, _ in module.named_modules()]
    components = {part for path in paths for part in path.split(".")}
    assert {"stem", "head"} <= components, name
    top = {path.split(".")[0] for path in paths if path}
    assert top <= {"stem", "to_tokens", "stages", "blocks", "head"}, top
    if ZOO[name].family not in ("mobilenetv2", "efficientnet", "mobilevit", "deit"):
        assert "downsample" in components, name  # the CNNs downsample inside their first strided block
    if ZOO[name].family not in ("mobilenetv2", "efficientnet"):
        assert {"token_mixer", "mlp"} <= components, name
    kinds = {type(m) for m in module.modules()}
    assert kinds & {nn.LayerNorm, nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm}, name
    assert kinds & {nn.GELU, nn.Hardswish, nn.ReLU, nn.ReLU6, nn.SiLU}, name


def test_eval_is_deterministic_and_bias_tables_follow_the_parameters():
    model = ZOO["efficientformerv2_s0"]
    torch.manual_seed(0)
    module = model.factory()
    with torch.no_grad():
        for path, param in module.named_parameters():
            if path.endswith("attention_biases"):
                param.normal_()
    module.eval()
    x = torch.randn(model.input_shape)
    with torch.inference_mode():
        a, b = module(x), module(x)
    module.train()
    with torch.inference_mode():
        c = module.eval()(x)
    assert torch.equal(a, b) and torch.equal(a, c)
    tables = [m for m in module.modules() if hasattr(m, "ab")]
    assert tables and all(torch.equal(t.ab, t.attention_biases[:, t.attention_bias_idxs]) for t in tables)
    assert any(t.ab.abs().sum() > 0 for t in tables)


def test_torch_export_holds_the_gathered_bias_as_a_constant():
    """Eval-mode export of EfficientFormerV2-S0's last stage (the downsampling attention and two attention blocks,
    both kinds of bias table): the graph reads the gathered tables, it does not index attention_biases per call.
    The whole zoo exports (torch.export and torch.onnx dynamo) too; that was checked by hand, at ~10-20 s a model."""
    torch.manual_seed(0)
    stage = ZOO["efficientformerv2_s0"].factory().eval().stages[3]
    x = torch.randn(1, 96, 14, 14)
    program = torch.export.export(stage, (x,))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert not any("index" in target for target in targets), sorted(t for t in targets if "index" in t)
    with torch.inference_mode():
        assert torch.allclose(program.module()(x), stage(x))
