"""The paper's published iPhone 12 numbers: a valid result file, labelled as published, loaded with the rest."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from opbench import results
from opbench.errors import OpbenchError

REFERENCE = Path(__file__).parents[1] / "device_results" / "reference" / "iphone12-coreml-paper.json"
# PAPER.md, "Published latencies, iPhone 12, CoreML, compute units all" and Table 1 (CPU only), in ms
PUBLISHED = {
    ("efficientformer_l1", "coreml-all"): 1.6,
    ("efficientformer_l3", "coreml-all"): 3.0,
    ("efficientformer_l7", "coreml-all"): 7.0,
    ("mobilenetv2_x1.4", "coreml-all"): 1.6,
    ("mobilenetv2_x1.0", "coreml-all"): 1.3,
    ("poolformer_s12", "coreml-all"): 6.1,
    ("poolformer_s24", "coreml-all"): 6.2,
    ("deit_s", "coreml-all"): 11.8,
    ("levit_256_gelu", "coreml-all"): 11.9,
    ("efficientformer_l1", "coreml-cpu"): 11.5,
    ("efficientnet_b0", "coreml-all"): 2.7,  # derived from "L1 runs 40% faster than EfficientNet-B0"
    ("mobilevit_xs", "coreml-all"): 7.2,  # derived from "L7 runs 0.2 ms faster than MobileViT-XS"
}
READ_OFF_THE_FIGURE = {"mobilenetv2_x1.0", "poolformer_s12", "poolformer_s24", "deit_s", "levit_256_gelu"}
DERIVED_FROM_THE_TEXT = {"efficientnet_b0", "mobilevit_xs"}
V2 = REFERENCE.with_name("iphone12-coreml-v2-paper.json")
PUBLISHED_V2 = {
    "efficientformerv2_s0": 0.9,
    "efficientformerv2_s1": 1.1,
    "efficientformerv2_s2": 1.6,
    "efficientformerv2_l": 2.7,
}


@pytest.fixture(scope="module")
def run() -> dict:
    return results.load_run(REFERENCE).to_json()  # validates against the schema


def test_it_is_a_published_reference_for_a_phone(run):
    assert run["source"] == "reference"
    assert run["device"] == {
        **run["device"],
        "name": "iPhone 12 (published)",
        "slug": "iphone-12-published",
        "kind": "phone",
    }
    assert "not measured by opbench" in run["protocol"]["note"]


def test_every_published_number_with_its_source_and_protocol(run):
    found = {(r["variant"], r["backend"]): r for r in run["results"]}
    assert set(found) == set(PUBLISHED)
    for (variant, backend), ms in PUBLISHED.items():
        result = found[(variant, backend)]
        assert result["case"] == f"models/{variant}" and result["observation"] == "models"
        assert result["family"] == "model" and result["status"] == "ok"
        assert result["stats"]["median_s"] == pytest.approx(ms / 1e3)
        reference = result["reference"]
        assert reference["published_ms"] == ms
        assert reference["source"] and "500" in reference["protocol"]
        assert reference["approximate"] == (variant in READ_OFF_THE_FIGURE | DERIVED_FROM_THE_TEXT)
        assert reference["tag"] == "figure" if variant in READ_OFF_THE_FIGURE else reference["tag"] != "figure"


def test_other_protocols_and_unconfirmed_numbers_are_left_out(run):
    variants = {r["variant"] for r in run["results"]}
    assert not any("efficientformerv2" in v or "efficientformer_v2" in v for v in variants)  # Xcode 14 protocol
    assert "levit_256_hardswish" not in variants  # PAPER.md marks the 44.5 ms as unconfirmed


def test_the_report_loads_it_from_device_results():
    frame = results.to_dataframe(results.load_runs([REFERENCE.parent.parent]))
    published = frame[frame["source"] == "reference"]
    assert set(published["device"]) == {"iPhone 12 (published)"}
    assert len(published) == len(PUBLISHED) + len(PUBLISHED_V2) and published["median_s"].gt(0).all()


def test_the_schema_keeps_published_and_measured_apart(run):
    unlabelled = copy.deepcopy(run)
    del unlabelled["results"][0]["reference"]
    with pytest.raises(OpbenchError, match="'reference' is a required property"):
        results.validate(unlabelled, "reference without provenance")
    measured = copy.deepcopy(run)
    measured["source"] = "import"
    with pytest.raises(OpbenchError, match="not a valid opbench result file"):
        results.validate(measured, "a measured run that claims a publication")


def test_efficientformer_v2_numbers_keep_their_own_protocol():
    v1, v2 = results.load_run(REFERENCE), results.load_run(V2)
    assert {r.variant: r.stats.median_s * 1e3 for r in v2.results} == pytest.approx(PUBLISHED_V2)
    assert all("Xcode 14" in r.reference["protocol"] for r in v2.results) and "Xcode 14" in v2.protocol["method"]
    assert "500" in v1.protocol["method"] and not {r.case for r in v1.results} & {r.case for r in v2.results}


def test_every_published_model_is_a_zoo_case():
    from opbench.suite import select_cases

    ids = {c.id for c in select_cases(keys=["models"])}
    for path in (REFERENCE, V2):
        assert {r.case for r in results.load_run(path).results} <= ids
