"""Shared fixtures: pytester for the plugin tests; seeds of its own for every test; one report over constructed
data, rendered once (seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def own_seeds(request: pytest.FixtureRequest) -> None:
    """Every test draws its constructed samples from seeds of its own (builders.reseed)."""
    import builders

    builders.reseed(request.node.nodeid)


@pytest.fixture(autouse=True)
def not_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark sessions tests start are not pytest-xdist workers, even when make test runs the tests in some:
    pytest-benchmark reads PYTEST_XDIST_WORKER from the environment and would refuse to time."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two (device, backend) pairs over every case of the four observations; one device name carries markup."""
    from builders import MARKUP_DEVICE, all_results, make_run, write

    from opbench.report import render

    root = tmp_path_factory.mktemp("full")
    write(make_run("Test Host", all_results("torch-eager")), root / "device_results")
    write(make_run(MARKUP_DEVICE, all_results("ort-cpu", speed=0.7)), root / "device_results")
    return render([root / "device_results"], root / "reports" / "index.html", progress=False)
