"""`opbench import`: a filled template becomes a result file; a file with any error is refused whole."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from opbench import backends, cli, export, files, importer, results
from opbench.backends import coreml
from opbench.cache import ArtifactCache
from opbench.errors import OpbenchError, UnsupportedCase
from opbench.suite import select_cases

OK = ["overhead/floor/add_one", "obs4/act/relu/c1792_h7", "obs4/act/gelu_erf/c1792_h7"]
UNSUPPORTED = "obs4/act/hardswish/c1792_h7"


def fake_format(cache_failures: set[str]) -> backends.ExportFormat:
    """The Core ML export format with a stand-in converter: import tests need a manifest, not coremltools."""

    def artifact(case, cache):
        def create(path: Path) -> None:
            if case.id in cache_failures:
                raise UnsupportedCase(f"Unsupported op in {case.id}")
            (path / "Data").mkdir(parents=True)
            (path / "Data" / "model.mlmodel").write_text(case.id)

        return cache.get_or_create(case, "fake-coreml", {"v": 1}, ".mlpackage", create)

    def describe(path: Path) -> dict:
        return {"input": {"name": "x", "shape": [1], "dtype": "float32"}, "output": {"name": "y", "shape": [1]}}

    options = {"convert_to": "mlprogram", "deployment_target": "iOS15", "precision": "float32"}
    versions = {"coremltools": "9.0"}
    return backends.ExportFormat("coreml", ".mlpackage", options, versions, artifact, describe, coreml.DEVICE_UNITS)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    by_id = {c.id: c for c in select_cases()}
    cases = [by_id[i] for i in [*OK, UNSUPPORTED]]
    export.export_cases(
        cases, fake_format({UNSUPPORTED}), root / "out", ArtifactCache(root / "cache"), log=io.StringIO()
    )
    return root / "out"


@pytest.fixture
def work(export_dir, tmp_path):
    """A copy of the export (manifest + template) and a results folder that already holds a result file."""
    out = tmp_path / "exports"
    shutil.copytree(export_dir, out)
    results_dir = tmp_path / "device_results"
    (results_dir / "iphone-12").mkdir(parents=True)
    earlier = results.new_run(results.Device("iPhone 12", "iphone-12", "phone"), [], "pytest-benchmark")
    (results_dir / "iphone-12" / "earlier.json").write_text(json.dumps(earlier.to_json()))
    return out, results_dir


def template_rows(out: Path) -> list[dict]:
    with (out / "template.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict], columns=None) -> Path:
    columns = columns or list(rows[0])
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def filled(out: Path, **overrides) -> list[dict]:
    rows = template_rows(out)
    for i, row in enumerate(rows):
        row.update(
            median_ms=f"{0.5 + i}", compute_unit="all", mean_ms=f"{0.6 + i}", min_ms="0.4", max_ms="9", runs="100"
        )
    for i, values in overrides.items():
        rows[int(i.removeprefix("row"))].update(values)
    return rows


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_filled_template_imports_as_its_own_device(work):
    out, results_dir = work
    path = importer.import_file(write_rows(out / "filled.csv", filled(out)), "iPhone 12", results_dir=results_dir)
    assert path.parent == results_dir / "iphone-12" and path.name != "earlier.json"
    run = results.load_run(path).to_json()
    assert run["source"] == "import"
    assert run["device"] == {"name": "iPhone 12", "slug": "iphone-12", "kind": "phone"}
    assert run["software"]["coremltools"] == "9.0"
    assert run["protocol"]["manifest_checksum"] == export.load_manifest(out / "manifest.json")["checksum"]
    assert [r["case"] for r in run["results"]] == OK
    first = run["results"][0]
    assert first["backend"] == "coreml-all" and first["status"] == "ok" and first["check"] is None
    assert first["stats"] == {"median_s": 0.5e-3, "mean_s": 0.6e-3, "min_s": 0.4e-3, "max_s": 9e-3, "rounds": 100}
    assert first["observation"] == "overhead" and first["macs"] == 0 and first["input_shape"] == [1, 1]
    assert first["backend_options"]["compute_units"] == "all"
    assert first["backend_options"]["deployment_target"] == "iOS15" and first["precision"] == "float32"
    frame = results.to_dataframe(results.load_runs([path]))
    assert set(frame["device"]) == {"iPhone 12"} and set(frame["source"]) == {"import"}


def test_a_median_alone_is_enough_and_unmeasured_rows_may_be_deleted(work):
    out, results_dir = work
    rows = [{"case": OK[1], "median_ms": "1.25 ms", "sha256": template_rows(out)[1]["sha256"]}]
    path = importer.import_file(write_rows(out / "m.csv", rows), "iPhone 12", "coreml-cpu", results_dir=results_dir)
    (result,) = results.load_run(path).to_json()["results"]
    assert result["stats"] == {"median_s": 1.25e-3} and result["backend"] == "coreml-cpu"
    assert result["backend_options"]["compute_units"] == "cpuOnly"


ERRORS = {
    "unknown case": ({"row1": {"case": "obs9/nothing/c1"}}, "line 3: unknown case 'obs9/nothing/c1'"),
    "missing latency": ({"row0": {"median_ms": ""}}, "line 2: overhead/floor/add_one: median_ms is missing"),
    "zero latency": ({"row2": {"median_ms": "0"}}, "line 4: median_ms '0' must be a positive number"),
    "negative latency": ({"row2": {"median_ms": "-1.5"}}, "line 4: median_ms '-1.5' must be a positive number"),
    "non-numeric latency": ({"row1": {"median_ms": "fast"}}, "line 3: median_ms 'fast' is not a number"),
    "decimal comma": ({"row1": {"median_ms": "1,6"}}, "line 3: median_ms '1,6' is not a number; use a dot"),
    "not a finite number": ({"row1": {"mean_ms": "nan"}}, "line 3: mean_ms 'nan' must be a positive number"),
    "microseconds": (
        {"row0": {"median_ms": "1600 us"}},
        "line 2: median_ms '1600 us' is not in milliseconds (1600 us = 1.6 ms)",
    ),
    "seconds": ({"row0": {"min_ms": "0.001s"}}, "line 2: min_ms '0.001s' is not in milliseconds (0.001s = 1 ms)"),
    "unknown compute unit": (
        {"row0": {"compute_unit": "neural engine"}},
        "line 2: unknown compute unit 'neural engine'",
    ),
    "other compute unit": (
        {"row0": {"compute_unit": "CPU Only"}},
        "line 2: compute unit cpuOnly is not that of --backend coreml-all",
    ),
    "runs": ({"row0": {"runs": "2.5"}}, "line 2: runs '2.5' must be a whole number"),
    "min above median": ({"row0": {"min_ms": "0.55"}}, "line 2: min_ms <= median_ms <= max_ms does not hold"),
    "duplicate": ({"row2": {"case": OK[0]}}, f"line 4: {OK[0]} is listed twice (first on line 2)"),
    "package checksum": ({"row1": {"sha256": "0" * 64}}, f"line 3: {OK[1]}: package checksum 000000000000... is not"),
}


@pytest.mark.parametrize("kind", list(ERRORS))
def test_each_kind_of_error_rejects_the_file_and_changes_nothing(work, kind):
    out, results_dir = work
    overrides, expected = ERRORS[kind]
    before = snapshot(results_dir)
    file = write_rows(out / "bad.csv", filled(out, **overrides))
    with pytest.raises(OpbenchError) as caught:
        importer.import_file(file, "iPhone 12", results_dir=results_dir)
    message = str(caught.value)
    assert f"{file}: rejected, nothing imported (1 error)" in message
    assert expected in message
    assert snapshot(results_dir) == before


def test_every_error_is_listed_at_once(work):
    out, results_dir = work
    rows = filled(out, row0={"median_ms": "abc"}, row1={"case": "obs9/x"}, row2={"median_ms": "-2", "runs": "0"})
    rows.append({**rows[0], "median_ms": ""})  # a duplicate of line 2 on line 5
    with pytest.raises(OpbenchError) as caught:
        importer.import_file(write_rows(out / "bad.csv", rows), "iPhone 12", results_dir=results_dir)
    message = str(caught.value)
    assert "(5 errors)" in message
    for where in ("line 2: median_ms 'abc'", "line 3: unknown case", "line 4: median_ms '-2'", "line 4: runs '0'"):
        assert where in message
    assert "line 5: overhead/floor/add_one is listed twice" in message


def test_header_problems_are_named(work):
    out, results_dir = work
    rows = [{"case": OK[0], "median_us": "1600", "speed": "x"}]
    with pytest.raises(OpbenchError) as caught:
        importer.import_file(write_rows(out / "bad.csv", rows), "iPhone 12", results_dir=results_dir)
    message = str(caught.value)
    assert "line 1: no 'median_ms' column" in message
    assert "line 1: column 'median_us': times are in milliseconds, as median_ms" in message
    assert "line 1: unknown column 'speed'" in message
    (out / "semi.csv").write_text("case;median_ms\nx;1\n")
    with pytest.raises(OpbenchError, match="separated by ';'"):
        importer.import_file(out / "semi.csv", "iPhone 12", results_dir=results_dir)


@pytest.mark.parametrize("device", ["Reference", "iPhone 12 (published)"])
def test_nothing_is_imported_as_published(work, device):
    out, results_dir = work
    with pytest.raises(OpbenchError, match="published numbers live in device_results/reference/"):
        importer.import_file(write_rows(out / "filled.csv", filled(out)), device, results_dir=results_dir)


def test_a_row_for_an_unsupported_case_is_an_error(work):
    out, results_dir = work
    rows = [{"case": UNSUPPORTED, "median_ms": "1", "sha256": ""}]
    with pytest.raises(OpbenchError, match="line 2: .*was not exported"):
        importer.import_file(write_rows(out / "bad.csv", rows), "iPhone 12", results_dir=results_dir)


def test_a_manifest_that_does_not_match_its_checksum_is_refused(work):
    out, results_dir = work
    before = snapshot(results_dir)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["options"]["precision"] = "float16"  # edited after the export
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OpbenchError, match="manifest checksum does not match its content"):
        importer.import_file(write_rows(out / "filled.csv", filled(out)), "iPhone 12", results_dir=results_dir)
    assert snapshot(results_dir) == before


def test_a_template_of_another_export_is_refused(work, tmp_path):
    out, results_dir = work
    other = tmp_path / "other"
    other.mkdir()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["entries"][0]["sha256"] = "f" * 64  # another conversion of the same case
    manifest["checksum"] = export.manifest_checksum(manifest)
    (other / "manifest.json").write_text(json.dumps(manifest))
    file = write_rows(out / "filled.csv", filled(out))
    with pytest.raises(OpbenchError, match=f"line 2: {OK[0]}: package checksum .* different export"):
        importer.import_file(file, "iPhone 12", manifest=other / "manifest.json", results_dir=results_dir)


def test_a_result_file_in_opbench_schema_imports(work):
    out, results_dir = work
    run = results.new_run(results.Device("M2 Mac", "m2-mac"), [], "pytest-benchmark").to_json()
    run["results"] = [
        {"case": OK[1], "observation": "obs4", "backend": "coreml-cpu", "status": "ok", "stats": {"median_s": 2e-4}},
    ]
    (out / "run.json").write_text(json.dumps(run))
    path = importer.import_file(out / "run.json", "iPhone 12", results_dir=results_dir)
    imported = results.load_run(path).to_json()
    assert imported["source"] == "import" and imported["device"]["slug"] == "iphone-12"
    (result,) = imported["results"]
    assert result["backend"] == "coreml-cpu" and result["stats"] == {"median_s": 2e-4}
    assert result["macs"] == 0 and result["family"] == "act"  # metadata from the case registry

    first = run["results"][0]
    run["results"] = [first, {**first, "case": "obs9/x", "backend": "coreml-all"}]
    (out / "run.json").write_text(json.dumps(run))
    with pytest.raises(OpbenchError, match=r"results\[1\]: unknown case 'obs9/x'"):
        importer.import_file(out / "run.json", "iPhone 12", results_dir=results_dir)
    run["results"] = [first, first]
    (out / "run.json").write_text(json.dumps(run))
    with pytest.raises(OpbenchError, match=r"results/1: obs4/act/relu/c1792_h7 on coreml-cpu is listed twice"):
        importer.import_file(out / "run.json", "iPhone 12", results_dir=results_dir)


def test_imports_and_the_reference_load_together(work):
    out, results_dir = work
    (results_dir / "iphone-12" / "earlier.json").unlink()
    importer.import_file(write_rows(out / "filled.csv", filled(out)), "iPhone 12", results_dir=results_dir)
    shutil.copytree(Path(__file__).parents[1] / "device_results" / "reference", results_dir / "reference")
    frame = results.to_dataframe(results.load_runs([results_dir]))
    assert set(zip(frame["device"], frame["source"], strict=True)) == {
        ("iPhone 12", "import"),
        ("iPhone 12 (published)", "reference"),
    }


def test_cli_import_exit_codes(work, capsys):
    out, results_dir = work
    good = write_rows(out / "filled.csv", filled(out))
    bad = write_rows(out / "bad.csv", filled(out, row0={"median_ms": "x"}))
    base = ["--device", "iPhone 12", "--results-dir", str(results_dir)]
    assert cli.main(["import", str(bad), *base]) == 2
    assert "line 2: median_ms 'x' is not a number" in capsys.readouterr().err
    assert cli.main(["import", str(good), *base, "--os", "iOS 17.5", "--protocol", "Xcode 16 performance report"]) == 0
    assert "imported measurements of iPhone 12" in capsys.readouterr().err
    (run,) = [r for r in results.load_runs([results_dir / "iphone-12"]) if r.source == "import"]
    assert run.device.os == "iOS 17.5" and run.protocol["method"] == "Xcode 16 performance report"
    assert cli.main(["import", str(good), *base, "--backend", "ort-cpu"]) == 2
    assert "these packages are measured as one of coreml-all (all)" in capsys.readouterr().err


# --- checksums of the packages: what export writes, what import sees -----------------------------------------------


def test_export_replaces_a_damaged_package_and_records_the_checksum_of_what_it_wrote(tmp_path):
    by_id = {c.id: c for c in select_cases()}
    cases, cache, out = [by_id[i] for i in OK], ArtifactCache(tmp_path / "cache"), tmp_path / "out"
    export.export_cases(cases, fake_format(set()), out, cache, log=io.StringIO())
    damaged = out / template_rows(out)[0]["file"] / "Data" / "model.mlmodel"
    damaged.write_text("damaged")
    (cached,) = (tmp_path / "cache").glob(f"fake-coreml/{cases[1].slug}-*.mlpackage")
    (cached / "Data" / "model.mlmodel").write_text("damaged in the cache")
    log = io.StringIO()
    manifest = export.export_cases(cases, fake_format(set()), out, cache, log=log)
    assert damaged.read_text() == OK[0]
    assert (out / manifest["entries"][1]["file"] / "Data" / "model.mlmodel").read_text() == OK[1]
    assert "did not match its checksum" in log.getvalue()  # the damaged cache entry was converted again
    for entry in manifest["entries"]:
        assert entry["sha256"] == files.tree_sha256(out / entry["file"])


def test_a_package_changed_since_the_export_is_refused(work):
    out, results_dir = work
    (out / template_rows(out)[1]["file"] / "Data" / "model.mlmodel").write_text("edited after the export")
    with pytest.raises(OpbenchError, match=f"{OK[1]}: .* does not match the manifest's checksum") as caught:
        importer.import_file(write_rows(out / "filled.csv", filled(out)), "iPhone 12", results_dir=results_dir)
    assert "(1 error)" in str(caught.value)


def test_checksums_in_the_manifest_are_required_in_the_template(work):
    out, results_dir = work
    columns = [c for c in export.TEMPLATE_COLUMNS if c != "sha256"]
    with pytest.raises(OpbenchError, match="line 1: no 'sha256' column: the manifest has a checksum per package"):
        importer.import_file(write_rows(out / "a.csv", filled(out), columns), "iPhone 12", results_dir=results_dir)
    rows = filled(out, row2={"sha256": ""})
    with pytest.raises(OpbenchError, match=f"line 4: {OK[2]}: no sha256"):
        importer.import_file(write_rows(out / "b.csv", rows), "iPhone 12", results_dir=results_dir)


def test_a_results_dir_that_is_a_file_is_a_one_line_error(work, capsys):
    out, _ = work
    a_file = out / "not-a-folder"
    a_file.write_text("")
    good = write_rows(out / "filled.csv", filled(out))
    assert cli.main(["import", str(good), "--device", "iPhone 12", "--results-dir", str(a_file)]) == 2
    err = capsys.readouterr().err
    assert str(a_file) in err and len(err.strip().splitlines()) == 1
