"""The block decomposition covers every zoo model; predict and slim on constructed tables with known answers."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import builders
import pytest
import torch
from torch import nn

from opbench.cli import main
from opbench.errors import OpbenchError
from opbench.lookup import decompose, measured, predict, slim
from opbench.lookup.table import table as lookup_table
from opbench.lookup.table import zoo_sources
from opbench.suite import select_cases
from opbench.suites import block_table as blocks
from opbench.suites.models import model_case
from opbench.verdict import Measured
from opbench.zoo import ZOO, efficientformer

ROOT = Path(__file__).resolve().parents[1]
EXTRA = blocks.predictions()
FLOOR = EXTRA.floor


def model_blocks(name: str):
    return lookup_table(blocks.KEY).uses[name]


def parts():
    return slim.parts(lookup_table(blocks.KEY))


@pytest.mark.parametrize("name", list(ZOO))
def test_blocks_cover_every_module_of_the_model(name):
    """No time silently dropped: the blocks hold every parameter of the model and their MACs sum to the model's."""
    uses = model_blocks(name)
    with torch.device("meta"):
        model = ZOO[name].factory()
    covered = [p for u in uses for p in model.get_submodule(u.path).parameters()]
    assert len({id(p) for p in covered}) == len(covered), "a parameter is in two blocks"
    assert sum(p.numel() for p in covered) == sum(p.numel() for p in model.parameters())
    assert sum(u.case.costs.param_count for u in uses) == model_case(name).costs.param_count
    assert sum(u.case.costs.macs for u in uses) == model_case(name).costs.macs
    weights = sum(p.numel() for p in model.parameters()) * 4  # float32
    per_block = lookup_table(blocks.KEY).weight_bytes
    assert EXTRA.model(name).weight_bytes == weights == sum(per_block[u.case.id] for u in uses)


def test_identical_blocks_are_one_entry_and_ids_are_unique():
    cases = lookup_table(blocks.KEY).cases
    assert len({c.id for c in cases}) == len(cases)
    l1 = [u.case.id for u in model_blocks("efficientformer_l1")]
    assert l1.count("blocks/efficientformer/meta4d/c224_h14") == 6
    assert l1[0] == "blocks/efficientformer/stem/c3_h224_oc48_oh56" and l1[-1].startswith(
        "blocks/efficientformer/head/"
    )
    assert sum("to3d" in i for i in l1) == 1 and sum("meta3d" in i for i in l1) == 1


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return x + self.fc(x)


class _Glue(nn.Module):
    """A container whose forward is not a chain of its children: it must stay one block."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return self.a(x) * self.b(x)


def test_only_chains_are_expanded():
    model = nn.Sequential(nn.Sequential(_Residual(), nn.Identity(), _Residual()), _Glue(), nn.ReLU())
    found = decompose.find_blocks(model, (1, 4))
    assert [b.path for b in found] == ["0.0", "0.2", "1", "2"]
    assert all(b.input_shape == (1, 4) for b in found)


# --- predict and slim on constructed tables -------------------------------------------------------------------------

DEVICE = "Lab box"
BACKEND = "ort-cpu"


def _fake_macs(case) -> int:
    """MACs that grow with width (a Meta3D above a Meta4D of its width): the maximum is L7's widths, deepest."""
    if case.variant == "to3d":
        return 0  # a reshape: no MACs, and still a block the search must count
    p = dict(case.params)
    c, oc = p.get("c", 1), p.get("oc", p.get("c", 1))
    return (2 if case.variant == "meta3d" else 1) * c * oc + 1


def _fake_latency(case) -> float:
    return (_fake_macs(case) + 1) * 1e-9  # a timing is positive, even a reshape's


def _table_run(latency, models: dict[str, float] | None = None):
    """Every block case with latency(case) seconds (and fake MACs); whole models at the given seconds."""
    results = [
        dataclasses.replace(builders.result(c, BACKEND, latency(c), spread=0.01), macs=_fake_macs(c))
        for c in lookup_table(blocks.KEY).cases
    ]
    results += [builders.result(model_case(n), BACKEND, s, spread=0.01) for n, s in (models or {}).items()]
    return builders.make_run(DEVICE, results)


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _sum(table, name) -> float:
    return sum(table[u.case.id].median_s for u in model_blocks(name))


def test_predict_sums_the_blocks_with_an_interval_and_gives_the_error(tmp_path, capsys):
    l1 = model_blocks("efficientformer_l1")
    base = {u.case.id: 1e-4 * (i + 1) for i, u in enumerate(l1)}
    builders.write(_table_run(lambda c: base.get(c.id, 1e-3)), tmp_path)
    table = measured.measured_table([tmp_path], DEVICE, BACKEND, EXTRA, blocks.KEY).data
    expected = _sum(table, "efficientformer_l1")
    builders.write(_table_run(lambda c: base.get(c.id, 1e-3), {"efficientformer_l1": expected / 1.25}), tmp_path)
    p = predict.predict(
        "efficientformer_l1", EXTRA, measured.measured_table([tmp_path], DEVICE, BACKEND, EXTRA, blocks.KEY).data
    )
    assert p.predicted.low < p.predicted.value < p.predicted.high
    assert p.error == pytest.approx(0.25, abs=0.02)
    assert dict(p.blocks)["blocks/efficientformer/meta4d/c224_h14"] == 6
    code, out, _ = _cli(capsys, "predict", "efficientformer_l1", "--device", DEVICE, "--backend", BACKEND,
                        "--results-dir", str(tmp_path))  # fmt: skip
    assert code == 0 and "6 x blocks/efficientformer/meta4d/c224_h14" in out
    assert f"{p.predicted.value * 1e3:.3f} ms" in out and "error +2" in out


def test_validation_shares_and_rmspe():
    table = {}
    factors = (("efficientformer_l1", 1.0), ("efficientformer_l3", 0.8), ("poolformer_s12", 1.08))
    for name, factor in factors:  # predicted / measured = factor
        for u in model_blocks(name):
            table[u.case.id] = Measured(u.case.id, median_s=1e-4)
        predicted = 1e-4 * len(model_blocks(name))
        table[f"models/{name}"] = Measured(f"models/{name}", median_s=predicted / factor)
    rows = predict.validation({(DEVICE, BACKEND): table}, EXTRA)
    assert sorted(rows["model"]) == ["efficientformer_l1", "efficientformer_l3", "poolformer_s12"]
    s = predict.summary(rows).iloc[0]
    assert s["models"] == 3 and s["within_10pct"] == pytest.approx(2 / 3) and s["within_5pct"] == pytest.approx(1 / 3)
    assert s["rmspe"] == pytest.approx(((0.0 + 0.2**2 + 0.08**2) / 3) ** 0.5)
    fam = predict.summary(rows, ("device", "backend", "family")).set_index("family")["mean_error"]
    assert fam["efficientformer"] == pytest.approx(-0.1) and fam["poolformer"] == pytest.approx(0.08)


def test_a_failed_block_or_model_leaves_the_model_out_of_the_validation():
    """A report's table holds failed cases too (ExecuTorch miscomputes EfficientFormerV2's attention): such a model is
    not predicted, and says which block failed, instead of ending the report in a traceback."""
    names = [u.case.id for u in model_blocks("efficientformer_l1")]
    table = {b: Measured(b, median_s=1e-4) for b in names}
    table["models/efficientformer_l1"] = Measured("models/efficientformer_l1", median_s=len(names) * 1e-4)
    assert list(predict.validation({(DEVICE, BACKEND): table}, EXTRA)["model"]) == ["efficientformer_l1"]
    table[names[0]] = Measured(names[0], status="failed", reason="output differs from torch-eager")
    assert predict.validation({(DEVICE, BACKEND): table}, EXTRA).empty
    with pytest.raises(OpbenchError, match=f"1 block.*{names[0]}: failed .output differs"):
        predict.predict("efficientformer_l1", EXTRA, table)
    table[names[0]] = Measured(names[0], median_s=1e-4)
    table["models/efficientformer_l1"] = Measured("models/efficientformer_l1", status="failed")
    assert predict.validation({(DEVICE, BACKEND): table}, EXTRA).empty


def test_the_per_call_floor_is_paid_once_by_the_whole_model():
    names = [u.case.id for u in model_blocks("efficientformer_l1")]
    table = {b: Measured(b, median_s=1e-4) for b in names}
    plain = predict.predict("efficientformer_l1", EXTRA, table)
    table[FLOOR] = Measured(FLOOR, median_s=2e-5)
    floored = predict.predict("efficientformer_l1", EXTRA, table)
    assert plain.floor_s is None and plain.predicted.value == pytest.approx(len(names) * 1e-4)
    assert floored.predicted.value == pytest.approx(len(names) * 1e-4 - (len(names) - 1) * 2e-5)
    assert floored.plain_sum_s == pytest.approx(plain.predicted.value) and floored.floor_s == 2e-5


def test_the_decomposition_is_remembered_and_a_damaged_copy_is_derived_again(tmp_path, monkeypatch):
    sources = zoo_sources()[:2]
    remembered = tmp_path / "blocks" / "decomposition.json"
    first = decompose.build_table(sources, blocks.KEY, remembered)
    assert remembered.is_file()

    def no_forward(source):
        raise AssertionError(f"{source.name} decomposed again")

    with monkeypatch.context() as m:
        m.setattr(decompose, "decompose", no_forward)
        again = decompose.build_table(sources, blocks.KEY, remembered)
    assert [c.id for c in again.cases] == [c.id for c in first.cases]
    assert {n: [u.path for u in us] for n, us in again.uses.items()} == {
        n: [u.path for u in us] for n, us in first.uses.items()
    }
    remembered.write_text("{not json")
    assert [c.id for c in decompose.build_table(sources, blocks.KEY, remembered).cases] == [c.id for c in first.cases]


def test_search_space_sequence_matches_the_walked_decomposition():
    for variant in ("l1", "l3", "l7"):
        config = (efficientformer.WIDTHS[variant], efficientformer.DEPTHS[variant], efficientformer.NUM_META3D[variant])
        walked = [u.case.id for u in model_blocks(f"efficientformer_{variant}")]
        assert slim.candidate_blocks(parts(), *config) == walked


def test_slim_finds_the_most_macs_under_the_budget(tmp_path, capsys):
    builders.write(_table_run(_fake_latency), tmp_path)
    table = measured.measured_table([tmp_path], DEVICE, BACKEND, EXTRA, blocks.KEY).data
    best = slim.search(
        table, 10.0, parts(), FLOOR
    )  # everything fits: the widest, deepest network, all Meta3D in stage 4
    assert (best.widths, best.depths, best.num_meta3d) == ((96, 192, 384, 768), (6, 6, 18, 8), 8)
    assert best.macs == sum(table[b].macs for b in best.blocks(parts()))
    assert best.predicted_s == pytest.approx(sum(table[b].median_s for b in best.blocks(parts())))
    floored = slim.search({**table, FLOOR: Measured(FLOOR, median_s=1e-9)}, 10.0, parts(), FLOOR)
    assert floored.predicted_s == pytest.approx(best.predicted_s - (len(best.blocks(parts())) - 1) * 1e-9)
    tighter = slim.search(table, best.predicted_s * 0.999, parts(), FLOOR)
    assert tighter.predicted_s <= best.predicted_s * 0.999 and tighter.macs < best.macs
    code, out, _ = _cli(capsys, "slim", "--budget-ms", f"{tighter.predicted_s * 1e3 * 1.0001}", "--device", DEVICE,
                        "--backend", BACKEND, "--results-dir", str(tmp_path), "--no-measure")  # fmt: skip
    assert code == 0 and tighter.name in out


def test_slim_measures_what_it_found(tmp_path, capsys):
    builders.write(_table_run(_fake_latency), tmp_path)
    table = measured.measured_table([tmp_path], DEVICE, BACKEND, EXTRA, blocks.KEY).data
    small = slim.search(table, 2e-3, parts(), FLOOR)
    code, out, err = _cli(capsys, "slim", "--budget-ms", "0.002", "--device", DEVICE, "--backend", "torch-eager",
                          "--results-dir", str(tmp_path), "--seconds", "0.01")  # fmt: skip
    assert code == 2 and "no results for backend 'torch-eager'" in err  # the table is for ort-cpu only
    code, out, err = _cli(capsys, "slim", "--budget-ms", f"{small.predicted_s * 1e3 * 1.0001}", "--device", DEVICE,
                          "--backend", BACKEND, "--results-dir", str(tmp_path), "--seconds", "0.01")  # fmt: skip
    assert code == 0, err
    assert small.name in out and "measured here:" in out and "predicted / measured - 1" in out


@pytest.mark.parametrize("budget", ["0", "-3", "nan", "abc"])
def test_slim_refuses_bad_budgets(budget, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["slim", "--budget-ms", budget, "--device", DEVICE, "--backend", BACKEND])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and ("budget must be a positive" in err or "not a number of milliseconds" in err)


def test_slim_and_predict_say_what_is_missing(tmp_path, capsys):
    builders.write(_table_run(_fake_latency), tmp_path)
    code, _, err = _cli(capsys, "slim", "--budget-ms", "1e-6", "--device", DEVICE, "--backend", BACKEND,
                        "--results-dir", str(tmp_path))  # fmt: skip
    assert code == 2 and "no configuration fits" in err and "the fastest is predicted at" in err
    code, _, err = _cli(capsys, "predict", "efficientformer_l1", "--device", "Other box", "--backend", BACKEND,
                        "--results-dir", str(tmp_path))  # fmt: skip
    assert code == 2 and "no results for device" in err
    code, _, err = _cli(capsys, "predict", "no_such_model", "--device", DEVICE, "--backend", BACKEND,
                        "--results-dir", str(tmp_path))  # fmt: skip
    assert code == 2 and "unknown model" in err
    code, out, _ = _cli(capsys, "predict", "efficientformer_l1", "--device", DEVICE, "--backend", BACKEND,
                        "--results-dir", str(tmp_path))  # fmt: skip
    assert code == 0 and "was not measured" in out


def _collected(*options: str) -> str:
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "--benchmark-disable",
               "cases/test_blocks.py", "--opbench-backends", "torch-eager", *options]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300).stdout


def test_the_blocks_suite_runs_only_on_request():
    assert "blocks/" not in _collected()  # a run that names no suite leaves it out
    named = _collected("--opbench-suites", "blocks")
    assert named.count("test_blocks[blocks/") == 2 * len(lookup_table(blocks.KEY).cases)  # every block hot and cold
    pattern = "blocks/efficientformer/meta4d/*"
    assert _collected("--opbench-cases", pattern).count("test_blocks[") == len(select_cases("default", None, pattern))


def test_predict_names_an_unknown_backend_and_the_reason_a_block_failed(tmp_path, capsys):
    """An unknown backend is not 'a missing lookup table', and a block that failed says why, not 'not in any
    result'."""
    failed_id = model_blocks("efficientformer_l1")[0].case.id
    run = _table_run(lambda c: 1e-4)
    run.results = [
        dataclasses.replace(r, status="failed", reason="ort-cpu could not prepare the case: boom", stats=None)
        if r.case == failed_id
        else r
        for r in run.results
    ]
    builders.write(run, tmp_path)
    common = ["--device", DEVICE, "--results-dir", str(tmp_path)]
    code, _, err = _cli(capsys, "predict", "efficientformer_l1", "--backend", "no-such-backend", *common)
    assert code == 2 and "no results for backend 'no-such-backend'" in err and BACKEND in err
    code, _, err = _cli(capsys, "predict", "efficientformer_l1", "--backend", BACKEND, *common)
    assert code == 2 and f"{failed_id}: failed (ort-cpu could not prepare the case: boom)" in err
    code, _, err = _cli(capsys, "slim", "--budget-ms", "20", "--no-measure", "--backend", BACKEND, *common)
    assert code == 2 and f"{failed_id}: failed (ort-cpu could not prepare the case: boom)" in err
