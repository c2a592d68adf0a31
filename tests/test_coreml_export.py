"""`opbench export`: Core ML packages that load back, a manifest and template, the cache, unsupported cases."""

from __future__ import annotations

import csv
import io
import json
import platform
from pathlib import Path

import pytest

from opbench import backends, cli, export, files
from opbench.backends import DEFAULT_BACKENDS, REGISTRY, coreml, get_backend
from opbench.cache import ArtifactCache
from opbench.errors import BackendUnavailable, OpbenchError
from opbench.suite import select_cases

ct = pytest.importorskip("coremltools")

TINY = ["overhead/floor/add_one", "obs4/act/relu/c1792_h7", "obs4/act/gelu_tanh/c1792_h7"]


def tiny_cases(ids=TINY):
    by_id = {c.id: c for c in select_cases()}
    return [by_id[i] for i in ids]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny cases exported once into a module-wide cache: (manifest, out dir, cache, progress log)."""
    root = tmp_path_factory.mktemp("coreml")
    cache, out, log = ArtifactCache(root / "cache"), root / "out", io.StringIO()
    manifest = export.export_cases(tiny_cases(), backends.export_format("coreml"), out, cache, log=log)
    return manifest, out, cache, log.getvalue()


def test_every_case_becomes_a_package_coremltools_loads_back(exported):
    manifest, out, _, log = exported
    assert [e["case"] for e in manifest["entries"]] == TINY
    for entry, case in zip(manifest["entries"], tiny_cases(), strict=True):
        assert entry["status"] == "ok", entry["reason"]
        package = out / entry["file"]
        assert package.is_dir() and package.suffix == ".mlpackage"
        spec = ct.utils.load_spec(str(package))
        assert spec.WhichOneof("Type") == "mlProgram"
        assert list(spec.description.input[0].type.multiArrayType.shape) == list(case.input_shape)
        assert entry["input"]["shape"] == list(case.input_shape)
        assert entry["output"]["shape"] == list(case.input_shape)  # x + 1 and activations keep the shape
        assert entry["macs"] == case.costs.macs
        assert entry["sha256"] == files.tree_sha256(package)
        ct.models.MLModel(str(package), skip_model_load=True)  # loads as a model too
    options = {"convert_to": "mlprogram", "deployment_target": "iOS15", "precision": "float32", "recipe": coreml.RECIPE}
    assert manifest["options"] == options
    assert manifest["versions"]["coremltools"] == ct.__version__
    assert log.count("exported") == len(TINY)
    assert f"[1/{len(TINY)}] {TINY[0]} exported" in log


def test_a_tanh_gelu_stays_a_tanh_gelu(exported):
    """coremltools 9.0 drops torch.export's approximate='tanh' keyword; the export spells the formula out."""
    manifest, out, _, _ = exported
    by_case = {e["case"]: e for e in manifest["entries"]}
    program = str(ct.utils.load_spec(str(out / by_case["obs4/act/gelu_tanh/c1792_h7"]["file"])).mlProgram)
    assert program.count('"gelu"') >= 1 and "TANH_APPROXIMATION" in program and '"tanh"' not in program
    assert "TANH_APPROXIMATION" not in str(ct.utils.load_spec(str(out / by_case[TINY[1]]["file"])).mlProgram)


@pytest.mark.parametrize("case_id", ["obs4/act/gelu_tanh/c1792_h7", "obs4/mlp/gelu_tanh/c448_h7"])
def test_spelling_out_the_tanh_gelu_computes_the_same(case_id):
    import torch

    (case,) = tiny_cases([case_id])
    program = torch.export.export(case.build(), (case.example_input(),)).run_decompositions({})
    coreml._spell_out_tanh_gelu(program)
    assert not [n for n in program.graph.nodes if n.target is torch.ops.aten.gelu.default]
    with torch.inference_mode():
        expected, got = case.build()(case.example_input()), program.module()(case.example_input())
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_manifest_on_disk_verifies_and_the_template_has_one_empty_row_per_package(exported):
    manifest, out, _, _ = exported
    assert export.load_manifest(out / "manifest.json") == manifest
    with (out / "template.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["case"] for r in rows] == TINY
    assert all(r["median_ms"] == "" and r["compute_unit"] == "" for r in rows)
    assert [r["sha256"] for r in rows] == [e["sha256"] for e in manifest["entries"]]


def test_a_second_export_converts_nothing(exported, tmp_path, monkeypatch):
    _, _, cache, _ = exported

    def no_converter(*args, **kwargs):
        raise AssertionError("the converter ran on a cached case")

    monkeypatch.setattr(coreml, "convert", no_converter)
    log = io.StringIO()
    manifest = export.export_cases(tiny_cases(), backends.export_format("coreml"), tmp_path, cache, log=log)
    assert all(e["status"] == "ok" for e in manifest["entries"])
    assert log.getvalue().count("cached") == len(TINY)
    assert all((tmp_path / e["file"]).is_dir() for e in manifest["entries"])


def test_a_case_core_ml_cannot_convert_is_listed_with_the_converters_message(tmp_path, monkeypatch):
    calls = []

    def failing(case, path, *args):
        calls.append(case.id)
        raise NotImplementedError(f"Unsupported op 'hardswish' in {case.id}")

    monkeypatch.setattr(coreml, "convert", failing)
    cases, cache = tiny_cases(["obs4/act/hardswish/c1792_h7"]), ArtifactCache(tmp_path / "cache")
    for _ in range(2):  # the failure is cached: the second run does not call the converter again
        manifest = export.export_cases(
            cases, backends.export_format("coreml"), tmp_path / "out", cache, log=io.StringIO()
        )
    (entry,) = manifest["entries"]
    assert entry["status"] == "unsupported" and entry["file"] is None
    assert entry["reason"] == "NotImplementedError: Unsupported op 'hardswish' in obs4/act/hardswish/c1792_h7"
    assert entry["macs"] == cases[0].costs.macs
    assert calls == [cases[0].id]
    assert (tmp_path / "out" / "template.csv").read_text().strip() == ",".join(export.TEMPLATE_COLUMNS)


def test_a_filled_template_is_never_overwritten(exported, tmp_path):
    _, _, cache, _ = exported
    fmt = backends.export_format("coreml")
    export.export_cases(tiny_cases(), fmt, tmp_path, cache, log=io.StringIO())
    filled = (tmp_path / "template.csv").read_text().replace(f"{TINY[0]},,", f"{TINY[0]},0.05,", 1)
    (tmp_path / "template.csv").write_text(filled)
    log = io.StringIO()
    export.export_cases(tiny_cases(), fmt, tmp_path, cache, log=log)
    assert (tmp_path / "template.csv").read_text() == filled
    assert (tmp_path / "template.new.csv").exists() and "left as it is" in log.getvalue()
    assert not list(tmp_path.glob("manifest.*.json"))  # the same packages: the manifest still fits the template

    measured = export.load_manifest(tmp_path / "manifest.json")
    export.export_cases(tiny_cases()[1:], fmt, tmp_path, cache, log=log)  # another selection replaces the manifest
    (kept,) = tmp_path.glob("manifest.*.json")
    assert f"--manifest {kept}" in log.getvalue()
    assert export.load_manifest(kept)["entries"] == measured["entries"]


def test_an_edited_manifest_is_refused(exported, tmp_path):
    _, out, _, _ = exported
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["entries"][0]["macs"] += 1
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OpbenchError, match="checksum does not match"):
        export.load_manifest(tmp_path / "manifest.json")


def test_cli_export_uses_the_cache_and_reports_counts(exported, tmp_path, capsys):
    _, _, cache, _ = exported
    argv = ["export", "--backend", "coreml", "--cases", "overhead/floor/*", "--out", str(tmp_path),
            "--cache-dir", str(cache.root)]  # fmt: skip
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "[1/1] overhead/floor/add_one cached" in err and "1 exported, 0 unsupported" in err
    assert cli.main([*argv, "--target", "iOS14"]) == 2
    assert "has no ML programs" in capsys.readouterr().err


def test_float16_is_a_separate_cached_package(exported, tmp_path):
    _, _, cache, _ = exported
    (case,) = tiny_cases()[:1]
    fp16 = export.export_cases([case], backends.export_format("coreml", "float16"), tmp_path, cache, log=io.StringIO())
    (entry,) = fp16["entries"]
    assert fp16["options"]["precision"] == "float16" and entry["status"] == "ok"
    assert entry["sha256"] != exported[0]["entries"][0]["sha256"]


def test_onnx_export_shares_the_ort_backends_files(tmp_path):
    cache = ArtifactCache(tmp_path / "cache")
    (case,) = tiny_cases()[:1]
    manifest = export.export_cases([case], backends.export_format("onnx"), tmp_path / "out", cache, log=io.StringIO())
    (entry,) = manifest["entries"]
    assert manifest["format"] == "onnx" and entry["status"] == "ok" and entry["file"].endswith(".onnx")
    assert entry["input"]["shape"] == [1, 1] and entry["output"]["shape"] == [1, 1]
    assert list((tmp_path / "cache" / "onnx").glob("*.onnx"))  # where ort-cpu looks for it


def test_coreml_backends_are_registered_but_not_default():
    assert {"coreml-all", "coreml-cpu-gpu", "coreml-cpu"} <= set(REGISTRY)
    assert not any(name.startswith("coreml") for name in DEFAULT_BACKENDS)
    assert {REGISTRY[n]().options()["compute_units"] for n in ("coreml-all", "coreml-cpu-gpu", "coreml-cpu")} == {
        "all",
        "cpuAndGPU",
        "cpuOnly",
    }


@pytest.mark.skipif(platform.system() == "Darwin", reason="Core ML predicts on macOS")
def test_off_macos_the_coreml_backends_say_why():
    for name in ("coreml-all", "coreml-cpu-gpu", "coreml-cpu"):
        with pytest.raises(BackendUnavailable, match="only on macOS.*opbench export --backend coreml"):
            get_backend(name)


def test_the_cache_keeps_directory_artifacts(tmp_path):
    cache = ArtifactCache(tmp_path)
    (case,) = tiny_cases()[:1]
    calls = []

    def create(path: Path) -> None:
        calls.append(path)
        (path / "Data").mkdir(parents=True)
        (path / "Data" / "model.mlmodel").write_bytes(b"spec")

    first = cache.get_or_create(case, "dirs", {"v": 1}, ".mlpackage", create)
    second = cache.get_or_create(case, "dirs", {"v": 1}, ".mlpackage", create)
    assert first.path == second.path and first.path.is_dir() and second.cache_hit and len(calls) == 1
    assert (first.path / "Data" / "model.mlmodel").read_bytes() == b"spec"
    assert not [p for p in tmp_path.rglob(".*tmp*")]  # no temporary left behind


def test_unknown_format_and_options_are_user_errors():
    with pytest.raises(OpbenchError, match="cannot export"):
        backends.export_format("tflite")
    with pytest.raises(OpbenchError, match="Core ML only"):
        backends.export_format("onnx", "float16")
    with pytest.raises(OpbenchError, match="unknown Core ML deployment target"):
        backends.export_format("coreml", target="iOS99")
