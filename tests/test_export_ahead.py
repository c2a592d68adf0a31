"""Exporting ahead in worker processes: what a worker cannot do is reported and left to the timed process."""

import threading

from opbench.backends import RunConfig
from opbench.cache import ArtifactCache
from opbench.measure.export_ahead import Job, export_ahead
from opbench.suite import select_cases


def test_a_worker_fills_the_cache_and_what_it_cannot_do_is_left_to_the_run(tmp_path):
    config = RunConfig(cache=ArtifactCache(tmp_path))
    case = select_cases("default", ["obs4"], "obs4/*/relu/*h7")[0]
    jobs = [
        Job("obs4/no/such/case", "obs4", ("ort-cpu",), config),
        Job(case.id, "obs4", ("ort-cpu", "ort-cpu-noopt"), config),
    ]
    lines: list[str] = []
    problems = export_ahead(jobs, "default", {}, 1, lines.append)
    assert problems == ["obs4/no/such/case: not found in suite 'obs4' by a worker"]
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 1  # both ORT backends share the one file
    assert lines[0] == "exporting 2 cases in 1 worker processes before anything is timed"
    assert lines[-1].startswith("exported ahead in") and lines[-1].endswith("; 1 left to the run")


def test_more_jobs_than_a_worker_used_to_take_all_finish(tmp_path):
    """Workers recycled after 16 jobs (max_tasks_per_child) hung a cold run for good at job 32 (CPython gh-115634)."""
    config = RunConfig(cache=ArtifactCache(tmp_path))
    jobs = [Job(f"obs4/no/such/case{i}", "obs4", ("ort-cpu",), config) for i in range(40)]
    found: list[list[str]] = []
    thread = threading.Thread(target=lambda: found.append(export_ahead(jobs, "default", {}, 1, lambda line: None)))
    thread.start()
    thread.join(timeout=300)
    assert not thread.is_alive(), "export_ahead hung"
    assert len(found[0]) == 40
