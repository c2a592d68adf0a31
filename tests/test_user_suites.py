"""Users' own suites and models: a case module outside the package run through the plugin and judged by the report,
`opbench profile` on a user's model and on a zoo model, each bad target's message, and the README's worked example
run as written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from torch import nn

import opbench
from opbench.cli import main
from opbench.errors import OpbenchError

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECTION = "## Your own blocks and models"
BACKENDS = "torch-eager,ort-cpu"
SHORT = ["--benchmark-max-time=0.01", "--benchmark-min-rounds=5", "--benchmark-warmup-iterations=1"]


def readme_example() -> tuple[dict[str, str], list[str]]:
    """The files (python blocks whose first line is `# <path>`) and commands (the sh block) of the README's
    worked example."""
    text = README.read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    files, commands = {}, []
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", text, re.S):
        if lang == "python":
            first, rest = body.split("\n", 1)
            files[first.removeprefix("# ").strip()] = rest
        elif lang == "sh":
            commands += [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
    return files, commands


def env() -> dict[str, str]:
    """The subprocess environment: this tree's opbench first, the venv's `pytest` and `opbench` on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PYTHONPATH": str(ROOT), "PATH": path}


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=600)


def user_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    for name, body in readme_example()[0].items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(body)
    return project


def pytest_args(*extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "benchmarks/",
            f"--opbench-backends={BACKENDS}", *extra]  # fmt: skip


def test_a_user_threshold_carries_a_margin_and_a_bad_margin_is_refused():
    bench = opbench.define_suite("margins", "Margins")
    a, b = (bench.case(v, nn.Identity, (1, 4)) for v in ("a", "b"))
    bench.compare("b / a", a, b, holds_below=1.2)
    bench.compare("a / b", b, a, holds_above=0.5, margin=0.1)
    default, given = (p.threshold for p in bench.parts)
    assert default.margin == 0.02 and "default" in default.margin_reason
    assert given.margin == 0.1 and given.margin_reason
    for bad in (-0.01, float("nan"), float("inf"), "2%"):
        with pytest.raises(OpbenchError, match="margin"):
            bench.compare("bad", a, b, holds_below=1.2, margin=bad)


def test_a_user_case_module_is_smoke_run_timed_and_judged_by_the_report(tmp_path: Path):
    project = user_project(tmp_path)
    smoke = run(pytest_args("--benchmark-disable"), project)
    assert smoke.returncode == 0 and "2 passed" in smoke.stdout, smoke.stdout + smoke.stderr
    assert not (project / "device_results").exists()  # --benchmark-disable times nothing, writes nothing

    timed = run(pytest_args("--benchmark-only", *SHORT), project)
    assert timed.returncode == 0 and "2 passed" in timed.stdout, timed.stdout + timed.stderr
    (path,) = (project / "device_results").rglob("*.json")
    data = json.loads(path.read_text())
    assert data["protocol"]["suites"] == {"my_blocks": str(project / "benchmarks" / "test_my_blocks.py")}
    measured = {(r["case"], r["backend"]) for r in data["results"] if r["status"] == "ok"}
    assert measured == {(c, b) for c in ("my_blocks/meta4d", "my_blocks/gated_meta4d") for b in BACKENDS.split(",")}

    # a fresh process: the result file names the case module but does not import it; the user names it
    unjudged = run(["opbench", "report", "-q"], project)
    assert unjudged.returncode == 0 and "warning: suite 'my_blocks' is not judged" in unjudged.stderr
    assert "my_blocks" not in set(pd.read_csv(project / "reports" / "verdicts.csv")["suite"])
    report = run(["opbench", "report", "-q", "--suite-file", "benchmarks/test_my_blocks.py"], project)
    assert report.returncode == 0, report.stderr
    verdicts = pd.read_csv(project / "reports" / "verdicts.csv")
    mine = verdicts[verdicts["suite"] == "my_blocks"]
    assert set(mine["backend"]) == set(BACKENDS.split(","))
    assert set(mine["status"]) <= {"holds", "does not hold", "inconclusive"}
    html = (project / "reports" / "index.html").read_text()
    summary = html.split('id="summary-matrix"')[1].split("</table>")[0]
    assert "Gated pool mixer against EfficientFormer" in summary and "my_blocks.gated_meta4d_block" in html

    # the case module gone (results taken elsewhere): naming it is a one-line error
    shutil.move(project / "benchmarks", tmp_path / "elsewhere")
    gone = run(["opbench", "report", "-q", "--suite-file", "benchmarks/test_my_blocks.py"], project)
    assert gone.returncode != 0 and "test_my_blocks.py: no such file" in gone.stderr, gone.stderr


def test_readme_worked_example_runs_as_written(tmp_path: Path):
    project = user_project(tmp_path)
    commands = readme_example()[1]
    assert [c.split()[:2] for c in commands] == [["pytest", "--benchmark-only"], ["opbench", "profile"]]
    for command in commands:
        done = run(command.split(), project)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert "my_blocks" in pd.read_csv(project / "reports" / "verdicts.csv")["suite"].values
    text = (project / "reports" / "profile" / "profile__my_model.tiny_net.md").read_text()
    for backend in BACKENDS.split(","):
        assert f"## Where the time goes on {backend}" in text
    assert re.search(r"token_mixer\s+\d+\.\d+\s+\d+\.\d%", text)  # the contract's names give the categories
    assert "  torch-eager: ok, " in done.stderr and "  ort-cpu: ok, " in done.stderr


MODELS = """
import torch
from torch import nn


def small():
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4))


def broken():
    raise ValueError("no weights here")


def not_a_module():
    return 3


class Noisy(nn.Module):
    def forward(self, x):
        return nn.functional.dropout(x, 0.5, training=True)


class Eigen(nn.Module):  # torch.onnx has no eigh: ort-cpu cannot export it, eager runs it
    def forward(self, x):
        return torch.linalg.eigvalsh(x @ x.transpose(-1, -2))
"""


@pytest.fixture
def models(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "user_models.py").write_text(MODELS)
    return tmp_path


def profile(models: Path, *args: str) -> list[str]:
    return ["profile", *args, f"--results-dir={models / 'results'}", f"--cache-dir={models / 'cache'}",
            "--seconds=0.05", f"--out={models / 'report.md'}"]  # fmt: skip


def test_profile_a_user_model_writes_a_result_file_and_its_report(models: Path, capsys):
    assert main(profile(models, "user_models.py:small", "--input", "1x3x32x32", "--backends", BACKENDS)) == 0
    out, err = capsys.readouterr()
    assert "  torch-eager: ok, " in err and "  ort-cpu: ok, " in err and "GMAC/s" in err
    (path,) = (models / "results").rglob("*.json")
    data = json.loads(path.read_text())
    assert {r["backend"]: r["status"] for r in data["results"]} == {"torch-eager": "ok", "ort-cpu": "ok"}
    assert all(r["profile"]["rows"] and r["check"]["passed"] for r in data["results"])
    assert data["protocol"]["target"] == "user_models.py:small" and "perf_counter" in data["protocol"]["timer"]
    assert out == (models / "report.md").read_text()
    assert "profile/user_models.small" in out and "top 8 operators" in out


def test_profile_efficientformer_l1(models: Path, capsys):
    assert main(profile(models, "efficientformer_l1", "--backends", BACKENDS)) == 0
    out, _ = capsys.readouterr()
    (path,) = (models / "results").rglob("*.json")
    results = json.loads(path.read_text())["results"]
    assert {r["case"] for r in results} == {"models/efficientformer_l1"}
    for backend in BACKENDS.split(","):
        assert f"## Where the time goes on {backend}" in out
    latency = out.split("## End-to-end latency")[1].split("##")[0]
    assert re.search(r"torch-eager\s+ok\s+\d+\.\d+\s+\[\d+\.\d+, \d+\.\d+\]\s+\d+\.\d", latency)
    assert re.search(r"token_mixer\s+\d+\.\d+\s+\d+\.\d%", out) and "coverage" in out


@pytest.mark.parametrize(
    ("target", "extra", "message"),
    [
        ("missing_file.py:small", [], "no such file missing_file.py"),
        ("no_such_package.models:small", [], "does not import: ModuleNotFoundError"),
        ("user_models.py:absent", [], "has no callable 'absent'"),
        ("user_models.py:broken", [], "the factory raised ValueError: no weights here"),
        ("user_models.py:not_a_module", [], "returned a int, not a torch.nn.Module"),
        ("user_models.py:small", ["--input", "1x5x32x32"], "the model rejects input 1x5x32x32"),
        ("user_models.py:small", ["--input", "1x3xbig"], "is not a shape like 1x3x224x224"),
        ("user_models.py:Noisy", ["--input", "1x3x8x8"], "not deterministic"),
        ("efficientformer_l9", [], "is no zoo model"),
    ],
)
def test_profile_bad_input_is_one_line_exit_2_and_writes_nothing(models: Path, capsys, target, extra, message):
    assert main(profile(models, target, *extra, "--backends", BACKENDS)) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("opbench: error:") and err.count("\n") == 1, err
    assert not (models / "results").exists() and not (models / "report.md").exists()


def test_profile_a_model_one_backend_cannot_export_goes_on(models: Path, capsys):
    assert main(profile(models, "user_models.py:Eigen", "--input", "1x3x8x8", "--backends", BACKENDS)) == 0
    out, err = capsys.readouterr()
    assert "  ort-cpu: unsupported: ConversionError" in err and "  torch-eager: ok, " in err
    assert "aten._linalg_eigh" in out  # the exporter's own message, in the report
    (path,) = (models / "results").rglob("*.json")
    statuses = {r["backend"]: r["status"] for r in json.loads(path.read_text())["results"]}
    assert statuses == {"torch-eager": "ok", "ort-cpu": "unsupported"}
