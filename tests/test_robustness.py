"""Damaged caches and failing backends, spreadsheet-safe CSVs, all-or-nothing reports, compare's edge cases."""

from __future__ import annotations

import csv
import io
import math
import multiprocessing
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from builders import all_results, make_run, write

from opbench import files
from opbench import report as reporting
from opbench.analysis import compare
from opbench.backends import Backend, Prepared, RunConfig, get_backend
from opbench.cache import ArtifactCache, checksum_file
from opbench.cli import main
from opbench.errors import BackendUnavailable
from opbench.measure.path import measure, reference
from opbench.report import tables
from opbench.results import Result, Stats
from opbench.suite import select_cases

# --- the artifact cache ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def case():
    (found,) = select_cases(pattern="overhead/floor/add_one")
    return found


def package(path: Path) -> None:
    """A stand-in for an .mlpackage: a folder of files."""
    (path / "Data").mkdir(parents=True)
    (path / "Data" / "weights.bin").write_bytes(b"w" * 1000)
    (path / "Manifest.json").write_text("{}")


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: (p / "Data" / "weights.bin").write_bytes(b"w" * 10),  # truncated
        lambda p: (p / "Manifest.json").unlink(),  # a file lost
    ],
)
def test_a_damaged_artifact_is_evicted_rebuilt_and_said(tmp_path, case, damage):
    cache = ArtifactCache(tmp_path)
    first = cache.get_or_create(case, "dirs", {}, ".mlpackage", package)
    assert checksum_file(first.path).read_text().strip() == files.tree_sha256(first.path) == first.sha256
    damage(first.path)
    again = cache.get_or_create(case, "dirs", {}, ".mlpackage", package)
    assert not again.cache_hit and "did not match its checksum" in again.info["cache_repaired"]
    assert files.tree_sha256(again.path) == first.sha256
    third = cache.get_or_create(case, "dirs", {}, ".mlpackage", lambda p: pytest.fail("exported a good artifact"))
    assert third.cache_hit and third.info == {}


def test_an_artifact_without_a_checksum_is_exported_again(tmp_path, case):
    cache = ArtifactCache(tmp_path)
    path = cache.path_for(case, "files", {}, ".bin")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"from an older opbench")
    artifact = cache.get_or_create(case, "files", {}, ".bin", lambda p: p.write_bytes(b"new"))
    assert path.read_bytes() == b"new" and "no checksum" in artifact.repaired
    assert checksum_file(path).exists()


def slow_package(path: Path) -> None:
    """`package`, slowly, leaving a mark per call: the exports of two processes would overlap without the lock."""
    with (path.parent / "exports.log").open("a") as log:
        log.write(f"{os.getpid()}\n")
    time.sleep(0.5)
    package(path)


def fetch(root: Path, case, results) -> None:
    artifact = ArtifactCache(root).get_or_create(case, "dirs", {}, ".mlpackage", slow_package)
    results.put((artifact.cache_hit, artifact.path.is_dir(), files.tree_sha256(artifact.path), artifact.sha256))


def test_processes_sharing_the_cache_export_an_artifact_once_and_all_find_it_whole(tmp_path, case):
    """What failed in CI: xdist workers measuring ort-cpu and ort-cpu-noopt export the same ONNX file at once."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=fetch, args=(tmp_path, case, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    found = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(hit for hit, *_ in found) == [False, True, True]  # one export, two cache hits
    assert all(is_dir and actual == recorded for _, is_dir, actual, recorded in found)
    assert len((tmp_path / "dirs" / "exports.log").read_text().split()) == 1
    assert not [p for p in tmp_path.rglob(".*tmp*")]


# artifact folder (glob under the cache) and the file in it to damage, per backend
ARTIFACTS = {
    "ort-cpu": ("onnx/*.onnx", ""),
    "openvino-cpu": ("openvino/*.ir", "model.xml"),
    "executorch-xnnpack": ("executorch/*.et", "model.pte"),
}


def cached_artifact(name: str, case, tmp_path: Path) -> tuple[Backend, RunConfig, Path, Path]:
    """The backend with the case measured once into a fresh cache: (backend, config, artifact, file to damage)."""
    try:
        backend = get_backend(name)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    config = RunConfig(cache=ArtifactCache(tmp_path))
    assert measure(case, backend, config, lambda fn: fn()).status == "ok"
    pattern, inner = ARTIFACTS[name]
    (artifact,) = tmp_path.glob(pattern)
    file = artifact / inner
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])  # truncated
    return backend, config, artifact, file


@pytest.mark.parametrize("name", ARTIFACTS)
def test_a_truncated_cached_artifact_is_rebuilt_and_the_result_says_so(name, case, tmp_path):
    backend, config, _, _ = cached_artifact(name, case, tmp_path)
    outcome = measure(case, backend, config, lambda fn: fn())
    assert outcome.status == "ok", outcome.reason
    assert "did not match its checksum" in outcome.prepared.info["cache_repaired"]


@pytest.mark.parametrize("name", ARTIFACTS)
def test_damage_the_checksum_cannot_see_is_a_failure_not_unsupported(name, case, tmp_path):
    backend, config, artifact, _ = cached_artifact(name, case, tmp_path)
    checksum_file(artifact).write_text(files.tree_sha256(artifact))  # as if it had been damaged before hashing
    outcome = measure(case, backend, config, lambda fn: pytest.fail("a damaged artifact was timed"))
    assert outcome.status == "failed" and outcome.reason.startswith(f"{name} could not prepare the case: ")


# --- a backend that fails ----------------------------------------------------------------------------------------


class Faulty(Backend):
    """Right answers, except that one step raises."""

    name = "faulty"

    def __init__(self, where: str):
        self.where = where

    def versions(self):
        return {}

    def prepare(self, case, config):
        self._fail_at("prepare")
        return Prepared(run=lambda: self._fail_at("run"), infer=lambda: self._fail_at("check") or reference(case))

    def _fail_at(self, step: str) -> None:
        if step == self.where:
            raise RuntimeError("the runtime crashed")


@pytest.mark.parametrize(
    "where, says",
    [("prepare", "could not prepare the case"), ("check", "failed on its first run"), ("run", "failed while timed")],
)
def test_any_backend_error_is_a_recorded_failure(where, says, case, tmp_path):
    outcome = measure(case, Faulty(where), RunConfig(cache=ArtifactCache(tmp_path)), lambda fn: fn())
    assert outcome.status == "failed"
    assert outcome.reason == f"faulty {says}: RuntimeError: the runtime crashed"


# --- spreadsheet-safe CSV ----------------------------------------------------------------------------------------


def test_csv_cells_a_spreadsheet_would_run_are_neutralised():
    texts = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx", "a=b", "-1.5", "ok"]
    frame = pd.DataFrame({"text": texts, "number": [-1.5, -2, 0, 1, 2, 3, 4, 5, 6]})
    table = pd.read_csv(io.StringIO(files.csv_text(frame)), keep_default_na=False)
    assert list(table["text"]) == ["'" + t for t in texts[:6]] + ["a=b", "-1.5", "ok"]
    assert table["number"].tolist() == [-1.5, -2, 0, 1, 2, 3, 4, 5, 6]  # numbers stay numbers


FORMULA_DEVICE = '=HYPERLINK("http://evil","click")'


def csv_cells(folder: Path) -> list[str]:
    cells = []
    for path in folder.glob("*.csv"):
        with path.open(newline="", encoding="utf-8") as f:
            cells.extend(cell for row in csv.reader(f) for cell in row)
    return cells


def test_report_and_compare_csvs_are_spreadsheet_safe(tmp_path, capsys):
    folder = tmp_path / "runs"
    write(make_run(FORMULA_DEVICE, all_results("torch-eager", keys=("obs3",))), folder)
    out = reporting.render([folder], tmp_path / "r" / "index.html", progress=False)
    cells = csv_cells(out.parent)
    assert "'" + FORMULA_DEVICE in cells
    assert not [c for c in cells if c.startswith(files.FORMULA_START) and not files.PLAIN_NUMBER.fullmatch(c)]
    (run_file,) = folder.rglob("*.json")
    assert main(["compare", str(run_file), str(run_file), "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert (table["change"] == "same").all()


# --- a report is written whole or not at all ---------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_render_that_fails_after_the_first_table_leaves_the_previous_report(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    write(make_run("Host", all_results("torch-eager", keys=("obs3",))), folder)
    out = reporting.render([folder], tmp_path / "r" / "index.html", progress=False)
    before = snapshot(out.parent)
    write(make_run("Other", all_results("ort-cpu", keys=("obs3",))), folder)  # a new render would change every file

    def broken(judged):
        raise RuntimeError("the second table broke")

    monkeypatch.setattr(tables, "verdicts_table", broken)
    with pytest.raises(RuntimeError, match="second table"):
        reporting.render([folder], out, progress=False)
    assert snapshot(out.parent) == before


def test_files_replaced_together_change_nothing_when_one_cannot_be_written(tmp_path):
    (tmp_path / "a.csv").write_text("old")
    with pytest.raises(FileNotFoundError):
        files.replace_together({tmp_path / "a.csv": "new", tmp_path / "missing" / "b.csv": "new"})
    assert snapshot(tmp_path) == {"a.csv": b"old"}  # and no temporary file left


# --- compare -----------------------------------------------------------------------------------------------------


def timed(case: str, median_s: float, samples: list[float] | None = None) -> Result:
    return Result(
        case=case, suite="obs4", backend="x", stats=Stats(median_s, passes_s=(tuple(samples),) if samples else ())
    )


def selection(results: list[Result]) -> compare.Selection:
    return compare.Selection(make_run("Host", results), None, "constructed")


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0.0, -1e-3])
def test_an_impossible_median_is_invalid_never_same_and_fails_the_gate(bad):
    row = compare.compare_results(timed("c", 1e-3), timed("c", bad))
    assert row["change"] == "invalid" and not row["significant"] and row["basis"].startswith("B: 1 timing(s)")
    nan_samples = timed("c", 1e-3, [1e-3, math.nan, 1e-3])
    assert compare.compare_results(nan_samples, timed("c", 1e-3))["change"] == "invalid"
    table = compare.compare(
        selection([timed("c", 1e-3), timed("d", 1e-3)]), selection([timed("c", bad), timed("d", 1e-3)])
    )
    assert list(compare.regressions(table, 1.2)["case"]) == ["c"]


def test_nothing_compared_is_an_error(tmp_path, capsys):
    folder = tmp_path / "runs"
    a = write(make_run("Host", [timed("c1", 1e-3)]), folder)
    b = write(make_run("Host", [timed("c2", 1e-3)]), folder)
    assert main(["compare", str(a), str(b)]) == 2
    assert "nothing compared" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--factor", "--fail-on-regression"])
@pytest.mark.parametrize("value", ["nan", "inf", "1", "0.5", "fast"])
def test_a_bad_ratio_threshold_is_a_usage_error(option, value, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["compare", "a.json", "b.json", option, value])
    assert caught.value.code == 2 and "not a finite number above 1" in capsys.readouterr().err


# --- command-line paths that are not what they should be ---------------------------------------------------------


def test_output_paths_that_are_files_or_folders_are_one_line_errors(tmp_path, capsys):
    folder = tmp_path / "runs"
    write(make_run("Host", all_results("torch-eager", keys=("obs3",))), folder)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for argv, message in (
        (["report", str(folder), "-q", "--out", str(a_file / "index.html")], "is not a folder"),
        (["report", str(folder), "-q", "--out", str(tmp_path)], "is a folder"),
        (["export", "--backend", "onnx", "-o", "overhead", "--out", str(a_file)], "is not a folder"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
