"""Result files: valid files round-trip; malformed or foreign files are rejected with the file and the problem."""

import dataclasses
import json

import pytest

from opbench.errors import OpbenchError
from opbench.results import Check, Device, Result, Stats, load_run, load_runs, new_run, slugify, to_dataframe, write_run

DEVICE = Device("Test Box", "test-box", "host", "x", 2, 1.0, "y")


def result(case="obs4/act/relu/c192_h56", backend="torch-eager", samples=(1e-3, 1.1e-3, 0.9e-3)):
    return Result(
        case=case,
        suite=case.split("/")[0],
        backend=backend,
        threads=1,
        stats=Stats.from_samples(samples, 10),
        check=Check(0.0, 1e-4, True),
        info={"delegated": 3},
    )


def test_write_then_load_round_trips(tmp_path):
    run = new_run(DEVICE, [result(), result(backend="ort-cpu")], "pytest-benchmark", {"threads": 1})
    path = write_run(run, tmp_path)
    assert path.parent.name == "test-box" and path.name == f"{run.run_id}.json"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    assert load_run(path) == run
    assert json.loads(path.read_text())["results"][0]["observation"] == "obs4"  # schema 1's name for the suite
    df = to_dataframe(load_runs([tmp_path]))
    assert list(df["backend"]) == ["torch-eager", "ort-cpu"]
    assert df["median_s"].iloc[0] == pytest.approx(1e-3)
    assert df["device"].iloc[0] == "Test Box"


def test_stats_keep_raw_samples_and_one_rule_says_which_are_usable():
    stats = Stats.from_samples([3.0, 1.0, 2.0, 4.0], 7)
    assert stats.median_s == 2.5 and stats.rounds == 4 and stats.iterations == 7
    assert stats.samples_s == (3.0, 1.0, 2.0, 4.0) and stats.samples == (stats.samples_s,)  # one pass
    assert Stats.from_samples([3.0]).samples is None and Stats(1e-3).samples is None  # a median alone: no interval
    assert Stats.from_json(stats.to_json()) == stats


def test_samples_per_pass_round_trip_through_the_result_file(tmp_path):
    passes = [(1.0e-3, 1.2e-3, 0.9e-3), (2.0e-3, 2.1e-3), (1.1e-3, 1.0e-3, 1.3e-3, 1.2e-3)]
    stats = Stats.from_passes(passes, 10)
    assert stats.passes_s == tuple(passes) and stats.rounds == 9
    assert stats.median_s == pytest.approx((1.0e-3 + 2.05e-3 + 1.15e-3) / 3)  # the mean of the passes' medians
    run = new_run(DEVICE, [dataclasses.replace(result(), stats=stats)], "pytest-benchmark", {"passes": 3})
    path = write_run(run, tmp_path)
    data = json.loads(path.read_text())
    assert data["schema"] == "opbench-results/4"
    assert data["results"][0]["stats"]["passes_s"] == [list(p) for p in passes]
    assert "samples_s" not in data["results"][0]["stats"]
    assert load_run(path).results[0].stats.passes_s == tuple(passes)


def test_a_schema_1_file_still_loads_as_one_pass(tmp_path):
    run = new_run(DEVICE, [result(samples=(1e-3, 1.1e-3, 0.9e-3, 1.2e-3))], "pytest-benchmark", {"threads": 1})
    data = run.to_json()
    data["schema"] = "opbench-results/1"
    stats = data["results"][0]["stats"]
    stats["samples_s"] = stats.pop("passes_s")[0]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    loaded = load_run(path).results[0].stats
    assert loaded.passes_s == ((1e-3, 1.1e-3, 0.9e-3, 1.2e-3),) and loaded.samples_s == (1e-3, 1.1e-3, 0.9e-3, 1.2e-3)
    assert loaded == run.results[0].stats


def test_a_median_only_result_round_trips_without_empty_fields():
    imported = dataclasses.replace(result(), stats=Stats(1.6e-3), check=None, threads=None)
    data = imported.to_json()
    assert data["stats"] == {"median_s": 1.6e-3} and data["check"] is None
    assert Result.from_json(data) == imported


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not JSON"),
        (json.dumps({"schema": "asv-results/2"}), "not an opbench result file"),
        (json.dumps([1, 2]), "not a valid opbench result file"),
        (json.dumps({"schema": "opbench-results/1"}), "'run_id' is a required property"),
    ],
)
def test_malformed_files_are_named_with_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(OpbenchError, match=message) as err:
        load_run(path)
    assert str(path) in str(err.value)


def test_bad_field_is_pointed_at(tmp_path):
    run = new_run(DEVICE, [dataclasses.replace(result(), stats=Stats(-1.0))], "pytest-benchmark")
    path = tmp_path / "neg.json"
    path.write_text(json.dumps(run.to_json()))
    with pytest.raises(OpbenchError, match="results/0/stats"):
        load_run(path)
    with pytest.raises(OpbenchError, match="result to write"):
        write_run(run, tmp_path)


def test_one_bad_file_among_good_ones_is_named(tmp_path):
    write_run(new_run(DEVICE, [result()], "pytest-benchmark"), tmp_path)
    (tmp_path / "test-box" / "broken.json").write_text("[]")
    with pytest.raises(OpbenchError, match="broken.json"):
        load_runs([tmp_path])


def test_hidden_folders_under_a_results_folder_are_not_runs(tmp_path):
    write_run(new_run(DEVICE, [result()], "pytest-benchmark"), tmp_path)
    cache = tmp_path / "test-box" / ".opbench_cache" / "onnx"
    cache.mkdir(parents=True)
    (cache / "meta.json").write_text('{"key": "not a run"}')
    (tmp_path / ".hidden.json").write_text("[]")
    assert [r.source for r in load_runs([tmp_path])] == ["pytest-benchmark"]


def test_missing_path_and_unnameable_device(tmp_path):
    with pytest.raises(OpbenchError, match="no such file"):
        load_runs([tmp_path / "nope"])
    assert slugify("iPhone 12 Pro (A14)") == "iphone-12-pro-a14"
    with pytest.raises(OpbenchError, match="no letters or digits"):
        slugify("!!!")
