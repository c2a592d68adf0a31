"""`opbench stability`: several runs' verdicts side by side, flips counted; bad input is a clear error."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from builders import all_results, make_run, result, write

from opbench.analysis import stability
from opbench.cli import main
from opbench.results import Stats, load_run
from opbench.stats import Estimate
from opbench.suite import plans


def obs3_run(ln_linear: float, folder: Path, created: str, drift: tuple[float, ...] = (1.0, 1.0, 1.0)) -> Path:
    """Obs 3 on torch-eager in three passes: LN-Linear `ln_linear` times Conv-BN (times `drift` in each pass), GN-Conv
    1.3 times; created at `created`."""
    cases = plans("default", ["obs3"])["obs3"].cases

    def measured(case):
        if case.variant == "ln_linear":
            return result(case, "torch-eager", 1e-3 * ln_linear, passes=drift)
        return result(case, "torch-eager", 1e-3 * (1.3 if case.variant.startswith("gn_") else 1.0), passes=(1.0,) * 3)

    run = make_run("Host", [measured(c) for c in cases])
    run.created = created
    return write(run, folder)


def test_runs_side_by_side_with_identical_verdicts_and_flips_counted(tmp_path: Path, capsys):
    obs3_run(1.3, tmp_path / "a", "2026-01-01T00:00:00+00:00")
    obs3_run(1.3, tmp_path / "a", "2026-01-01T00:10:00+00:00")
    third = obs3_run(0.8, tmp_path / "b", "2026-01-01T00:20:00+00:00")  # LN-Linear faster: does not hold
    assert main(["stability", str(tmp_path / "a"), str(third)]) == 0
    out = capsys.readouterr().out
    assert "run 1:" in out and "run 3:" in out and str(third) in out
    (row,) = [line for line in out.splitlines() if line.lstrip().startswith("obs3")]
    assert row.count("holds 1.30x") == 2 and "does not hold 0.80x" in row and "FLIP" in row
    assert "passes ✓✓✓" in row and "passes ✗✗✗" in row
    assert "1 verdicts over 3 runs: 0 identical in every run (0%), 1 flip between holds and does not hold" in out


def test_an_unsettled_verdict_is_not_a_flip(tmp_path: Path, capsys):
    obs3_run(1.3, tmp_path, "2026-01-01T00:00:00+00:00")
    obs3_run(1.3, tmp_path, "2026-01-01T00:10:00+00:00", drift=(1.0, 1.0, 0.6))  # LN-Linear faster in pass 3
    assert main(["stability", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "inconclusive" in out and "passes ✓✓✗" in out and "FLIP" not in out
    assert "0 identical in every run (0%), 0 flip" in out


def test_bad_input_is_a_clear_error(tmp_path: Path, capsys):
    assert main(["stability", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    obs3_run(1.3, tmp_path, "2026-01-01T00:00:00+00:00")
    assert main(["stability", str(tmp_path)]) == 2
    assert "two or more runs" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{")
    assert main(["stability", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "broken.json" in err and "Traceback" not in err


def test_two_copies_of_one_run_are_compared_with_a_note(tmp_path: Path, capsys):
    first = obs3_run(1.3, tmp_path / "a", "2026-01-01T00:00:00+00:00")
    (tmp_path / "b").mkdir()
    shutil.copy(first, tmp_path / "b" / first.name)
    assert main(["stability", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    captured = capsys.readouterr()
    assert "copies of one run" in captured.err and "Traceback" not in captured.err
    assert "1 verdicts over 2 runs: 1 identical in every run (100%)" in captured.out
    assert "cross-run agreement: 100% of 16 (comparison, pair of runs)" in captured.out


def test_a_file_named_twice_is_read_once_with_a_note(tmp_path: Path, capsys):
    first = obs3_run(1.3, tmp_path / "a", "2026-01-01T00:00:00+00:00")
    obs3_run(1.3, tmp_path / "b", "2026-01-01T00:10:00+00:00")
    assert main(["stability", str(first), str(first)]) == 2
    captured = capsys.readouterr()
    assert "named more than once" in captured.err and "found 1 among the paths" in captured.err
    assert main(["stability", str(tmp_path / "a"), str(first), str(tmp_path / "b")]) == 0
    captured = capsys.readouterr()
    assert "named more than once" in captured.err and "over 2 runs" in captured.out


def test_runs_with_nothing_in_common_say_so(tmp_path: Path, capsys):
    obs3_run(1.3, tmp_path, "2026-01-01T00:00:00+00:00")
    obs1 = make_run("Host", all_results("torch-eager", keys=("obs1",)))
    obs1.created = "2026-01-01T00:10:00+00:00"
    write(obs1, tmp_path)
    assert main(["stability", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0 verdicts over 2 runs" in out and "2 verdict(s) measured in some runs only" in out
    assert "no verdict was measured in every run" in out
    assert "cross-run agreement: no comparison with an interval was measured in two runs" in out


def test_runs_without_any_verdict_or_comparison_are_a_clear_error(tmp_path: Path, capsys):
    for created in ("2026-01-01T00:00:00+00:00", "2026-01-01T00:10:00+00:00"):
        floor = [r for r in all_results("torch-eager", keys=("overhead",)) if r.case.startswith("overhead/floor/")]
        run = make_run("Host", floor)  # a subset run: no rule there, no comparison
        run.created = created
        write(run, tmp_path)
    assert main(["stability", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "measured a verdict or a comparison" in err and "Traceback" not in err and "KeyError" not in err


def test_agreement_counts_the_comparisons_whose_runs_differ_beyond_their_intervals(tmp_path: Path):
    """Run 2 is run 1's samples again; run 3 has LN-Linear 0.8 / 1.3 times as fast: its 8 LN-Linear comparisons
    differ from the other runs' far beyond their intervals, its 8 GN-Conv comparisons not at all."""
    first = load_run(obs3_run(1.3, tmp_path / "a", "2026-01-01T00:00:00+00:00"))

    def again(created: str, ln_factor: float) -> None:
        results = [
            dataclasses.replace(r, stats=Stats.from_passes([[x * ln_factor for x in p] for p in r.stats.passes_s]))
            if r.variant == "ln_linear" else r
            for r in first.results
        ]  # fmt: skip
        run = make_run("Host", results)
        run.created = created
        write(run, tmp_path / "b")

    again("2026-01-01T00:10:00+00:00", 1.0)
    again("2026-01-01T00:20:00+00:00", 0.8 / 1.3)
    runs = stability.load([tmp_path / "a", tmp_path / "b"])
    _, summary = stability.table(runs)
    assert summary.pairs == 3 * 16 and summary.agreement == pytest.approx((16 + 8 + 8) / 48)
    assert 0 < summary.median_width < 0.1 and summary.flips == 1


def test_two_ratios_agree_when_their_difference_lies_within_the_combined_interval():
    a = Estimate(1.10, 1.09, 1.11)
    assert stability.agrees(a, Estimate(1.11, 1.10, 1.12))  # 0.9% apart; half-widths 0.9% each: 1.3% combined
    assert not stability.agrees(a, Estimate(1.12, 1.11, 1.13))  # 1.8% apart
    assert stability.agrees(Estimate(1.12, 1.11, 1.13), a) is False  # symmetric
    assert stability.width(Estimate(1.0, 0.98, 1.01)) == pytest.approx(1.01 / 0.98 - 1)


def aa_run(copy: float, folder: Path, created: str) -> Path:
    """The overhead suite on torch-eager in three passes, its A/A copy `copy` times the case (every pass alike)."""
    cases = plans("default", ["overhead"])["overhead"].cases
    factor = {"conv1x1_bn_copy": copy}
    run = make_run(
        "Host", [result(c, "torch-eager", 1e-3 * factor.get(c.variant, 1.0), passes=(1.0,) * 3) for c in cases]
    )
    run.created = created
    return write(run, folder)


def test_the_a_a_control_is_counted_apart_whether_its_interval_holds_one(tmp_path: Path, capsys):
    aa_run(1.0, tmp_path, "2026-01-01T00:00:00+00:00")
    aa_run(1.1, tmp_path, "2026-01-01T00:10:00+00:00")  # the copy 10% slower: that run's noise floor misses 1
    obs3_run(1.3, tmp_path, "2026-01-01T00:20:00+00:00")
    obs3_run(1.3, tmp_path, "2026-01-01T00:30:00+00:00")
    frame, summary = stability.table(stability.load([tmp_path]))
    assert summary.controls == 2 and summary.controls_holding_one == 1 and summary.control_width is not None
    assert len(summary.missed) == 1 and summary.missed[0].startswith("run 2, A/A on Host / torch-eager: 1.1")
    assert main(["stability", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "A/A controls (a case against an identical copy): the interval holds 1 in 1 of 2 (run, target)" in out
    assert "misses 1: run 2, A/A" in out


def test_backends_and_suites_pick_part_of_longer_runs(tmp_path: Path, capsys):
    for minute in (0, 10):
        created = f"2026-01-01T00:{minute:02}:00+00:00"
        obs3, aa = obs3_run(1.3, tmp_path / "tmp", created), aa_run(1.0, tmp_path / "tmp", created)
        run = make_run("Host", [*load_run(obs3).results, *load_run(aa).results])
        run.created = f"2026-01-01T01:{minute:02}:00+00:00"
        write(run, tmp_path / "both")
    whole = stability.table(stability.load([tmp_path / "both"]))[1]
    assert whole.verdicts == 1 and whole.controls == 2
    only_obs3 = stability.table(stability.load([tmp_path / "both"], suites=["obs3"]))[1]
    assert only_obs3.verdicts == 1 and only_obs3.controls == 0
    assert main(["stability", str(tmp_path / "both"), "--suite", "overhead", "--backend", "torch-*"]) == 0
    out = capsys.readouterr().out
    assert "holds 1 in 2 of 2" in out and "obs3" not in out
    assert main(["stability", str(tmp_path / "both"), "--backend", "ort-cpu"]) == 2
    assert "no result matches" in capsys.readouterr().err
    assert main(["stability", str(tmp_path / "both"), "--suite", "obs9"]) == 2
    assert "obs9" in capsys.readouterr().err
