"""Input a hostile but realistic user gives: a results folder someone sent, a broken case of a user's suite, a full
disk, device names in any script, a read-only cache, torn and crafted journals. Each ends in a one-line message (or
one failed result), never in code run from data, a traceback, or a summary claiming more than is on disk."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import pytest
from builders import all_results, make_run, write

from opbench import suite as suite_registry
from opbench.backends import RunConfig, get_backend
from opbench.cache import ArtifactCache
from opbench.cli import main
from opbench.errors import BackendUnavailable, OpbenchError
from opbench.measure.export_ahead import Job, export_case
from opbench.measure.path import prepare
from opbench.results import JOURNAL, Check, Journal, load_run, slugify
from opbench.suite import select_cases

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
    case_module = tmp_path / "mine.py"
    case_module.write_text(
        "import opbench\nfrom torch import nn\n"
        "bench = opbench.define_suite('hostile_mine', 'Mine')\n"
        "bench.case('relu', nn.ReLU, (1, 4))\n"
        "SUITE = bench.register()\n"
    )
    folder = sent_folder(tmp_path, {"hostile_mine": str(case_module)})
    out = tmp_path / "r" / "index.html"
    suite_file = ["--suite-file", str(case_module)]
    assert main(["report", str(folder), "--out", str(out), "-q", *suite_file, *suite_file]) == 0
    assert "hostile_mine" in out.read_text() and "is not judged" not in out.read_text()


@pytest.mark.parametrize("suites", [["evil.py"], {"theirs": 3}, "evil.py"])
def test_protocol_suites_not_an_object_of_paths_is_an_invalid_file_even_when_skipped(tmp_path: Path, capsys, suites):
    folder = sent_folder(tmp_path, suites)
    write(make_run("Good Box", all_results("torch-eager", keys=("overhead",))), folder)
    assert main(["report", str(folder), "--out", str(tmp_path / "r" / "index.html"), "-q"]) == 2
    assert "protocol/suites" in capsys.readouterr().err
    assert main(["report", str(folder), "--out", str(tmp_path / "r" / "index.html"), "-q", "--skip-invalid"]) == 0
    assert "skipped an invalid result file" in capsys.readouterr().err


BROKEN_SUITE = """
import torch
from torch import nn

import opbench


def raises():
    raise ValueError("no weights here")


class Noisy(nn.Module):
    def forward(self, x):
        return x + torch.rand_like(x)


bench = opbench.define_suite("hostile", "Cases a user gets wrong")
bench.case("raises", raises, (1, 8))
bench.case("not_a_module", lambda: 3, (1, 8))
bench.case("rejects", lambda: nn.Linear(4, 4), (1, 8))
bench.case("tuple_out", lambda: nn.LSTM(8, 8), (1, 1, 8))
bench.case("noisy", Noisy, (1, 8))
bench.case("good", nn.ReLU, (1, 8))
SUITE = bench.register()


def test_cases(opbench_case, benchmark):
    opbench_case.measure(benchmark)
"""
WHY = {
    "hostile/raises": "case hostile/raises: its factory raised ValueError: no weights here",
    "hostile/not_a_module": "case hostile/not_a_module: its factory returned a int, not a torch.nn.Module",
    "hostile/rejects": "case hostile/rejects: the module rejects its input 1x8 (RuntimeError: mat1 and mat2 shapes",
    "hostile/tuple_out": "case hostile/tuple_out: the module returns a tuple; opbench needs one tensor",
    "hostile/noisy": "case hostile/noisy is not deterministic: eager PyTorch answers the same input twice differently",
}
QUICK = ["-p", "no:cacheprovider", "--opbench-passes=1", "--benchmark-max-time=0.01", "--benchmark-min-rounds=3",
         "--benchmark-min-time=0"]  # fmt: skip


@pytest.mark.parametrize("mode", ["--benchmark-disable", "--benchmark-only"])
def test_a_broken_user_case_is_its_own_failed_result_and_every_other_case_runs(pytester, mode):
    pytester.makeconftest('pytest_plugins = ["opbench.pytest_plugin"]')
    pytester.makepyfile(test_hostile=BROKEN_SUITE)
    out = pytester.path / "results"
    workers = "--opbench-export-workers=1" if mode == "--benchmark-only" else "--opbench-export-workers=0"
    result = pytester.runpytest_subprocess(
        *QUICK, mode, "--opbench-backends=torch-eager,ort-cpu", workers, "--opbench-device=Café 华为 Box",
        f"--opbench-cache-dir={pytester.path / 'cache'}", f"--opbench-results-dir={out}",
    )  # fmt: skip
    text = result.stdout.str()
    assert "INTERNALERROR" not in text and "Traceback" not in text, text
    result.assert_outcomes(passed=2, failed=10)
    for case, why in WHY.items():
        for backend in ("torch-eager", "ort-cpu"):
            assert f"failed: {case} on {backend}: {why}" in text, (case, backend, text)
    if mode == "--benchmark-only":
        (path,) = out.rglob("*.json")
        assert path.parent.name == "café-华为-box"
        found = {(r.case, r.backend): r for r in load_run(path).results}
        assert {k for k, r in found.items() if r.ok} == {("hostile/good", "torch-eager"), ("hostile/good", "ort-cpu")}
        assert found[("hostile/raises", "ort-cpu")].reason.startswith(WHY["hostile/raises"])


FULL_DISK = """
import errno, os
import opbench.results as results
pytest_plugins = ["opbench.pytest_plugin"]
writes = []


def full_after_two_lines(fd, data):  # the header and one result fit; the next line is torn, then the disk is full
    writes.append(data)
    if len(writes) > 2:
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")
    os.write(fd, data)


def no_file(*args):
    raise OSError(errno.ENOSPC, "No space left on device")


results._write_all = full_after_two_lines
{patch_write_run}
"""


@pytest.mark.parametrize("file_too", [True, False])
def test_a_full_disk_stops_the_run_and_the_summary_says_what_is_kept(pytester, file_too):
    pytester.makeconftest(FULL_DISK.format(patch_write_run="import opbench.measure.session as p; p.write_run = no_file"
                                           if file_too else ""))  # fmt: skip
    pytester.makepyfile(test_obs4='SUITE = "obs4"\n\ndef test_cases(opbench_case, benchmark):\n'
                        "    opbench_case.measure(benchmark)\n")  # fmt: skip
    out = pytester.path / "results"
    result = pytester.runpytest_subprocess(
        *QUICK, "--benchmark-only", "--opbench-backends=torch-eager", "--opbench-cases=obs4/act/*",
        "--opbench-export-workers=0", f"--opbench-cache-dir={pytester.path / 'cache'}", f"--opbench-results-dir={out}",
    )  # fmt: skip
    text = result.stdout.str() + result.stderr.str()
    assert result.ret != 0 and "Traceback" not in text and "INTERNALERROR" not in text, text
    assert "stopped timing: the journal" in text and "1 of the 2 finished results are kept in" in text
    assert "2 ok, 0 unsupported, 0 failed" in text  # the third case was never timed
    if file_too:
        (journal,) = out.rglob(f"*{JOURNAL}")
        assert "the result file could not be written (No space left on device); 1 of the 2 finished" in text
        assert len(journal.read_text().splitlines()) == 2  # the header and one whole result: no torn line
        assert len(load_run(journal).results) == 1
    else:
        (path,) = out.rglob("*.json")
        assert f"results written to {path}" in text and len(load_run(path).results) == 2


@pytest.mark.parametrize(
    "name, slug",
    [("iPhone 12", "iphone-12"), ("Café Box", "café-box"), ("华为 Mate 60", "华为-mate-60"), ("Cafe\u0301", "café"),
     ("हिन्दी फ़ोन", "हिन्दी-फ़ोन"), ("Test <b>Box</b>", "test-b-box-b")],
)  # fmt: skip
def test_a_device_name_in_any_script_names_its_folder_without_loss(name, slug):
    assert slugify(name) == slug


@pytest.mark.parametrize(
    "name, message",
    [("x" * 10_000, "device name of 10000 characters is too long"), ("华" * 90, "folder name of 270 bytes"),
     ("!!!", "has no letters or digits")],
)  # fmt: skip
def test_a_device_name_no_folder_can_have_is_refused(name, message):
    with pytest.raises(OpbenchError, match=message):
        slugify(name)


@pytest.mark.parametrize(
    "option, message",
    [
        ("--opbench-device=" + "x" * 10_000, "*device name of 10000 characters is too long*"),
        ("--opbench-cache-dir=a-file/cache", "*--opbench-cache-dir a-file/cache is not a folder (a-file is a file)*"),
        ("--opbench-cache-dir=read-only/cache", "*--opbench-cache-dir read-only/cache: read-only is not writable*"),
    ],
)
def test_a_device_or_cache_folder_that_cannot_be_used_is_a_usage_error_before_anything_runs(pytester, option, message):
    if "read-only" in option and os.geteuid() == 0:
        pytest.skip("root writes to a read-only folder")
    (pytester.path / "a-file").write_text("")
    (pytester.path / "read-only").mkdir(mode=0o555)
    pytester.makeconftest('pytest_plugins = ["opbench.pytest_plugin"]')
    pytester.makepyfile(test_overhead='SUITE = "overhead"\n\ndef test_cases(opbench_case, benchmark):\n'
                        "    opbench_case.measure(benchmark)\n")  # fmt: skip
    result = pytester.runpytest_subprocess(*QUICK, "--benchmark-only", "--opbench-backends=torch-eager", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "passed" not in result.stdout.str()


def journal(tmp_path: Path, lines_after: list[str]) -> Path:
    """A killed run's journal: its header and two results, then the given lines, then a third result."""
    first, second, third = all_results("torch-eager", keys=("obs4",))[:3]
    log = Journal(make_run("Killed Box", []), tmp_path)
    log.append(first)
    log.append(second)
    with log.path.open("a") as f:
        f.write("".join(line + "\n" for line in lines_after) + json.dumps(third.to_json()) + "\n")
    return log.path


DEEP = "[" * 100_000 + "]" * 100_000


def test_what_the_protocol_gains_after_a_journal_s_first_line_is_in_the_journal(tmp_path: Path):
    """A backend's call cost is measured when its first window is timed, after the header went to disk: a killed
    run's journal keeps it too (before, the cost that zeroed a loaded run's samples could not be read back)."""
    first, second, third = all_results("torch-eager", keys=("obs4",))[:3]
    log = Journal(make_run("Killed Box", []), tmp_path)
    log.header.protocol["call_cost_s"] = {"torch-eager": 6e-08}
    log.append(first)
    log.header.protocol["call_cost_s"]["openvino-cpu"] = 9.9e-06
    log.append(second)
    log.append(third)
    lines = log.path.read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[2]) == {"protocol": log.header.protocol}
    run = load_run(log.path)
    assert run.protocol["call_cost_s"] == {"torch-eager": 6e-08, "openvino-cpu": 9.9e-06}
    assert len(run.results) == 3 and "interrupted" in run.protocol


def test_unreadable_lines_in_the_middle_of_a_journal_are_left_out_and_named(tmp_path: Path):
    torn = json.dumps(all_results("torch-eager", keys=("obs4",))[5].to_json())[:50]
    run = load_run(journal(tmp_path, [torn, DEEP, "[1, 2]", '{"case": "x"']))
    assert len(run.results) == 3
    note = run.protocol["interrupted"]
    assert "line 4 is not JSON" in note and "line 5 is nested too deeply" in note and "line 6 is an array" in note


def test_a_torn_last_line_of_a_journal_is_left_out_silently(tmp_path: Path):
    path = journal(tmp_path, [])
    path.write_text(path.read_text() + '{"case": "obs4/act')
    run = load_run(path)
    assert len(run.results) == 3 and run.protocol["interrupted"] == "the run was killed; finished cases only"


@pytest.mark.parametrize("header, message", [(DEEP, "nested too deeply"), ("[]", "is an array"), ("", "not JSON")])
def test_a_journal_whose_header_is_not_a_run_is_one_clear_error(tmp_path: Path, header, message):
    path = journal(tmp_path, [])
    path.write_text(header + "\n" + path.read_text().split("\n", 1)[1])
    with pytest.raises(OpbenchError, match=f"its first line, the run's header, .*{message}"):
        load_run(path)


def test_nothing_opbench_writes_is_refused_by_opbench(tmp_path: Path):
    (nan_output, *_), bad = all_results("torch-eager", keys=("overhead",)), all_results("ort-cpu", keys=("overhead",))
    failed = dataclasses.replace(nan_output, status="failed", stats=None, check=Check(float("nan"), 1e-4, False))
    path = write(make_run("NaN Box", [failed]), tmp_path)
    assert math.isnan(load_run(path).results[0].check.max_abs_err)
    with pytest.raises(OpbenchError, match="NaN or Infinity, which JSON does not allow: at results/0/export_s"):
        write(make_run("NaN Box", [dataclasses.replace(bad[0], export_s=float("inf"))]), tmp_path)


def test_an_artifact_an_export_ahead_worker_repaired_is_recorded_as_cache_repaired(tmp_path: Path):
    try:
        backend = get_backend("ort-cpu")
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    case = select_cases(keys=["overhead"])[0]
    config = RunConfig(cache=ArtifactCache(tmp_path))
    backend.export(case, config)
    (artifact,) = tmp_path.glob("onnx/*.onnx")
    artifact.write_bytes(artifact.read_bytes()[:100])  # damaged
    assert export_case(Job(case.id, case.suite, ("ort-cpu",), config), "default", {})[1] == []
    outcome = prepare(case, backend, config)  # the timed process: a cache hit on the repaired artifact
    assert outcome.prepared.cache_hit and "did not match its checksum" in outcome.prepared.info["cache_repaired"]
    assert "cache_repaired" not in prepare(case, backend, config).prepared.info  # told once


@pytest.mark.parametrize("slug", ["../../elsewhere", "Upper", "a--b", "x" * 300])
def test_a_device_folder_opbench_would_not_make_is_an_invalid_result_file(tmp_path: Path, slug):
    data = make_run("Box", all_results("torch-eager", keys=("overhead",))).to_json()
    data["device"]["slug"] = slug
    (tmp_path / "run.json").write_text(json.dumps(data))
    with pytest.raises(OpbenchError, match="device/slug"):
        load_run(tmp_path / "run.json")
