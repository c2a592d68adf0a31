"""`opbench stability`: several runs' verdicts side by side, flips counted; bad input is a clear error."""

from __future__ import annotations

from pathlib import Path

from builders import make_run, result, write

from opbench.cli import main
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
