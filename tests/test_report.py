"""`opbench report`: rendering, partial data, escaping, malformed files, published and imported numbers."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from builders import all_results, device, in_window, make_run, result, write
from markupsafe import escape
from torch import nn

from opbench import suite as suite_registry
from opbench.case import make_case
from opbench.cli import main
from opbench.errors import OpbenchError
from opbench.plan import Plan
from opbench.report import render
from opbench.results import Result, Stats
from opbench.suite import Suite, get_suite, plans, register, suites
from opbench.suites import obs3_conv_bn
from opbench.verdict import PartSpec, PartsRule, Threshold

ROOT = Path(__file__).resolve().parents[1]


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def cases_of(key: str):
    return plans("default", [key])[key].cases


# ---- a small real result file, written by the plugin, rendered by --opbench-report ----


def test_plugin_writes_a_real_result_file_and_renders_the_report(tmp_path: Path):
    out = tmp_path / "reports" / "index.html"
    command = [
        sys.executable, "-m", "pytest", "--benchmark-only", "-q", "-p", "no:cacheprovider",
        "cases/test_obs3_conv_bn.py", "cases/test_obs4_nonlinearity.py",
        "--opbench-cases", "obs[34]/*/*/c*_h7", "--opbench-backends", "torch-eager",
        "--benchmark-max-time=0.005", "--benchmark-min-rounds=5", "--benchmark-warmup-iterations=1",
        "--opbench-results-dir", str(tmp_path / "results"), "--opbench-cache-dir", str(tmp_path / "cache"),
        "--opbench-report", "--opbench-report-out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"report written to {out}" in done.stdout
    (result_file,) = (tmp_path / "results").rglob("*.json")
    run = json.loads(result_file.read_text())
    assert {r["status"] for r in run["results"]} == {"ok"} and len(run["results"]) == 16
    html = read(out)
    assert 'id="summary-matrix"' in html and run["device"]["name"] in html
    verdicts = pd.read_csv(out.parent / "verdicts.csv")
    by_obs = dict(zip(verdicts["suite"], verdicts["status"], strict=True))
    assert by_obs["obs1"] == "not measured" and by_obs["obs2"] == "not measured"
    assert by_obs["obs3"] != "not measured"  # measured on the L1 S4 shapes
    assert by_obs["obs4"] == "inconclusive" and "needs another backend" in html
    results = pd.read_csv(out.parent / "results.csv")
    assert len(results) == 16 and results["median_ms_low"].notna().all()


# ---- the full report over constructed data (two pairs, every observation) ----


def test_full_report_has_every_section_figure_and_table(full_report: Path):
    html = read(full_report)
    for anchor in ("summary-matrix", "obs1", "obs2", "obs3", "obs4", "overhead", "cross", "published", "environment"):
        assert f'id="{anchor}"' in html
    measured = ("obs1", "obs2", "obs3", "obs4", "overhead")  # the fixture's suites; the models have no result
    comparisons = sum(len(p.comparisons) for key, p in plans("default").items() if key in measured)
    assert html.count('<img src="data:image/svg+xml;base64,') == comparisons + 1  # + the kernel sweep
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # nothing to fetch
    for suite in suites().values():
        assert escape(suite.title) in html and escape(suite.claim) in html
        for threshold in suite.thresholds:
            assert threshold.key in html
    cross = html.split('id="cross"')[1].split('id="published"')[0]
    assert "overhead/floor/add_one" in cross  # the floor case is in the cross-backend view like every case
    for name in ("results", "verdicts", "comparisons", "cross_backend", "environment", "published"):
        assert (full_report.parent / f"{name}.csv").exists()
    verdicts = pd.read_csv(full_report.parent / "verdicts.csv")
    assert len(verdicts) == 3 * 2 + 1 + 2  # obs1-3 per pair, obs4 across both, models per pair
    assert set(verdicts[verdicts["suite"] == "models"]["status"]) == {"not measured"}  # no model in the fixture
    assert (verdicts[verdicts["suite"] != "models"]["status"] != "not measured").all()
    obs4 = verdicts[verdicts["suite"] == "obs4"].iloc[0]
    assert obs4["device"] == "(all pairs)" and "needs another backend" not in obs4["explanation"]


def test_device_names_with_markup_are_shown_as_text(full_report: Path):
    html = read(full_report)
    assert "<script>alert" not in html and "<b>box</b>" not in html
    assert "Lab &lt;b&gt;box&lt;/b&gt; &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; $5" in html


def test_metric_and_cases_tables_carry_numbers_and_case_ids(full_report: Path):
    html = read(full_report)
    assert "obs1/patch_embed/deit_k16s16/c384" in html and "1x3x224x224" in html
    comparisons = pd.read_csv(full_report.parent / "comparisons.csv")
    assert comparisons["value_low"].notna().any()
    assert set(comparisons["suite"]) == {"obs1", "obs2", "obs3", "obs4", "models", "overhead"}  # overhead: its A/A
    supporting = comparisons[(comparisons["role"] == "supporting") & (comparisons["suite"] != "models")]
    assert len(supporting) and supporting["value"].notna().all()  # comparisons no rule uses are quantified too


def test_each_ratio_says_how_it_was_measured_and_each_threshold_shows_its_margin(tmp_path: Path):
    obs3 = cases_of("obs3")
    latency = {"ln_linear": 1.3e-4}
    members = in_window([latency.get(c.variant, 1.2e-4 if c.variant.startswith("gn_") else 1e-4) for c in obs3])
    timed = [dataclasses.replace(result(c, "torch-eager", 1e-4), stats=Stats.from_passes(p, window="obs3"))
             for c, p in zip(obs3, members, strict=True)]  # fmt: skip
    write(make_run("Paired Host", timed), tmp_path / "paired")
    write(make_run("Apart Host", [result(c, "torch-eager", 1e-4 * 1.3) for c in obs3]), tmp_path / "apart")
    out = render([tmp_path], tmp_path / "r" / "index.html", progress=False)
    comparisons = pd.read_csv(out.parent / "comparisons.csv")
    measured = comparisons[comparisons["suite"] == "obs3"]
    by_device = measured.groupby("device")["paired"].agg(set).to_dict()
    assert by_device == {"Paired Host": {True}, "Apart Host": {False}}
    html = read(out)
    assert '<span class="how">paired</span>' in html and '<span class="how">timed apart</span>' in html
    assert "<code>obs3.ratio</code> = 1.0, margin 2%" in html
    assert "a normalization that costs under 2% more is not a latency reason" in html  # the margin's reason


def test_the_a_a_control_shows_its_width_under_the_verdicts_and_says_when_it_misses_one(tmp_path: Path):
    overhead = cases_of("overhead")
    copy = {"conv1x1_bn_copy": 1.1}  # on the second host the copy runs 10% slower: its A/A interval misses 1
    for host, factor in (("Quiet Host", {}), ("Odd Host", copy)):
        results = [result(c, "torch-eager", 1e-4 * factor.get(c.variant, 1.0), passes=(1.0,) * 3) for c in overhead]
        write(make_run(host, results), tmp_path / host)
    write(make_run("Quiet Host", [result(c, "torch-eager", 1e-4) for c in cases_of("obs3")]), tmp_path / "obs3")
    html = read(render([tmp_path], tmp_path / "r" / "index.html", progress=False))
    (row,) = [line for line in html.split("<tr") if 'class="control"' in line]
    assert "A/A control" in row and row.count('<span class="key">width ') == 2
    assert "holds 1" in row and "misses 1: the intervals here are narrower than the noise" in row
    assert "is the smallest\ndifference a comparison on that target can resolve" in html


# ---- partial data ----


def test_partial_data_renders_and_says_what_is_missing(tmp_path: Path):
    obs3 = cases_of("obs3")
    results = [result(c, "torch-eager", 1e-4 * (1.3 if c.variant == "ln_linear" else 1.0)) for c in obs3]
    results[0] = result(obs3[0], "torch-eager", None, status="unsupported")
    write(make_run("Only Host", results), tmp_path / "runs")
    out = render([tmp_path / "runs"], tmp_path / "r" / "index.html", progress=False)
    html = read(out)
    assert "What is missing" in html
    for key in ("obs1", "obs2", "obs4"):
        assert f"{get_suite(key).title}: not measured on any" in html
    assert "constructed: the exporter refused this case" in html  # the unsupported case's reason
    assert f"{obs3[0].id}: unsupported" in html
    verdicts = pd.read_csv(out.parent / "verdicts.csv")
    assert set(verdicts[verdicts["suite"] != "obs3"]["status"]) == {"not measured"}
    assert verdicts[verdicts["suite"] == "obs3"]["missing"].item() == 1


def test_single_backend_obs4_needs_another_backend(tmp_path: Path):
    write(make_run("Only Host", all_results("torch-eager", keys=("obs4",))), tmp_path / "runs")
    html = read(render([tmp_path / "runs"], tmp_path / "r" / "index.html", progress=False))
    assert "inconclusive: needs another backend" in html


# ---- malformed files ----


def _good_and_bad(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "device_results"
    write(make_run("Host", all_results("torch-eager", keys=("obs3",))), folder)
    bad = folder / "broken" / "bad-run.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"schema": "opbench-results/1", "run_id": "x", "results": [')
    return folder, bad


def test_each_pass_verdict_shows_in_the_summary_and_verdicts_csv(tmp_path: Path):
    """One run of three passes on two backends: steady on torch-eager, the reshaped stage drifting on ort-cpu."""
    reshaped = "obs2/stage/meta3d_reshaped/c448_h7_d4"

    def latency(case) -> float:
        return 1.5e-3 if case.id == reshaped else 1e-3

    steady = [result(c, "torch-eager", latency(c), passes=(1.0, 1.0, 1.0)) for c in cases_of("obs2")]
    drift = [
        result(c, "ort-cpu", 1e-3, passes=(1.0, 1.0, 1.5) if c.id == reshaped else (1.0, 1.0, 1.0))
        for c in cases_of("obs2")
    ]
    write(make_run("Host", steady + drift), tmp_path / "results")
    out = render([tmp_path / "results"], tmp_path / "r" / "index.html", progress=False)
    verdicts = pd.read_csv(out.parent / "verdicts.csv").set_index(["suite", "backend"])
    assert verdicts.loc[("obs2", "torch-eager"), "status"] == "holds"
    assert verdicts.loc[("obs2", "torch-eager"), "by_pass"] == "holds; holds; holds"
    drifting = verdicts.loc[("obs2", "ort-cpu")]
    assert drifting["status"] == "inconclusive" and drifting["by_pass"] == "does not hold; does not hold; holds"
    assert not drifting["passes_agree"] and "passes disagree" in drifting["explanation"]
    html = read(out)
    assert "passes ✓ ✓ ✓" in html and "passes ✗ ✗ ✓ (disagree)" in html
    assert "Each pass alone: does not hold in passes 1, 2; holds in pass 3" in html


def test_a_malformed_file_is_named_and_stops_the_report(tmp_path: Path, capsys):
    folder, bad = _good_and_bad(tmp_path)
    out = tmp_path / "reports" / "index.html"
    with pytest.raises(OpbenchError, match="bad-run.json") as caught:
        render([folder], out, progress=False)
    assert "--skip-invalid" in str(caught.value)
    assert main(["report", str(folder), "--out", str(out), "-q"]) == 2
    assert str(bad) in capsys.readouterr().err
    assert not out.exists()


def test_a_schema_invalid_file_is_named(tmp_path: Path):
    folder, bad = _good_and_bad(tmp_path)
    bad.write_text(json.dumps({"schema": "opbench-results/1", "run_id": "x", "results": []}))
    with pytest.raises(OpbenchError, match=r"bad-run.json: not a valid opbench result file"):
        render([folder], tmp_path / "index.html", progress=False)


def test_skip_invalid_warns_on_stderr_and_in_the_report(tmp_path: Path, capsys):
    folder, bad = _good_and_bad(tmp_path)
    out = tmp_path / "reports" / "index.html"
    assert main(["report", str(folder), "--out", str(out), "--skip-invalid", "-q"]) == 0
    err = capsys.readouterr().err
    assert "warning: skipped an invalid result file" in err and str(bad) in err
    html = read(out)
    assert "invalid result file(s) were skipped" in html and "bad-run.json" in html


def test_no_result_files_is_a_clear_error(tmp_path: Path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "i.html")]) == 2
    assert "no result files" in capsys.readouterr().err


# ---- published and imported numbers ----


def _published_run():
    results = [
        Result(
            case=f"models/efficientformer_{name}",
            suite="models",
            family="model",
            variant=f"efficientformer_{name}",
            backend="coreml",
            stats=Stats(ms / 1e3),
            reference={"source": "EfficientFormer README", "protocol": "coreml-performance, mean of 500", "tag": tag},
        )
        for name, ms, tag in (("l1", 1.6, "[repo]"), ("l3", 3.0, "[repo]"))
    ]
    run = make_run("iPhone 12 (published)", results, source="reference")
    run.device = dataclasses.replace(device("iPhone 12 (published)"), kind="phone")
    return run


def test_published_numbers_are_labelled_and_never_judged(tmp_path: Path):
    folder = tmp_path / "device_results"
    write(make_run("Host", all_results("torch-eager", keys=("obs3",))), folder)
    write(_published_run(), folder / "reference")
    out = render([folder], tmp_path / "r" / "index.html", progress=False)
    html = read(out)
    published = html.split('id="published"')[1].split('id="environment"')[0]
    assert "iPhone 12 (published)" in published and "1.6 (published)" in published
    assert "coreml-performance, mean of 500" in published and "models/efficientformer_l1" in published
    summary = html.split('id="summary-matrix"')[1].split("</table>")[0]
    assert "iPhone 12" not in summary and "coreml" not in summary
    verdicts = pd.read_csv(out.parent / "verdicts.csv")
    assert "iPhone 12 (published)" not in set(verdicts["device"])
    table = pd.read_csv(out.parent / "published.csv")
    assert list(table["published_ms"]) == [1.6, 3.0]
    selected = render([folder], tmp_path / "s" / "index.html", devices=["host"], progress=False)
    assert "1.6 (published)" in read(selected)  # a device selection still shows the published numbers


def test_imported_runs_are_their_own_device_with_point_estimates(tmp_path: Path):
    folder = tmp_path / "device_results"
    write(make_run("Host", all_results("torch-eager", keys=("obs3",))), folder)
    imported = [dataclasses.replace(r, stats=Stats(r.stats.median_s)) for r in all_results("coreml", keys=("obs3",))]
    write(make_run("iPhone 12", imported, source="import"), folder)
    out = render([folder], tmp_path / "r" / "index.html", progress=False)
    summary = read(out).split('id="summary-matrix"')[1].split("</table>")[0]
    assert "iPhone 12" in summary and "(imported)" in summary and "point estimate" in summary
    verdicts = pd.read_csv(out.parent / "verdicts.csv")
    phone = verdicts[(verdicts["device"] == "iPhone 12") & (verdicts["suite"] == "obs3")].iloc[0]
    assert phone["point_estimate"] and pd.isna(phone["key_low"])


# ---- selection and the command line ----


def test_device_and_backend_selection(tmp_path: Path):
    folder = tmp_path / "device_results"
    write(make_run("Host", all_results("torch-eager", keys=("obs3",)) + all_results("ort-cpu", keys=("obs3",))), folder)
    out = render([folder], tmp_path / "r" / "index.html", backends=["ort-*"], progress=False)
    assert set(pd.read_csv(out.parent / "results.csv")["backend"]) == {"ort-cpu"}
    with pytest.raises(OpbenchError, match="devices: host; backends: ort-cpu, torch-eager"):
        render([folder], tmp_path / "r" / "index.html", devices=["phone"], progress=False)
    with pytest.raises(OpbenchError, match="--baseline"):
        render([folder], tmp_path / "r" / "index.html", baseline="coreml", progress=False)


def test_report_help_explains_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = capsys.readouterr().out
    for option in ("PATH", "--out", "--device", "--backend", "--baseline", "--skip-invalid", "--quiet"):
        assert option in text


def test_progress_is_shown_while_figures_render(tmp_path: Path, capsys):
    write(make_run("Host", all_results("torch-eager", keys=("obs3",))), tmp_path / "runs")
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r" / "index.html")]) == 0
    err = capsys.readouterr().err
    assert "opbench report: figures" in err and "report written to" in err


# ---- growing the suites: a comparison added to an observation, a suite of one's own ----


def linear_bn(c: int) -> nn.Module:
    """Linear (C -> 4C) + BatchNorm1d, 3D tokens (LeViT style)"""
    return nn.Sequential(nn.Linear(c, 4 * c), Transposed(nn.BatchNorm1d(4 * c)))


class Transposed(nn.Module):
    """BatchNorm1d over (B, N, C) tokens, as LeViT applies it."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x.transpose(1, 2)).transpose(1, 2)


def test_a_comparison_added_to_an_observation_is_quantified_in_the_page_and_the_csv(tmp_path: Path, monkeypatch):
    """The README's way of adding a case: a Linear-BN form beside obs3's, compared with Conv-BN, used by no rule."""
    monkeypatch.setitem(obs3_conv_bn.FORMS["proj"], "linear_bn", obs3_conv_bn.Form(linear_bn, False, "Linear-BN"))
    (baseline,) = [c for c in cases_of("obs3") if c.id == "obs3/proj/conv1x1_bn/c448_h7"]
    (added,) = [c for c in cases_of("obs3") if c.id == "obs3/proj/linear_bn/c448_h7"]
    results = [result(baseline, "torch-eager", 1e-4), result(added, "torch-eager", 1.5e-4)]
    write(make_run("Host", results), tmp_path / "runs")
    out = render([tmp_path / "runs"], tmp_path / "r" / "index.html", progress=False)
    name = "Linear-BN vs Conv-BN projection C->4C (L1 S4: c448 7x7)"
    comparisons = pd.read_csv(out.parent / "comparisons.csv")
    (row,) = comparisons[comparisons["comparison"] == name].itertuples()
    assert row.role == "supporting" and row.value == pytest.approx(1.5, rel=0.05) and row.value_low < row.value
    table = read(out).split('id="obs3"')[1].split("<h3>Cases</h3>")[0]
    assert escape(name) in table and f"{row.value:.2f}x [{row.value_low:.2f}, {row.value_high:.2f}]" in table


TINY_RULE = PartsRule(
    text="Holds when the wide linear is slower than the narrow one.",
    parts=(
        PartSpec("wide", "latency, wide / narrow", Threshold("tiny.ratio", 1.0, "wide slower: above this"), "above"),
    ),
    holds_means="The wide linear is slower.",
)


def tiny_plan(grid: str) -> Plan:
    p = Plan()
    narrow, wide = (
        make_case("tiny", "linear", v, functools.partial(nn.Linear, 8, width), (1, 8), "tiny", v)
        for v, width in (("narrow", 8), ("wide", 512))
    )
    p.compare("wide vs narrow linear", narrow, wide, "wide")
    return p


TINY_MODULE = """
from opbench.suite import register
from test_report import TINY_SUITE

register(TINY_SUITE)
SUITE = "tiny"


def test_tiny(opbench_case, benchmark):
    opbench_case.measure(benchmark)
"""
TINY_SUITE = Suite("tiny", "A tiny suite", tiny_plan, claim="Wide linears cost more.", rule=TINY_RULE)


def test_a_new_suite_is_one_module_registered_in_one_place(pytester, tmp_path: Path, monkeypatch):
    here = Path(__file__).parent  # the case module imports TINY_SUITE from here; this tree's opbench first
    monkeypatch.setenv("PYTHONPATH", f"{here}{os.pathsep}{here.parent}")
    pytester.makeconftest('pytest_plugins = ["opbench.pytest_plugin"]')
    pytester.makepyfile(test_tiny=TINY_MODULE)
    results_dir, cache = tmp_path / "results", tmp_path / "cache"
    common = ["-p", "no:cacheprovider", f"--opbench-results-dir={results_dir}", f"--opbench-cache-dir={cache}"]
    smoke = pytester.runpytest_subprocess(*common, "--benchmark-disable", "--opbench-backends=torch-eager")
    smoke.assert_outcomes(passed=1)  # the comparison's two cases: one group, one item per backend
    timed = pytester.runpytest_subprocess(
        *common, "--benchmark-only", "--opbench-backends=torch-eager,ort-cpu", "--opbench-passes=1",
        "--benchmark-max-time=0.002",
        "--benchmark-min-rounds=5", "--benchmark-warmup-iterations=1",
    )  # fmt: skip
    timed.assert_outcomes(passed=2)
    out = tmp_path / "r" / "index.html"
    monkeypatch.setattr(suite_registry, "_REGISTRY", dict(suite_registry._REGISTRY))
    register(TINY_SUITE)  # what the case module did in the benchmark's process
    assert main(["report", str(results_dir), "--out", str(out), "-q"]) == 0
    html = read(out)
    summary = html.split('id="summary-matrix"')[1].split("</table>")[0]
    assert "A tiny suite" in summary and "tiny.ratio" in html and "Wide linears cost more." in html
    verdicts = pd.read_csv(out.parent / "verdicts.csv")
    tiny = verdicts[verdicts["suite"] == "tiny"]
    assert len(tiny) == 2 and set(tiny["status"]) <= {"holds", "does not hold", "inconclusive"}
