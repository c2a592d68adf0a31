"""scripts/drift_check.py's arithmetic on calls of known cost (the script itself times real cases; no timing here)."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "drift_check.py"


@pytest.fixture
def drift_check(monkeypatch):
    spec = importlib.util.spec_from_file_location("drift_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "SECONDS", 0.02)
    monkeypatch.setattr(module, "REPEATS", 4)
    monkeypatch.setattr(module, "BLOCK_S", 0.1)  # blocks of 10 calls of 0.01 s
    return module


def test_a_steady_machine_shows_no_drift(drift_check):
    line = drift_check.drift(lambda: 0.01)
    assert "blocks of 10 calls" in line and "from +0.0% to +0.0%" in line and "differ by 0.0% (median)" in line


def test_a_machine_that_steps_between_blocks_shows_it(drift_check):
    costs = itertools.cycle([0.01] * 10 + [0.0105] * 10)  # 5% slower every other block of 0.1 s
    line = drift_check.drift(lambda: next(costs))
    assert "blocks of 10 calls" in line and "5.0% (90th percentile)" in line


def test_the_pair_is_timed_both_ways_with_its_ratio(drift_check):
    text = drift_check.pair(lambda: 0.01, lambda: 0.011)
    assert "4 repeats of 10 calls a side" in text
    assert "in blocks    median 1.100" in text and "paired       median 1.100" in text


def test_a_case_the_backend_cannot_run_is_a_clear_exit(drift_check):
    with pytest.raises(SystemExit, match="obs9/nothing: no case of the default grid has this id"):
        drift_check.call_of("obs9/nothing", "torch-eager", None)


def test_an_unknown_backend_is_a_clear_exit(drift_check, monkeypatch):
    monkeypatch.setattr("sys.argv", ["drift_check.py", "--backend", "no-such-backend"])
    with pytest.raises(SystemExit, match="unknown backend 'no-such-backend'"):
        drift_check.main()
