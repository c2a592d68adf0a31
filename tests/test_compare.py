"""`opbench compare`: the significance rule on constructed samples with a known answer; operands, output, exit code."""

from __future__ import annotations

import io
import json

import builders
import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from opbench import stats
from opbench.analysis import compare
from opbench.cli import main
from opbench.errors import OpbenchError
from opbench.results import Device, Result, Run, Stats, new_run, write_run


def samples(median_s: float, n: int = 200, spread: float = 0.01) -> list[float]:
    """n timings around median_s, normal with a relative spread; a new seed per call (builders.reseed)."""
    return list(median_s * (1 + spread * np.random.default_rng(builders.next_seed()).standard_normal(n)))


def result(case: str, backend: str, data: list[float] | None = None, median_s: float | None = None, **extra) -> Result:
    stats = Stats.from_samples(data) if data is not None else (Stats(median_s) if median_s else None)
    return Result(case=case, suite="obs4", backend=backend, stats=stats, **extra)


def run(results: list[Result], device: str = "Test Host", created: str | None = None) -> Run:
    r = new_run(Device(device, device.lower().replace(" ", "-")), results, "pytest-benchmark")
    if created:
        r.created = created
    return r


def row(a: Result, b: Result, **kwargs) -> dict:
    return compare.compare_results(a, b, **kwargs)


# --- the rule on known answers -----------------------------------------------------------------------------------


def test_clear_regression_is_significant_and_slower():
    r = row(result("c", "x", samples(1e-3)), result("c", "x", samples(1.5e-3)))
    assert r["change"] == "slower" and r["significant"]
    assert r["ratio"] == pytest.approx(1.5, rel=0.02)
    assert r["ratio_low"] < r["ratio"] < r["ratio_high"] and r["ratio_low"] > 1.1
    assert r["p_value"] < 1e-10


def test_clear_speedup_is_significant_and_faster():
    r = row(result("c", "x", samples(2e-3)), result("c", "x", samples(1e-3)))
    assert r["change"] == "faster" and r["significant"] and r["ratio"] == pytest.approx(0.5, rel=0.02)


def test_same_distribution_is_not_a_change():
    r = row(result("c", "x", samples(1e-3)), result("c", "x", samples(1e-3)))
    assert r["change"] == "same" and not r["significant"]
    assert r["ratio"] == pytest.approx(1.0, abs=0.01) and r["basis"] == "within x1.1"


def test_real_but_small_change_within_the_factor_is_not_significant():
    a, b = samples(1e-3, spread=0.001), samples(1.05e-3, spread=0.001)
    r = row(result("c", "x", a), result("c", "x", b))
    assert r["p_value"] < 1e-10  # the difference is real...
    assert r["change"] == "same" and not r["significant"]  # ...but below the factor (asv's rule)
    assert row(result("c", "x", a), result("c", "x", b), factor=1.02)["change"] == "slower"


def test_big_ratio_with_overlapping_noisy_samples_is_noise():
    a = list(np.linspace(1e-3, 3e-3, 9))
    b = [x * 1.15 for x in a]
    r = row(result("c", "x", a), result("c", "x", b))
    assert r["ratio"] == pytest.approx(1.15)
    assert r["p_value"] > 0.05 and r["change"] == "noise" and not r["significant"]


def old_rule(a: list[float], b: list[float], factor: float = 1.1) -> bool:
    """The rule compare had before asv's: beyond the factor and (p < 0.05 or 95% intervals apart), on raw samples."""
    ma, mb = stats.median(a), stats.median(b)
    p = scipy_stats.mannwhitneyu(a, b, alternative="two-sided").pvalue
    beyond = not 1 / factor <= np.median(b) / np.median(a) <= factor
    return beyond and (p < 0.05 or ma.high < mb.low or mb.high < ma.low)


def test_asv_rule_rejects_what_the_old_rule_called_significant():
    a = list(np.linspace(1e-3, 2e-3, 12))
    b = [x * 1.35 for x in a]  # 1.35x slower, but the two sets overlap: p is about 0.01
    assert old_rule(a, b)
    r = row(result("c", "x", a), result("c", "x", b))
    assert 0.002 < r["p_value"] < 0.05 and r["change"] == "noise" and not r["significant"]
    assert r["basis"] == "rank test p >= 0.002"


def passes(medians: list[float], n: int = 100) -> list[list[float]]:
    """One pass of n samples around each median (1% spread)."""
    return [samples(m, n) for m in medians]


def of_passes(per_pass: list[list[float]]) -> Result:
    return Result(case="c", suite="obs4", backend="x", stats=Stats.from_passes(per_pass))


def test_passes_are_the_test_samples_so_drift_is_not_a_change():
    # B's last two passes ran while the machine was 25% slower, A's passes moved 5% either way: the raw samples
    # differ wildly, the passes disagree
    a, b = passes([1e-3, 1.05e-3, 0.95e-3]), passes([1e-3, 1.25e-3, 1.25e-3])
    assert old_rule([x for p in a for x in p], [x for p in b for x in p])
    drifting = row(of_passes(a), of_passes(b))
    assert drifting["ratio"] > 1.1 and drifting["p_value"] is None  # 3 passes a side: the rank test cannot reach 0.002
    assert drifting["change"] == "noise" and "99% intervals overlap" in drifting["basis"]
    slower = row(of_passes(a), of_passes(passes([1.5e-3, 1.5e-3, 1.5e-3])))
    assert slower["change"] == "slower" and "99% intervals apart" in slower["basis"]


def test_only_medians_uses_the_factor_alone():
    slower = row(result("c", "x", median_s=1e-3), result("c", "x", median_s=2e-3))
    assert slower["change"] == "slower" and slower["significant"] and slower["ratio"] == pytest.approx(2.0)
    assert slower["ratio_low"] is None and slower["p_value"] is None and "medians only" in slower["basis"]
    same = row(result("c", "x", median_s=1e-3), result("c", "x", median_s=1.05e-3))
    assert same["change"] == "same" and not same["significant"]
    mixed = row(result("c", "x", samples(1e-3)), result("c", "x", median_s=3e-3))  # samples on one side only
    assert mixed["change"] == "slower" and mixed["ratio_low"] is None


def test_unsupported_side_is_not_compared():
    bad = Result(case="c", suite="obs4", backend="x", status="unsupported", reason="no kernel")
    r = row(result("c", "x", samples(1e-3)), bad)
    assert r["change"] == "unsupported" and r["ratio"] is None and "no kernel" in r["basis"]


# --- pairing and ordering ----------------------------------------------------------------------------------------


def test_two_runs_pair_case_and_backend_sorted_by_size_of_change():
    a = run(
        [result(c, b, samples(1e-3)) for c in ("c1", "c2", "c3") for b in ("x", "y")]
        + [result("gone", "x", samples(1e-3))]
    )
    b = run(
        [result("c1", b, samples(1e-3)) for b in ("x", "y")]
        + [result("c2", "x", samples(3e-3)), result("c2", "y", samples(1e-3))]
        + [result("c3", "x", samples(0.8e-3)), result("c3", "y", samples(1e-3))]
        + [result("new", "x", samples(1e-3))]
    )
    table = compare.compare(compare.Selection(a, None, "A"), compare.Selection(b, None, "B"))
    assert list(table[["case", "backend_a", "change"]].itertuples(index=False, name=None))[:2] == [
        ("c2", "x", "slower"),
        ("c3", "x", "faster"),
    ]
    assert (table["backend_a"] == table["backend_b"]).all()
    assert table["change"].tolist()[-2:] == ["only in A", "only in B"]
    assert set(table["change"].iloc[2:6]) == {"same"}


def test_two_backends_of_one_run_pair_cases():
    one = run(
        [result(c, "fast", samples(1e-3)) for c in ("c1", "c2")]
        + [result(c, "slow", samples(2e-3)) for c in ("c1", "c2")]
    )
    table = compare.compare(compare.Selection(one, "fast", "A"), compare.Selection(one, "slow", "B"))
    assert len(table) == 2 and set(table["change"]) == {"slower"}
    assert set(table["backend_a"]) == {"fast"} and set(table["backend_b"]) == {"slow"}


# --- the command line --------------------------------------------------------------------------------------------


@pytest.fixture
def results_dir(tmp_path):
    folder = tmp_path / "device_results"
    old = run(
        [result(c, b, samples(1e-3)) for c in ("c1", "c2") for b in ("eager", "compiled")],
        created="2026-01-01T00:00:00+00:00",
    )
    new = run(
        [result("c1", "eager", samples(1e-3)), result("c2", "eager", samples(2e-3))]
        + [result(c, "compiled", samples(0.5e-3)) for c in ("c1", "c2")],
        created="2026-02-01T00:00",
    )
    phone = run(
        [result(c, "coreml", median_s=1e-3) for c in ("c1", "c2")], device="iPhone 12", created="2025-12-01T00:00"
    )
    paths = {"old": write_run(old, folder), "new": write_run(new, folder), "phone": write_run(phone, folder)}
    return folder, paths


def test_cli_two_runs_text_and_fail_on_regression(results_dir, capsys):
    folder, paths = results_dir
    assert main(["compare", str(paths["old"]), str(paths["new"]), "--results-dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "c2" in out and "slower" in out and "faster" in out
    assert main(["compare", str(paths["old"]), str(paths["new"]), "--fail-on-regression", "1.5"]) == 1
    assert "significant slowdown" in capsys.readouterr().err
    assert main(["compare", str(paths["old"]), str(paths["new"]), "--fail-on-regression", "2.5"]) == 0


def test_cli_backends_within_the_latest_run_as_json(results_dir, tmp_path):
    folder, paths = results_dir
    out = tmp_path / "cmp.json"
    argv = [
        "compare",
        "backend:eager",
        "backend:compiled",
        "--results-dir",
        str(folder),
        "--format",
        "json",
        "--output",
        str(out),
    ]
    assert main(argv) == 0
    document = json.loads(out.read_text())
    assert document["a"].endswith("@eager") and paths["new"].name in document["a"]  # the latest run
    assert {r["case"]: r["change"] for r in document["rows"]} == {"c1": "faster", "c2": "faster"}
    assert document["rule"]["factor"] == compare.DEFAULT_FACTOR


def test_cli_device_operands_and_csv(results_dir, tmp_path, capsys):
    folder, paths = results_dir
    assert (
        main(["compare", "test-host@eager", "iPhone 12@coreml", "--results-dir", str(folder), "--format", "csv"]) == 0
    )
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(table.columns) == compare.COLUMNS and set(table["case"]) == {"c1", "c2"}
    assert table.set_index("case").loc["c2", "ratio"] == pytest.approx(0.5, rel=0.05)  # the latest host run's eager
    assert (table["basis"].str.startswith("medians only")).all()
    argv = ["compare", "backend:eager", "backend:compiled", "--run", str(paths["old"]), "--format", "csv"]
    assert main(argv + ["--results-dir", str(folder)]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(table) == 2 and set(table["change"]) == {"same"}  # the old run, where both backends were alike


@pytest.mark.parametrize(
    "a, b, message",
    [
        ("no-such-device", "test-host", "not a result file, a run id or a device"),
        ("test-host@nope", "test-host", "backend 'nope' has no results"),
        ("missing.json", "test-host", "no such result file"),
        ("backend:", "backend:eager", "no backend name"),
    ],
)
def test_cli_bad_operands_are_clear_errors(results_dir, capsys, a, b, message):
    folder, _ = results_dir
    assert main(["compare", a, b, "--results-dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_malformed_result_file_is_a_clear_error(results_dir, tmp_path, capsys):
    folder, paths = results_dir
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "opbench-results/1", "results": [')
    assert main(["compare", str(broken), str(paths["new"])]) == 2
    assert "not JSON" in capsys.readouterr().err
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"schema": "opbench-results/1", "run_id": "x"}))
    with pytest.raises(OpbenchError, match="not a valid opbench result file"):
        compare.run_compare(str(invalid), str(paths["new"]), folder)


def test_factor_below_one_is_rejected(results_dir):
    folder, paths = results_dir
    with pytest.raises(OpbenchError, match="factor"):
        compare.run_compare(str(paths["old"]), str(paths["new"]), folder, factor=0.9)
