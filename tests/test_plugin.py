"""The pytest plugin end to end, in a temporary project: a benchmark session writes one valid result file."""

import json

import pytest

from opbench.results import load_run

CASE_MODULE = """
SUITE = "{key}"


def test_cases(opbench_case, benchmark):
    opbench_case.measure(benchmark)
"""
# the three built-in backends (the default is every available one); a later --opbench-backends overrides
FAST = [
    "--opbench-backends=torch-eager,ort-cpu,ort-cpu-noopt",
    "--benchmark-max-time=0.02",
    "--benchmark-min-rounds=3",
    "--benchmark-min-time=0.0001",
    "-p",
    "no:cacheprovider",
]


@pytest.fixture
def project(pytester):
    pytester.makeconftest('pytest_plugins = ["opbench.pytest_plugin"]')
    pytester.makepyfile(test_overhead=CASE_MODULE.format(key="overhead"), test_obs4=CASE_MODULE.format(key="obs4"))
    return pytester


def run(project, *args):
    cache = project.path / "cache"
    return project.runpytest_subprocess(*FAST, f"--opbench-cache-dir={cache}", *args)


def test_benchmark_session_writes_a_valid_result_file(project):
    out = project.path / "results"
    result = run(
        project,
        "--benchmark-only",
        "--opbench-cases=obs4/*/relu/*h7",
        "--opbench-device=Test <b>Box</b>",
        f"--opbench-results-dir={out}",
        "--benchmark-json=bench.json",
    )
    result.assert_outcomes(passed=6, deselected=1)  # 2 relu cases x 3 backends; overhead has no case left
    (path,) = (out / "test-b-box-b").glob("*.json")
    run_ = load_run(path).to_json()
    assert run_["device"]["name"] == "Test <b>Box</b>" and run_["source"] == "pytest-benchmark"
    assert {r["backend"] for r in run_["results"]} == {"torch-eager", "ort-cpu", "ort-cpu-noopt"}
    for r in run_["results"]:
        assert r["status"] == "ok" and r["check"]["passed"] and r["threads"] == 1
        assert sum(map(len, r["stats"]["passes_s"])) == r["stats"]["rounds"] >= 3
        assert r["macs"] is not None and r["group"].startswith("obs4")
    assert run_["protocol"]["max_time"] == 0.02 and run_["software"]["onnxruntime"]
    bench = json.loads((project.path / "bench.json").read_text())
    assert bench["machine_info"]["opbench"]["threads"] == 1 and bench["machine_info"]["cpu"]["brand_raw"]
    assert bench["machine_info"]["opbench"]["software"]["torch"].startswith("2.")
    assert {b["group"] for b in bench["benchmarks"]} == {"obs4 activations 4c1792 7x7", "obs4 Conv-BN MLP c448 7x7"}
    assert all("check" in b["extra_info"] for b in bench["benchmarks"])


def test_disabled_benchmarks_check_but_write_nothing(project):
    out = project.path / "results"
    result = run(project, "--benchmark-disable", "--opbench-cases=overhead/*", f"--opbench-results-dir={out}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*3 ok, 0 unsupported, 0 failed*", "*nothing timed, no result file written*"])
    assert not out.exists()


def test_suites_select_case_modules(project):
    result = run(project, "--benchmark-disable", "--opbench-suites=overhead", "--opbench-backends=torch-eager")
    result.assert_outcomes(passed=1, deselected=1)  # the overhead case; the obs4 module is left with none


def test_unavailable_backend_is_skipped_with_reason(project, monkeypatch):
    project.makeconftest(
        """
from opbench.backends import REGISTRY
from opbench.backends.torch_eager import TorchEager

class Missing(TorchEager):
    name = "missing"
    def unavailable_reason(self):
        return "needs a Neural Engine"

REGISTRY["missing"] = Missing
pytest_plugins = ["opbench.pytest_plugin"]
"""
    )
    result = run(project, "--benchmark-disable", "--opbench-cases=overhead/*", "--opbench-backends=missing", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs a Neural Engine*"])


@pytest.mark.parametrize(
    "option, message",
    [
        ("--opbench-threads=0", "*must be 1 or more*"),
        ("--opbench-backends=tvm", "*unknown backend*tvm*"),
        ("--opbench-cases=obs9/*", "*matches no case*"),
        ("--opbench-grid=huge", "*invalid choice*"),
        ("--opbench-suites=obs9", "*unknown suite 'obs9'*"),
    ],
)
def test_bad_options_are_usage_errors(project, option, message):
    result = run(project, "--benchmark-disable", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
