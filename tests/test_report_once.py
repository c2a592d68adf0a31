"""A render judges the runs once, makes each of its tables once and validates the predictions once: the CSV files
and the page share them."""

from __future__ import annotations

import collections
import functools
from pathlib import Path

import pandas as pd
from builders import all_results, make_run, result, write

from opbench.analysis import judge
from opbench.lookup import predict
from opbench.lookup.table import table as lookup_table
from opbench.report import render, tables
from opbench.suites import block_table
from opbench.suites.models import model_case

MODEL = "efficientformer_l1"


def counted(monkeypatch, module, name: str, calls: collections.Counter) -> None:
    function = getattr(module, name)

    @functools.wraps(function)
    def counting(*args, **kwargs):
        calls[name] += 1
        return function(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)


def test_a_render_makes_each_table_and_the_prediction_validation_once(tmp_path: Path, monkeypatch):
    blocks = {u.case.id: u.case for u in lookup_table(block_table.KEY).uses[MODEL]}
    results = all_results("torch-eager", keys=("obs3", "overhead"))
    results += [result(case, "torch-eager", 1e-5) for case in blocks.values()]
    results.append(result(model_case(MODEL), "torch-eager", 1e-5 * len(blocks)))
    write(make_run("Host", results), tmp_path / "runs")
    table_functions = [name for name in vars(tables) if name.endswith("_table")]
    calls: collections.Counter = collections.Counter()
    for name in table_functions:
        counted(monkeypatch, tables, name, calls)
    for name in ("validation", "summary"):
        counted(monkeypatch, predict, name, calls)
    counted(monkeypatch, judge, "judge", calls)

    out = render([tmp_path / "runs"], tmp_path / "r" / "index.html", progress=False)

    assert len(table_functions) == 9 and {calls[name] for name in table_functions} == {1}, calls
    assert calls["judge"] == 1 and calls["validation"] == 1, calls
    assert calls["summary"] == 2, calls  # per target, and per target and family
    assert list(pd.read_csv(out.parent / "prediction.csv")["model"]) == [MODEL]
    assert "Whole-model latency predicted from the blocks" in out.read_text()
