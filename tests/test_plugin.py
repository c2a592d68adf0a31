"""The pytest plugin end to end, in a temporary project: a benchmark session writes one valid result file."""

import collections
import json
from pathlib import Path

import pytest
from builders import COUNTING_CONFTEST

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
    "--opbench-export-workers=0",  # a worker imports torch: seconds a test; the test of exporting ahead sets it
    "--opbench-passes=1",  # the tests of passes set theirs
    "-p",
    "no:cacheprovider",
]


@pytest.fixture
def project(pytester):
    pytester.makeconftest('pytest_plugins = ["opbench.pytest_plugin"]')
    pytester.makepyfile(test_overhead=CASE_MODULE.format(key="overhead"), test_obs4=CASE_MODULE.format(key="obs4"))
    return pytester


def run(project, *args, fast=FAST):
    cache = project.path / "cache"
    return project.runpytest_subprocess(*fast, f"--opbench-cache-dir={cache}", *args)


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
    result.assert_outcomes(passed=6)  # the floor and the A/A group (two cases, one item) on three backends
    result.stdout.fnmatch_lines(["*9 ok, 0 unsupported, 0 failed*", "*nothing timed, no result file written*"])
    assert not out.exists()


def test_suites_select_case_modules(project):
    result = run(project, "--benchmark-disable", "--opbench-suites=overhead", "--opbench-backends=torch-eager")
    result.assert_outcomes(passed=2, deselected=1)  # the floor and the A/A group; the obs4 module is left with none


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
    result = run(
        project, "--benchmark-disable", "--opbench-cases=overhead/floor/*", "--opbench-backends=missing", "-rs"
    )
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
        # checked before the first case is timed, not when the result file is written
        ("--opbench-device=!!!", "*device name '!!!' has no letters or digits*"),
        ("--opbench-results-dir=a-file", "*--opbench-results-dir a-file is not a folder*"),
        (
            "--opbench-results-dir=a-file/results",
            "*--opbench-results-dir a-file/results is not a folder (a-file is a file)*",
        ),
        ("--opbench-threads=999", "*--opbench-threads 999 is more than the * cores of this machine*"),
        ("--opbench-export-workers=-1", "*--opbench-export-workers must be 0 or more, got -1*"),
        ("--opbench-backends=torch-eager,ort-cpu,torch-eager", "*torch-eager named more than once*"),
        ("--opbench-cases=", "*--opbench-cases is empty*"),
        ("--opbench-cases= ", "*--opbench-cases is empty*"),
        (
            ("--opbench-report", "--opbench-report-out=a-file/index.html"),
            "*the folder of --opbench-report-out a-file is not a folder*",
        ),
    ],
)
def test_bad_options_are_usage_errors(project, option, message):
    (project.path / "a-file").write_text("")
    result = run(project, "--benchmark-only", *([option] if isinstance(option, str) else option))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "passed" not in result.stdout.str()  # nothing ran


def test_a_timed_run_exports_every_case_ahead_in_worker_processes(project):
    """The timed process finds the workers' exports in the cache (export_s 0, cache hits); torch-eager has nothing to
    export and gets no job; progress is shown per case."""
    out = project.path / "results"
    result = run(
        project,
        "--benchmark-only",
        "--opbench-cases=obs4/*/relu/*h7",
        "--opbench-backends=torch-eager,ort-cpu,ort-cpu-noopt",
        "--opbench-export-workers=2",
        f"--opbench-results-dir={out}",
    )
    result.assert_outcomes(passed=6, deselected=1)
    result.stdout.fnmatch_lines(
        ["*opbench: exporting 2 cases in 2 worker processes*", "*[[]2/2[]] obs4/*(2 backends, *", "*exported ahead in*"]
    )
    assert "left to the run" not in result.stdout.str()
    (path,) = out.rglob("*.json")
    onnx = [r for r in load_run(path).results if r.backend != "torch-eager"]
    assert len(onnx) == 4 and all(r.cache_hit and r.export_s == 0 for r in onnx)


def test_passes_interleave_across_the_run_and_a_suite_scheduled_by_backend_runs_backend_by_backend_last(project):
    """Every case is prepared afresh in each pass (two identical cases kept one instance each for a run differed by
    up to 0.8% from run to run; prepared per pass, that placement enters the spread of the passes). A suite scheduled
    by_backend runs after the others, all passes of one backend before the next (seven backends' copies of every zoo
    model held at once took 22 GB); the other suites run pass after pass."""
    project.makeconftest(
        """
import dataclasses
import opbench.suites.obs4_nonlinearity as obs4
from opbench.backends import REGISTRY
from opbench.backends.torch_eager import TorchEager

obs4.SUITE = dataclasses.replace(obs4.SUITE, schedule="by_backend")

"""
        + COUNTING_CONFTEST
    )
    project.makepyfile(test_obs2=CASE_MODULE.format(key="obs2"))
    out = project.path / "results"
    options = ["--opbench-backends=counting,torch-eager", "--opbench-passes=2", "--opbench-cases=o[bv]*/[ra][ed]*[7e]"]
    listed = run(project, "--collect-only", "-q", *options).stdout.lines
    order = [line.split("[", 1)[1].rstrip("]") for line in listed if "::test_cases[" in line]
    small = ["obs2/reshape/4d_3d_4d/c448_h7", "overhead/floor/add_one"]
    large = ["obs4/act/relu/c1792_h7", "obs4/mlp/relu/c448_h7"]
    assert order == [
        *(f"{c}-{b}-pass{k}" for k in (1, 2) for c in small for b in ("counting", "torch-eager")),
        *(f"{c}-{b}-pass{k}" for b in ("counting", "torch-eager") for k in (1, 2) for c in large[:: 3 - 2 * k]),
    ]
    run(project, "--benchmark-only", *options, f"--opbench-results-dir={out}").assert_outcomes(passed=16)
    assert collections.Counter((project.path / "prepared.txt").read_text().split()) == {c: 2 for c in small + large}
    (path,) = out.rglob("*.json")
    assert all(len(r.stats.passes_s) == 2 and r.check.passed for r in load_run(path).results)
    assert "interleaved within each backend" in load_run(path).protocol["order"]


def test_a_suite_s_own_timing_settings_override_the_run_s_and_are_recorded(project):
    """The models suite times 5 rounds a pass (Suite.timing); the run's settings hold for every other suite."""
    project.makeconftest(
        """
import dataclasses
import opbench.suites.overhead

opbench.suites.overhead.SUITE = dataclasses.replace(opbench.suites.overhead.SUITE, timing=(("min_rounds", 7),))
pytest_plugins = ["opbench.pytest_plugin"]
"""
    )
    out = project.path / "results"
    options = ["--opbench-backends=torch-eager", "--opbench-cases=o[bv]*/[ra][ed]*[7e]", "--benchmark-max-time=0"]
    run(project, "--benchmark-only", *options, f"--opbench-results-dir={out}").assert_outcomes(passed=3)
    (path,) = out.rglob("*.json")
    found = load_run(path)
    assert {r.case: r.stats.rounds for r in found.results} == {
        "overhead/floor/add_one": 7,
        "obs4/act/relu/c1792_h7": 3,
        "obs4/mlp/relu/c448_h7": 3,
    }
    assert found.protocol["suite_timing"] == {"overhead": {"min_rounds": 7}} and found.protocol["min_rounds"] == 3


def test_a_suite_s_own_passes_hold_unless_the_run_sets_every_suite_s_and_are_recorded(project):
    """Suite.passes: the whole models load every model again in each pass, so they take fewer than the observations;
    --opbench-passes sets every suite's. The protocol and the summary say how many each suite ran."""
    project.makeconftest(
        """
import dataclasses
import opbench.suites.obs4_nonlinearity as obs4
import opbench.suites.overhead as overhead

overhead.SUITE = dataclasses.replace(overhead.SUITE, passes=2)
obs4.SUITE = dataclasses.replace(obs4.SUITE, passes=1)
pytest_plugins = ["opbench.pytest_plugin"]
"""
    )
    options = ["--opbench-backends=torch-eager", "--opbench-cases=o[bv]*/[ra][ed]*[7e]", "--benchmark-max-time=0"]
    for given, expected in ((), {"overhead": 2, "obs4": 1}), (("--opbench-passes=3",), {"overhead": 3, "obs4": 3}):
        out = project.path / f"results{len(given)}"
        suites_own = [o for o in FAST if not o.startswith("--opbench-passes")]
        outcome = run(project, "--benchmark-only", *options, *given, f"--opbench-results-dir={out}", fast=suites_own)
        outcome.assert_outcomes(passed=sum(n * (1 if k == "overhead" else 2) for k, n in expected.items()))
        (path,) = out.rglob("*.json")
        found = load_run(path)
        assert found.protocol["passes"] == expected
        assert {r.case: len(r.stats.passes_s) for r in found.results} == {
            "overhead/floor/add_one": expected["overhead"],
            "obs4/act/relu/c1792_h7": expected["obs4"],
            "obs4/mlp/relu/c448_h7": expected["obs4"],
        }
        summary = "1 pass: obs4; 2 passes: overhead" if not given else "3 passes each"
        outcome.stdout.fnmatch_lines([f"*3 ok, 0 unsupported, 0 failed ({summary})*"])


def test_a_backend_that_raises_is_a_failed_result_not_a_traceback(project):
    project.makeconftest(
        """
from opbench.backends import REGISTRY
from opbench.backends.torch_eager import TorchEager

class Broken(TorchEager):
    name = "broken"
    def prepare(self, case, config):
        raise RuntimeError("the runtime crashed")

REGISTRY["broken"] = Broken
pytest_plugins = ["opbench.pytest_plugin"]
"""
    )
    out = project.path / "results"
    backends = "--opbench-backends=torch-eager,broken"
    cases = "--opbench-cases=overhead/floor/*"
    result = run(project, "--benchmark-only", cases, backends, f"--opbench-results-dir={out}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 ok, 0 unsupported, 1 failed*",
            "*failed: overhead/floor/add_one on broken: broken could not prepare the case: RuntimeError: the runtime*",
        ]
    )
    assert "raise RuntimeError" not in result.stdout.str()  # a reason, not a traceback
    (path,) = out.rglob("*.json")
    assert {r.backend: r.status for r in load_run(path).results} == {"torch-eager": "ok", "broken": "failed"}


def test_the_installed_plugin_loads_itself_and_stays_inert_without_opbench_cases(pytester, tmp_path: Path):
    """A user's repository needs no conftest: the pytest11 entry point loads the plugin; a session that collects
    no opbench case installs no signal handler and writes no file."""
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    pytester.makepyfile(
        test_probe="""
import signal

def test_probe(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("opbench.pytest_plugin")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert not (Path(pytester.path) / "device_results").exists()
    assert not (Path(pytester.path) / ".opbench_cache").exists()
