"""Shared fixtures: pytester for the plugin tests; one report over constructed data, rendered once (seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two (device, backend) pairs over every case of the four observations; one device name carries markup."""
    from builders import MARKUP_DEVICE, all_results, make_run, write

    from opbench.report import render

    root = tmp_path_factory.mktemp("full")
    write(make_run("Test Host", all_results("torch-eager")), root / "device_results")
    write(make_run(MARKUP_DEVICE, all_results("ort-cpu", speed=0.7)), root / "device_results")
    return render([root / "device_results"], root / "reports" / "index.html", progress=False)
