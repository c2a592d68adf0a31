"""The models suite: zoo models as cases, the headline claims as verdicts, and the breakdowns in the report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from builders import make_run, measured, result, write

from opbench.attribution import OpRow
from opbench.report import render
from opbench.suite import get_suite, plans, select_cases
from opbench.suites.models import CLAIMS, model_case
from opbench.verdict import Evidence, Target
from opbench.zoo import ZOO

HOST = Target("host", "torch-eager", "Host")
# per model, constructed: seconds by module path (the naming contract's words), so every category gets time
PROFILE_ROWS = (
    ("stem.0", "Conv2d", "aten::convolution", 3, 0.2),
    ("stages.1.downsample.0", "Conv2d", "aten::convolution", 3, 0.1),
    ("stages.0.blocks.0.token_mixer.pool", "AvgPool2d", "aten::avg_pool2d", 0, 0.3),
    ("stages.0.blocks.0.mlp.0.1", "BatchNorm2d", "aten::batch_norm", 0, 0.05),
    ("stages.0.blocks.0.mlp.0.0", "Conv2d", "aten::convolution", 1, 0.2),
    ("stages.0.blocks.0.mlp.1", "GELU", "aten::gelu", 0, 0.1),
    ("stages.3.blocks.1", "To3D", "aten::transpose", 0, 0.02),
    ("head.fc", "Linear", "aten::addmm", 0, 0.03),
)


def profile(e2e_s: float) -> dict:
    rows = [OpRow(f"{op}#{i}", op, scope, cls, t * e2e_s, kernel).to_json() for i, (scope, cls, op, kernel, t) in
            enumerate(PROFILE_ROWS)]  # fmt: skip
    return {"rows": rows, "e2e_median_s": e2e_s, "runs": 10}


def test_every_zoo_model_is_a_case_with_the_reference_ids():
    ids = [c.id for c in select_cases(keys=["models"])]
    assert ids == [f"models/{name}" for name in ZOO]
    assert model_case("efficientformer_l1").input_shape == (1, 3, 224, 224)
    assert get_suite("models").profile and not get_suite("obs1").profile


def judge(latency_ms: dict[str, float]):
    data = measured("models", lambda c: latency_ms.get(c.variant, 5.0) / 1e3)
    (verdict,) = get_suite("models").rule.verdicts(
        "models", plans("default", ["models"])["models"], Evidence({HOST: data})
    )
    return verdict


FAST = {
    "efficientformer_l1": 1.0,
    "mobilenetv2_x1.4": 1.5,
    "efficientnet_b0": 2.0,
    "efficientformer_l7": 6.0,
    "mobilevit_xs": 7.0,
    "efficientformerv2_s1": 1.0,
    "mobilenetv2_x1.0": 1.0,
    "efficientformerv2_s2": 1.5,
}  # ms: every headline claim true


def test_headline_claims_hold_when_the_candidates_are_fast_enough():
    v = judge(FAST)
    assert v.status == "holds", v.explanation
    assert [p.name for p in v.parts] == [c[0] for c in CLAIMS] and all(p.status == "holds" for p in v.parts)


def test_one_clearly_failed_claim_makes_the_verdict_not_hold_and_says_which():
    v = judge({**FAST, "efficientformer_l1": 3.0})
    assert v.status == "does_not_hold"
    assert "L1 is not at MobileNetV2 x1.4 speed here." in v.explanation
    assert "L1 is not faster than EfficientNet-B0 here." in v.explanation


def test_the_report_shows_models_breakdowns_model_evidence_and_published_ratios(tmp_path: Path):
    cases = select_cases(keys=["models"])
    results = []
    for i, case in enumerate(cases):
        r = result(case, "torch-eager", 1e-3 * (1 + i % 5))
        results.append(dataclasses.replace(r, profile=profile(r.stats.median_s)))
    ort = [dataclasses.replace(result(c, "ort-cpu", 1e-3), profile={"unavailable": "constructed: no profiler"})
           for c in cases]  # fmt: skip
    folder = tmp_path / "device_results"
    write(make_run("Host", results + ort), folder)
    root = Path(__file__).parents[1] / "device_results" / "reference"
    out = render([folder, root], tmp_path / "r" / "index.html", progress=False)
    html = out.read_text()
    section = html.split('id="models"')[1].split('id="overhead"' if 'id="overhead"' in html else 'id="cross"')[0]
    assert "Latency against accuracy" in section and "Where the latency goes" in section
    assert section.count('<img src="data:image/svg+xml;base64,') >= 2 + len(
        plans("default", ["models"])["models"].comparisons
    )
    assert "1.00x (iPhone 12 (published), coreml-all)" in section  # L1 / MobileNetV2 x1.4 = 1.6 / 1.6 ms
    assert "Host / ort-cpu: no profile (constructed: no profiler)" in section
    summary = html.split('id="summary-matrix"')[1].split("</table>")[0]
    assert "Whole models" in summary
    obs1 = html.split('id="obs1"')[1].split('id="obs2"')[0]
    assert "the stem / patch embedding&#39;s share" in obs1 and "models/deit_s" in obs1
    share = 0.2 / sum(t for *_, t in PROFILE_ROWS)
    assert f"{share:.1%}" in obs1
    obs4 = html.split('id="obs4"')[1].split('id="overhead"')[0]
    assert "LeViT-256 HardSwish / GELU, whole model" in obs4
    table = pd.read_csv(out.parent / "breakdown.csv")
    eager = table[(table["backend"] == "torch-eager") & (table["case"] == "models/efficientformer_l1")]
    assert set(eager["category"]) == {"stem", "downsampling", "token_mixer", "normalization", "projection",
                                      "activation", "reshape", "head", "other"}  # fmt: skip
    assert eager.set_index("category")["share"]["stem"] == pytest.approx(share)
    assert eager["coverage"].iloc[0] == pytest.approx(sum(t for *_, t in PROFILE_ROWS))
    assert set(table[table["backend"] == "ort-cpu"]["unavailable"]) == {"constructed: no profiler"}


def test_suites_whose_cases_do_not_fit_held_together_say_so_by_their_schedule():
    """The plugin orders passes by Suite.schedule, not by parameter counts: a suite whose cases on seven backends do
    not fit in memory until their last pass declares `by_backend` (the models always, Obs 2 on the full grid)."""
    from opbench.suite import builtin_suites

    limit = 12_000_000  # what held together fitted: the default grid's largest observation case has 11.0M
    for grid in ("default", "full"):
        for key, suite in builtin_suites().items():
            largest = max(c.costs.param_count for c in suite.plan(grid).cases)
            assert (suite.schedule_for(grid) == "by_backend") == (largest > limit), (grid, key)
