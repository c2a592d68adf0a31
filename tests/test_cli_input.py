"""Bad input to the commands is refused before any work, in one line with exit 2: numbers that are not positive and
finite, thread counts, input shapes (empty, or beyond the stated memory bound), an --out that is a folder, suite
files that cannot be loaded; and a user's suite is loaded only from a file named with --suite-file."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from builders import make_run, result, write

from opbench import options
from opbench import suite as suite_registry
from opbench.cli import main
from opbench.errors import error_line, first_line
from opbench.measure import standalone

MINE = """
import functools
from torch import nn
import opbench

bench = opbench.define_suite("mine", "My two activations", claim="GELU costs more than ReLU")
relu = bench.case("relu", nn.ReLU, (1, 64))
gelu = bench.case("gelu", nn.GELU, (1, 64))
bench.compare("GELU / ReLU", relu, gelu, holds_above=1.1)
SUITE = bench.register()
"""

MODELS = """
from torch import nn


class OutOfMemory(nn.Module):
    def forward(self, x):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 1099511627776 bytes")


class Exhausted(nn.Module):
    def forward(self, x):
        raise MemoryError()
"""


def code_and_err(capsys, *argv: str) -> tuple[int, str]:
    """The exit status (argparse's own errors exit through SystemExit) and standard error."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.fixture
def no_work(monkeypatch):
    """Building the target is the first piece of work `opbench profile` does: a refusal must come before it."""

    def built(*args, **kwargs):
        pytest.fail("the target was built before the bad option was refused")

    monkeypatch.setattr(standalone, "target_case", built)


@pytest.mark.parametrize("seconds", ["nan", "inf", "-inf", "0", "-1"])
def test_profile_refuses_seconds_that_are_not_positive_and_finite(tmp_path: Path, capsys, no_work, seconds):
    code, err = code_and_err(capsys, "profile", "efficientformer_l1", f"--seconds={seconds}",
                             f"--results-dir={tmp_path / 'results'}")  # fmt: skip
    assert code == 2 and err.count("\n") == 1, err
    assert "--seconds must be a positive finite number of seconds" in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("seconds", ["nan", "0"])
def test_slim_refuses_seconds_as_profile_does(capsys, seconds):
    code, err = code_and_err(capsys, "slim", "--budget-ms=1", "--device=x", "--backend=y", f"--seconds={seconds}")
    assert code == 2 and "--seconds must be a positive finite number of seconds" in err


@pytest.mark.parametrize("alpha", ["nan", "inf", "0", "-0.01"])
def test_compare_refuses_an_alpha_that_is_not_positive_and_finite(tmp_path: Path, capsys, alpha):
    code, err = code_and_err(capsys, "compare", "a", "b", f"--alpha={alpha}", f"--results-dir={tmp_path}")
    assert code == 2 and "--alpha must be a positive finite number" in err and err.count("\n") == 1, err


def test_threads_are_checked_as_the_plugin_checks_them(capsys, no_work):
    code, err = code_and_err(capsys, "profile", "efficientformer_l1", "--threads=0")
    assert code == 2 and "--threads must be 1 or more, got 0" in err
    code, err = code_and_err(capsys, "profile", "efficientformer_l1", f"--threads={(os.cpu_count() or 1) + 1}")
    assert code == 2 and "cores of this machine" in err
    code, err = code_and_err(capsys, "slim", "--budget-ms=1", "--device=x", "--backend=y", "--threads=0")
    assert code == 2 and "--threads must be 1 or more, got 0" in err


def test_profile_refuses_an_out_that_is_a_folder_before_building_anything(tmp_path: Path, capsys, no_work):
    code, err = code_and_err(capsys, "profile", "efficientformer_l1", f"--out={tmp_path}",
                             f"--results-dir={tmp_path / 'results'}")  # fmt: skip
    assert code == 2 and f"--out {tmp_path} is a folder" in err and err.count("\n") == 1, err
    assert not (tmp_path / "results").exists()


def test_profile_refuses_an_empty_input_shape_instead_of_using_the_default(capsys, no_work):
    code, err = code_and_err(capsys, "profile", "efficientformer_l1", "--input=")
    assert code == 2 and "--input '' is not a shape like 1x3x224x224" in err


def test_profile_refuses_an_input_beyond_the_memory_bound_and_states_the_bound(capsys, no_work):
    code, err = code_and_err(capsys, "profile", "efficientformer_l1", "--input", "1x3x8192x8192")
    assert code == 2 and err.count("\n") == 1, err
    assert "768 MiB float32 input" in err and f"up to {options.MAX_INPUT_MIB} MiB" in err
    assert options.input_shape("1x4x4096x4096") == (1, 4, 4096, 4096)  # exactly the bound is allowed


@pytest.mark.parametrize("model", ["OutOfMemory", "Exhausted"])
def test_running_out_of_memory_is_named_as_such_not_as_a_rejected_input(tmp_path: Path, capsys, monkeypatch, model):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "user_models.py").write_text(MODELS)
    code, err = code_and_err(capsys, "profile", f"user_models.py:{model}", "--input=1x3x8x8",
                             f"--results-dir={tmp_path / 'results'}")  # fmt: skip
    assert code == 2 and err.count("\n") == 1, err
    assert "ran out of memory on input 1x3x8x8" in err and "rejects" not in err
    assert not (tmp_path / "results").exists()


@pytest.fixture
def registry(monkeypatch):
    """A copy of the suite registry, so that a user's suite registered by a test is gone after it."""
    monkeypatch.setattr(suite_registry, "_REGISTRY", dict(suite_registry._REGISTRY))


def mine_runs(tmp_path: Path, monkeypatch, runs: int = 1) -> tuple[Path, Path]:
    """The suite file, and a folder of `runs` result files of its cases (GELU 1.5x ReLU) that name no suite file:
    the registry is reset afterwards, so only --suite-file can bring the suite back."""
    suite_file = tmp_path / "bench" / "test_mine.py"
    suite_file.parent.mkdir()
    suite_file.write_text(MINE)
    monkeypatch.setattr(suite_registry, "_REGISTRY", dict(suite_registry._REGISTRY))
    suite_registry.import_suite_files([str(suite_file)])
    cases = suite_registry.get_suite("mine").plan("default").cases
    for i in range(runs):
        run = make_run("Host", [result(c, "torch-eager", 1e-3 * (1.5 if c.variant == "gelu" else 1.0)) for c in cases])
        run.created = f"2026-01-01T00:0{i}:00+00:00"
        write(run, tmp_path / "results")
    monkeypatch.setattr(suite_registry, "_REGISTRY", dict(suite_registry._REGISTRY))
    del suite_registry._REGISTRY["mine"]
    return suite_file, tmp_path / "results"


def test_report_judges_a_users_suite_loaded_with_suite_file(tmp_path: Path, capsys, registry, monkeypatch):
    suite_file, results = mine_runs(tmp_path, monkeypatch)
    out = tmp_path / "report" / "index.html"
    assert main(["report", str(results), f"--out={out}", "-q"]) == 0
    assert "mine" not in set(pd.read_csv(out.parent / "verdicts.csv")["suite"])
    assert main(["report", str(results), f"--out={out}", "-q", "--suite-file", str(suite_file),
                 "--suite-file", str(suite_file)]) == 0  # fmt: skip
    verdicts = pd.read_csv(out.parent / "verdicts.csv")
    assert list(verdicts[verdicts["suite"] == "mine"]["status"]) == ["holds"]


def test_stability_judges_a_users_suite_loaded_with_suite_file(tmp_path: Path, capsys, registry, monkeypatch):
    suite_file, results = mine_runs(tmp_path, monkeypatch, runs=2)
    assert main(["stability", str(results), "--suite-file", str(suite_file)]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("mine")]
    assert row.count("holds 1.") == 2 and "yes" in row  # judged in both runs, identically


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "no such file"),
        ("raise ValueError('half written')", "importing it failed (ValueError: half written)"),
        ("x = 1", "registered no suite"),
    ],
)
def test_a_suite_file_that_cannot_be_loaded_is_one_line_exit_2(tmp_path: Path, capsys, registry, body, message):
    path = tmp_path / "test_bad.py"
    if body is not None:
        path.write_text(body)
    for command in ("report", "stability"):
        code, err = code_and_err(capsys, command, str(tmp_path), "--suite-file", str(path))
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_a_message_is_cut_to_its_first_line_without_terminal_colours():
    assert first_line("\n  \x1b[31mConversionError\x1b[0m: no eigh\n  Traceback ...\n") == "ConversionError: no eigh"
    assert first_line("x" * 400, 10) == "x" * 10 and first_line("") == ""
    assert error_line(ValueError("bad\nmore")) == "ValueError: bad" and error_line(MemoryError()) == "MemoryError"
