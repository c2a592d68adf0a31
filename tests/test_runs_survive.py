"""Nothing bad gets in, no run is lost: impossible numbers, sizes and nesting are refused where results enter;
a run killed by SIGTERM or SIGKILL, or one that cannot write its file, keeps what it finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from builders import all_results, make_run, write

from opbench.errors import OpbenchError
from opbench.report import render
from opbench.results import JOURNAL, MAX_SAMPLES, load_run, load_runs

ROOT = Path(__file__).resolve().parents[1]


def written(tmp_path: Path, keys=("obs4",)) -> tuple[Path, dict]:
    path = write(make_run("Host", all_results("torch-eager", keys=keys)), tmp_path / "runs")
    return path, json.loads(path.read_text())


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_and_are_refused(tmp_path, token):
    path, run = written(tmp_path)
    text = json.dumps(run).replace('"median_s": ', f'"median_s": {token}, "was": ', 1)
    path.write_text(text)
    with pytest.raises(OpbenchError, match=f"{token} is not a number JSON allows"):
        load_run(path)


@pytest.mark.parametrize("bad", [-1e-3, 0.0])
def test_negative_or_zero_timings_are_refused_with_where(tmp_path, bad):
    path, run = written(tmp_path)
    run["results"][3]["stats"]["samples_s"] = [bad] * 5
    path.write_text(json.dumps(run))
    with pytest.raises(OpbenchError, match=r"at results/3/stats: 5 timing\(s\) not a positive finite number"):
        load_run(path)


@pytest.mark.parametrize("bad", ["1e-3", True, None, [1e-3]])
def test_a_sample_that_is_not_a_number_is_refused_wherever_it_sits_in_a_pass(tmp_path, bad):
    """The schema sees only the first sample of each pass (a full run has hundreds of thousands); the rest are checked
    as numbers all the same."""
    path, run = written(tmp_path)
    run["results"][3]["stats"]["passes_s"] = [[1e-3, 1e-3], [1e-3, bad, 1e-3]]
    path.write_text(json.dumps(run))
    with pytest.raises(OpbenchError, match=r"at results/3/stats: 1 timing\(s\) not a positive finite number"):
        load_run(path)
    run["results"][3]["stats"]["passes_s"] = [[bad, 1e-3]]
    path.write_text(json.dumps(run))
    with pytest.raises(OpbenchError, match=r"at results/3/stats: .* is not valid under any of the given schemas"):
        load_run(path)


def test_a_duplicate_case_and_backend_in_one_run_is_refused(tmp_path):
    path, run = written(tmp_path)
    run["results"].append(dict(run["results"][0]))
    path.write_text(json.dumps(run))
    with pytest.raises(OpbenchError, match=r"listed twice \(first at results/0\)"):
        load_run(path)


def test_deep_nesting_and_huge_files_are_one_clear_error(tmp_path, monkeypatch):
    deep = tmp_path / "runs" / "deep.json"
    deep.parent.mkdir(parents=True)
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(OpbenchError, match="nested too deeply"):
        load_run(deep)
    out = render([tmp_path / "runs", written(tmp_path)[0]], tmp_path / "r" / "index.html", skip_invalid=True,
                 progress=False, warn=lambda m: None)  # fmt: skip
    assert "deep.json" in out.read_text()
    monkeypatch.setattr("opbench.files.MAX_JSON_BYTES", 10)
    with pytest.raises(OpbenchError, match="larger than a result file can be"):
        load_run(written(tmp_path)[0])


def test_a_long_problem_is_quoted_short(tmp_path):
    path = tmp_path / "long.json"
    path.write_text(json.dumps({"schema": "opbench-results/1", "run_id": "x" * 300_000}))
    with pytest.raises(OpbenchError) as caught:
        load_run(path)
    assert len(str(caught.value)) < 5_000


def test_a_result_with_a_hundred_thousand_samples_reports_quickly(tmp_path):
    path, run = written(tmp_path, keys=("obs3",))
    run["results"][0]["stats"]["passes_s"] = [[1e-4 * (1 + (i % 7) / 100) for i in range(50_000)]] * 2
    path.write_text(json.dumps(run))
    (loaded,) = load_runs([path])
    thinned = loaded.results[0].stats
    assert len(thinned.passes_s) == 2 and len(thinned.samples_s) == MAX_SAMPLES  # the same share of each pass
    start = time.perf_counter()
    render([path], tmp_path / "r" / "index.html", progress=False)
    assert time.perf_counter() - start < 60  # bounded work; the 10 s is measured in the note, not here


# --- runs that survive ---------------------------------------------------------------------------------------------


def bench(results: Path, cache: Path, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "pytest", "--benchmark-only", "-q", "-p", "no:cacheprovider",
        "cases/test_obs4_nonlinearity.py", "--opbench-cases", "obs4/act/*", "--opbench-backends", "torch-eager",
        "--benchmark-max-time=0.05", "--benchmark-min-rounds=3", f"--opbench-results-dir={results}",
        f"--opbench-cache-dir={cache}", *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def journal_lines(results: Path) -> int:
    return sum(len(p.read_text().splitlines()) - 1 for p in results.rglob(f"*{JOURNAL}"))


def kill_after(process: subprocess.Popen, results: Path, finished: int, sig: int) -> None:
    deadline = time.monotonic() + 300
    while journal_lines(results) < finished:
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.2)
    process.send_signal(sig)
    process.wait(timeout=120)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_run_keeps_what_it_finished_and_the_report_renders_it(tmp_path, sig):
    results = tmp_path / "results"
    process = bench(results, tmp_path / "cache")
    kill_after(process, results, 3, sig)
    (run,) = load_runs([results])
    done = [r for r in run.results if r.ok]
    assert 3 <= len(done) < 20  # 20 activation cases: killed halfway
    journals = list(results.rglob(f"*{JOURNAL}"))
    if sig == signal.SIGTERM:  # the session ended as with Ctrl-C: a result file, no journal left
        assert not journals and not run.protocol.get("interrupted")
    else:  # nothing could run: the journal is the run
        assert journals and run.protocol["interrupted"]
    html = render([results], tmp_path / "r" / "index.html", progress=False).read_text()
    assert done[0].case in html
    assert not [p for p in results.rglob("*") if p.name.startswith(".")]  # no temporary files


def test_a_run_killed_in_its_second_pass_keeps_every_case_once_with_the_passes_it_finished(tmp_path):
    results = tmp_path / "results"
    process = bench(results, tmp_path / "cache", "--opbench-passes=2")
    kill_after(process, results, 22, signal.SIGKILL)  # 20 cases in pass 1, then two of pass 2
    (run,) = load_runs([results])
    assert len(run.results) == len({r.case for r in run.results}) == 20
    assert sum(len(r.stats.passes_s) == 2 for r in run.results) >= 2


def test_a_result_file_that_cannot_be_written_keeps_the_journal(tmp_path):
    conftest = tmp_path / "conftest_full.py"
    conftest.write_text(
        "import errno, opbench.measure.session as session\n"
        "def full(*args):\n    raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "session.write_run = full\n"
    )
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [
        sys.executable, "-m", "pytest", "--benchmark-only", "-q", "-p", "no:cacheprovider", "-p", "conftest_full",
        "cases/test_overhead.py", "--opbench-cases", "overhead/floor/*", "--opbench-backends", "torch-eager",
        "--benchmark-max-time=0.01",
        f"--opbench-results-dir={results}", f"--opbench-cache-dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert "No space left on device" in done.stdout and "Traceback" not in done.stdout
    (journal,) = results.rglob(f"*{JOURNAL}")
    assert str(journal) in done.stdout
    (run,) = load_runs([results])
    assert [r.case for r in run.results] == ["overhead/floor/add_one"] and run.results[0].ok
