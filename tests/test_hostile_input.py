"""Input a hostile but realistic user gives: a results folder someone sent, a broken case of a user's suite, a full
disk, device names in any script, a read-only cache, torn and crafted journals. Each ends in a one-line message (or
one failed result), never in code run from data, a traceback, or a summary claiming more than is on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import all_results, make_run, write

from opbench import suite as suite_registry
from opbench.cli import main
from opbench.report import render

EVIL = """
from pathlib import Path
Path({marker!r}).write_text("ran")
"""


def sent_folder(tmp_path: Path, suites: object) -> Path:
    """A results folder as someone might send it: a valid run whose protocol.suites names a file inside it."""
    folder = tmp_path / "sent"
    run = make_run("Their Box", all_results("torch-eager", keys=("overhead",)))
    run.protocol["suites"] = suites
    data = run.to_json()
    (folder / "their-box").mkdir(parents=True)
    (folder / "their-box" / f"{run.run_id}.json").write_text(json.dumps(data))
    return folder


def test_a_result_file_never_imports_the_suite_file_it_names(tmp_path: Path, capsys):
    marker = tmp_path / "marker"
    folder = sent_folder(tmp_path, {"theirs": "evil.py"})
    (folder / "evil.py").write_text(EVIL.format(marker=str(marker)))
    (folder / "their-box" / "evil.py").write_text(EVIL.format(marker=str(marker)))
    assert main(["report", str(folder), "--out", str(tmp_path / "r" / "index.html"), "-q"]) == 0
    assert not marker.exists()
    err = capsys.readouterr().err
    assert "suite 'theirs' is not judged" in err and "--suite-file" in err and "evil.py" in err
    assert "suite &#39;theirs&#39; is not judged" in (tmp_path / "r" / "index.html").read_text()


def test_a_suite_file_the_user_names_is_imported_and_judged(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(suite_registry, "_REGISTRY", dict(suite_registry._REGISTRY))
    monkeypatch.setattr(suite_registry, "_IMPORTED", {})
    case_module = tmp_path / "mine.py"
    case_module.write_text(
        "import opbench\nfrom torch import nn\n"
        "bench = opbench.define_suite('hostile_mine', 'Mine')\n"
        "bench.case('relu', nn.ReLU, (1, 4))\n"
        "SUITE = bench.register()\n"
    )
    folder = sent_folder(tmp_path, {"hostile_mine": str(case_module)})
    out = render([folder], tmp_path / "r" / "index.html", progress=False, suite_files=[case_module, case_module])
    assert "hostile_mine" in out.read_text() and "is not judged" not in out.read_text()


@pytest.mark.parametrize("suites", [["evil.py"], {"theirs": 3}, "evil.py"])
def test_protocol_suites_not_an_object_of_paths_is_an_invalid_file_even_when_skipped(tmp_path: Path, capsys, suites):
    folder = sent_folder(tmp_path, suites)
    write(make_run("Good Box", all_results("torch-eager", keys=("overhead",))), folder)
    assert main(["report", str(folder), "--out", str(tmp_path / "r" / "index.html"), "-q"]) == 2
    assert "protocol/suites" in capsys.readouterr().err
    assert main(["report", str(folder), "--out", str(tmp_path / "r" / "index.html"), "-q", "--skip-invalid"]) == 0
    assert "skipped an invalid result file" in capsys.readouterr().err
