"""The hot sum, the cold sum, the scaled hot sum and the corrected prediction on constructed tables with known
answers; the gap models are scored only by leave-one-family-out cross-validation; predict, slim and the report read
the same run's table by default."""

from __future__ import annotations

import dataclasses
import math
import re
import zlib

import builders
import pandas as pd
import pytest

from opbench.cli import main
from opbench.errors import OpbenchError
from opbench.lookup import gap, measured, predict, slim
from opbench.lookup.table import cold_id
from opbench.lookup.table import table as lookup_table
from opbench.suites import block_table as blocks
from opbench.suites.models import model_case
from opbench.verdict import Measured

EXTRA = blocks.predictions()
DEVICE, BACKEND = "Lab box", "ort-cpu"
COLD = 1.5  # a block's cold median over its hot one, in every constructed table


def hot_s(case_id: str) -> float:
    """A hot median that differs from block to block (so that the sums, weights and counts are not collinear)."""
    return 1e-4 * (1 + zlib.crc32(case_id.encode()) % 7)


def raw_sum(model, cold: bool) -> float:
    return sum(n * hot_s(b) * (COLD if cold else 1.0) for b, n in model.blocks)


def constructed(measured_s, cold: bool = True, names=None) -> dict[str, Measured]:
    """Every block hot (and cold, COLD times slower); each model in `names` (all: None) measured at
    measured_s(model) seconds."""
    data = {}
    for model in EXTRA.models:
        for b, _ in model.blocks:
            data[b] = Measured(b, median_s=hot_s(b))
            if cold:
                data[cold_id(b)] = Measured(cold_id(b), median_s=hot_s(b) * COLD)
        if names is None or model.model in names:
            data[model.case] = Measured(model.case, median_s=measured_s(model))
    return data


def blocks_of(model) -> int:
    return sum(n for _, n in model.blocks)


def gapped(model) -> float:
    """1.3x the cold sum and 0.2% more per block: a gap the corrected model fits exactly and one factor does not."""
    return 1.3 * raw_sum(model, cold=True) * math.exp(0.002 * blocks_of(model))


def rows_of(data) -> pd.DataFrame:
    return predict.validation({(DEVICE, BACKEND): data}, EXTRA).set_index("model")


def test_hot_and_cold_sums_and_the_bracket_count_have_known_answers():
    """Measured at 1.2x the hot sum: inside the bracket [hot, 1.5x hot]; the poolformers at 0.9x and 2x: outside."""
    factor = {"poolformer_s12": 0.9, "poolformer_s24": 2.0}
    rows = rows_of(constructed(lambda m: raw_sum(m, cold=False) * factor.get(m.model, 1.2)))
    assert len(rows) == len(EXTRA.models)
    assert rows.loc["efficientformer_l1", "error"] == pytest.approx(1 / 1.2 - 1)
    assert rows.loc["efficientformer_l1", "cold_error"] == pytest.approx(1.5 / 1.2 - 1)
    assert rows.loc["poolformer_s24", "cold_error"] == pytest.approx(1.5 / 2.0 - 1)
    assert not rows.loc["poolformer_s12", "in_bracket"] and rows.loc["deit_s", "in_bracket"]
    s = predict.summary(rows.reset_index()).iloc[0]
    assert (s["bracketed"], s["bracket_models"]) == (len(EXTRA.models) - 2, len(EXTRA.models))
    assert s["cold_models"] == len(EXTRA.models) and s["cold_rmspe"] > 0
    assert (rows["corrected_from"] == "cold").all()


def test_the_correction_learns_a_gap_per_block_and_wins():
    """Measured 1.3x the cold sum and 0.2% more per block: the cross-validated correction is exact; the raw sums
    and the one factor of the scaled hot sum are not."""
    rows = rows_of(constructed(gapped))
    assert rows["corrected_error"].abs().max() < 1e-6
    assert rows["scaled_error"].abs().max() > 0.01
    s = predict.summary(rows.reset_index()).iloc[0]
    assert s["best"] == "corrected" and s["corrected_within_5pct"] == 1.0 and s["within_10pct"] == 0.0


def test_the_scaled_hot_sum_learns_one_factor_and_wins_the_tie():
    """Measured 1.2x the hot sum: the scaled hot sum is exact (so is the correction, with more coefficients: the
    simpler one is the best)."""
    rows = rows_of(constructed(lambda m: 1.2 * raw_sum(m, cold=False)))
    assert rows["scaled_error"].abs().max() < 1e-9 and rows["error"].to_numpy() == pytest.approx(1 / 1.2 - 1)
    s = predict.summary(rows.reset_index()).iloc[0]
    assert s["best"] == "scaled" and s["scaled_within_5pct"] == 1.0 and s["scaled_absent"] == ""
    chosen = predict.best_predictor(rows.reset_index())
    assert (chosen.name, chosen.cold) == ("scaled", False) and chosen.latency(1e-3, 5e6, 40) == pytest.approx(1.2e-3)


def test_the_scaled_hot_sum_of_a_family_comes_from_the_other_families():
    """The poolformers at 2.4x their hot sum, every other family at 1.2x: held out, the poolformers get the others'
    factor, -50%."""
    rows = rows_of(constructed(lambda m: raw_sum(m, cold=False) * (2.4 if m.family == "poolformer" else 1.2)))
    assert rows.loc[["poolformer_s12", "poolformer_s24"], "scaled_error"].to_numpy() == pytest.approx(-0.5)
    leaked = gap.fit(predict._gap_rows(rows.reset_index(), "hot"), "scaled")
    assert leaked.latency(1.0, 0.0, 0) > 1.25  # a fit that had seen them would have moved toward them


def test_a_family_is_predicted_by_a_fit_that_never_saw_it():
    """The poolformers run 2x slower than the rule every other family follows (1.3x the cold sum): held out, they
    are predicted by the others' rule exactly, -50%; a fit that had seen them would have moved toward them."""
    rows = rows_of(constructed(lambda m: raw_sum(m, cold=True) * (2.6 if m.family == "poolformer" else 1.3)))
    assert rows.loc[["poolformer_s12", "poolformer_s24"], "corrected_error"].to_numpy() == pytest.approx(-0.5)
    leaked = gap.fit(predict._gap_rows(rows.reset_index(), "cold"))
    pool = rows.loc["poolformer_s12"]
    leaked_error = leaked.latency(pool["cold_ms"] / 1e3, pool["weight_mb"] * 1e6, pool["block_count"]) / (
        pool["measured_ms"] / 1e3
    )
    assert abs(leaked_error - 1 - (-0.5)) > 0.05  # what the test would see if the held-out family leaked


def test_no_model_is_scored_on_a_fit_that_saw_its_family(monkeypatch):
    """Instrumented: every fit records the models it saw and its form, every scaled or corrected prediction the fit
    it came from."""
    fits, forms, scored = [], {}, []
    real_fit = gap.fit

    def recording_fit(rows, form="corrected"):
        fitted = real_fit(rows, form)
        fits.append(fitted)  # kept alive, so that no two fits share an id
        forms[id(fitted)] = form
        return fitted

    real_latency = gap.Gap.latency

    def recording_latency(self, sum_s, weight_bytes, block_count):
        scored.append((forms[id(self)], self.seen, sum_s))
        return real_latency(self, sum_s, weight_bytes, block_count)

    monkeypatch.setattr(gap, "fit", recording_fit)
    monkeypatch.setattr(gap.Gap, "latency", recording_latency)
    rows = rows_of(constructed(lambda m: 1.3 * raw_sum(m, cold=True))).reset_index()
    family = dict(zip(rows["model"], rows["family"], strict=True))
    by_sum = {
        form: {round(s / 1e3, 12): m for m, s in zip(rows["model"], rows[column], strict=True)}
        for form, column in (("scaled", "predicted_ms"), ("corrected", "cold_ms"))
    }
    assert len(fits) == 2 * rows["family"].nunique() and len(scored) == 2 * len(rows)
    for form, seen, sum_s in scored:
        model = by_sum[form][round(sum_s, 12)]
        assert family[model] not in {family[s] for s in seen}, f"{model} scored on a {form} fit that saw its family"


def test_without_cold_rows_the_cold_sum_is_absent_with_a_reason_and_the_correction_reads_the_hot_sum():
    rows = rows_of(constructed(lambda m: raw_sum(m, cold=False) * math.exp(0.002 * blocks_of(m)), cold=False))
    assert rows["cold_ms"].isna().all() and (rows["cold_absent"] == predict.NO_COLD).all()
    assert rows["in_bracket"].isna().all() and (rows["corrected_from"] == "hot").all()
    s = predict.summary(rows.reset_index()).iloc[0]
    assert s["cold_models"] == 0 and s["cold_absent"] == predict.NO_COLD and s["bracket_models"] == 0
    assert s["best"] == "corrected"


def test_a_missing_cold_twin_is_named():
    data = constructed(lambda m: raw_sum(m, cold=False))
    first = EXTRA.model("efficientformer_l1").blocks[0][0]
    data[cold_id(first)] = Measured(cold_id(first), status="failed", reason="boom")
    p = predict.predict("efficientformer_l1", EXTRA, data, interval=False)
    assert p.cold is None and f"{cold_id(first)}: failed (boom)" in p.cold_absent
    assert rows_of(data).loc["efficientformer_l1", "corrected_from"] == "hot"


@pytest.mark.parametrize(
    ("names", "reason"),
    [
        ({"efficientformer_l1", "efficientformer_l3", "efficientformer_l7"}, "too few families to cross-validate: 1"),
        ({"efficientformer_l1", "efficientformer_l3", "deit_s", "deit_t"}, "too few models outside"),
    ],
)
def test_too_few_families_or_models_to_cross_validate_is_said(names, reason):
    rows = rows_of(constructed(lambda m: 1.3 * raw_sum(m, cold=True), names=names))
    assert set(rows.index) == names and rows["corrected_ms"].isna().all()
    s = predict.summary(rows.reset_index()).iloc[0]
    assert s["corrected_models"] == 0 and reason in s["corrected_absent"] and s["best"] in ("hot", "cold", "scaled")


def test_the_best_predictor_is_the_corrected_one_refitted_on_every_model():
    rows = rows_of(constructed(gapped)).reset_index()
    chosen = predict.best_predictor(rows)
    assert (chosen.name, chosen.cold, chosen.validated) == ("corrected", True, len(rows))
    expected = 1.3e-3 * math.exp(0.02)
    assert set(chosen.gap.seen) == set(rows["model"]) and chosen.latency(1e-3, 0.0, 10) == pytest.approx(expected)
    assert predict.best_predictor(rows.iloc[0:0]) is gap.RAW_HOT


# --- result files: the same run's table, predict and slim on the command line ----------------------------------------


def _results(latency, cold: bool, models: dict[str, float]):
    """Every block case hot (and its cold twin, COLD times slower) with its real MACs stand-in; whole models."""
    out = []
    for c in lookup_table(blocks.KEY).cases:
        r = dataclasses.replace(builders.result(c, BACKEND, latency(c.id), spread=0.01), macs=1000 + len(c.id))
        out.append(r)
        if cold:
            twin = builders.result(c, BACKEND, latency(c.id) * COLD, spread=0.01)
            out.append(dataclasses.replace(twin, case=cold_id(c.id), macs=r.macs))
    return out + [builders.result(model_case(n), BACKEND, s, spread=0.01) for n, s in models.items()]


def _run(results, created: str):
    run_id = f"20260101T{created[11:13]}0000Z-abcdef"
    return dataclasses.replace(builders.make_run(DEVICE, results), created=created, run_id=run_id)


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _everything_measured(scale: float = 1.0) -> dict[str, float]:
    return {m.model: gapped(m) * scale for m in EXTRA.models}


def test_the_run_with_both_the_table_and_the_models_wins_over_a_newer_table(tmp_path, capsys):
    same = _run(_results(hot_s, cold=True, models=_everything_measured()), "2026-01-01T10:00:00+00:00")
    newer = _run(_results(lambda b: 3 * hot_s(b), cold=True, models={}), "2026-01-01T11:00:00+00:00")
    for run in (same, newer):
        builders.write(run, tmp_path)
    found = measured.measured_table([tmp_path], DEVICE, BACKEND, EXTRA, blocks.KEY)
    first = EXTRA.models[0].blocks[0][0]
    assert found.run_id == same.run_id and found.data[first].run_id == same.run_id
    assert same.run_id in found.note
    chosen = measured.measured_table([tmp_path], DEVICE, BACKEND, EXTRA, blocks.KEY, run=newer.run_id[:11])
    assert chosen.run_id == newer.run_id and chosen.data[first].median_s == pytest.approx(3 * hot_s(first), rel=0.05)
    assert "entries from other runs" in chosen.note  # the models come from the other run
    with pytest.raises(OpbenchError, match="no run matches"):
        measured.measured_table([tmp_path], DEVICE, BACKEND, EXTRA, blocks.KEY, run="1999")
    code, out, _ = _cli(capsys, "predict", "efficientformer_l1", "--device", DEVICE, "--backend", BACKEND,
                        "--results-dir", str(tmp_path))  # fmt: skip
    assert code == 0 and f"table and models from run {same.run_id}" in out
    code, _, err = _cli(capsys, "predict", "efficientformer_l1", "--device", DEVICE, "--backend", BACKEND,
                        "--results-dir", str(tmp_path), "--run", "1999")  # fmt: skip
    assert code == 2 and "no run matches" in err


def test_without_a_run_holding_both_each_case_latest_result_is_used_and_said(tmp_path):
    builders.write(_run(_results(hot_s, cold=False, models={}), "2026-01-01T10:00:00+00:00"), tmp_path)
    models = [builders.result(model_case("deit_s"), BACKEND, 1e-2)]
    builders.write(_run(models, "2026-01-01T11:00:00+00:00"), tmp_path)
    found = measured.measured_table([tmp_path], DEVICE, BACKEND, EXTRA, blocks.KEY)
    assert found.run_id is None and "each case's latest result" in found.note
    assert found.data[model_case("deit_s").id].ok


def test_the_report_validates_the_same_run_as_predict(tmp_path, capsys):
    """A newer run of the models alone, twice as slow, does not displace the run that timed them with the table:
    the report's validation and `opbench predict` both read that run, and the page says which."""
    from opbench.analysis import judge
    from opbench.report import render

    same = _run(_results(hot_s, cold=True, models=_everything_measured()), "2026-01-01T10:00:00+00:00")
    slower = [builders.result(model_case(n), BACKEND, s, spread=0.01) for n, s in _everything_measured(2.0).items()]
    for run in (same, _run(slower, "2026-01-01T11:00:00+00:00")):
        builders.write(run, tmp_path / "runs")
    [validation] = judge.validate_predictions(judge.judge(judge.load_inputs([tmp_path / "runs"])))
    rows = validation.models.set_index("model")
    for model in EXTRA.models:
        assert rows.loc[model.model, "measured_ms"] == pytest.approx(gapped(model) * 1e3, rel=0.05)
    assert validation.sources[DEVICE, BACKEND].startswith(f"table and models from run {same.run_id}")
    code, out, _ = _cli(capsys, "predict", "efficientformer_l1", "--device", DEVICE, "--backend", BACKEND,
                        "--results-dir", str(tmp_path / "runs"))  # fmt: skip
    measured_ms = rows.loc["efficientformer_l1", "measured_ms"]
    assert code == 0 and f"measured  (models/efficientformer_l1): {measured_ms:.3f}" in out
    html = render([tmp_path / "runs"], tmp_path / "r" / "index.html", progress=False).read_text()
    assert f"{DEVICE} / {BACKEND}: table and models from run {same.run_id}" in html


def test_predict_prints_the_three_predictions_and_the_validation(tmp_path, capsys):
    builders.write(_run(_results(hot_s, cold=True, models=_everything_measured()), "2026-01-01T10:00:00+00:00"),
                   tmp_path)  # fmt: skip
    code, out, _ = _cli(capsys, "predict", "efficientformer_l1", "--device", DEVICE, "--backend", BACKEND,
                        "--results-dir", str(tmp_path))  # fmt: skip
    assert code == 0
    assert "cold sum (the blocks' cold twins, same rule):" in out and "outside its hot-cold bracket" in out
    assert "corrected (a fit that saw no efficientformer model, from the cold sum)" in out
    assert "corrected over 17 models" in out and "measured between the hot and the cold sum: 0 of 17" in out


def test_slim_searches_with_the_best_validated_predictor(tmp_path, capsys):
    """Every model measured 1.3x its cold sum and 0.2% more per block: slim says it searches with the corrected
    predictor, and the found configuration is predicted by that rule."""
    builders.write(_run(_results(hot_s, cold=True, models=_everything_measured()), "2026-01-01T10:00:00+00:00"),
                   tmp_path)  # fmt: skip
    table = measured.measured_table([tmp_path], DEVICE, BACKEND, EXTRA, blocks.KEY).data
    chosen = predict.best_predictor(predict.validation({(DEVICE, BACKEND): table}, EXTRA))
    lookup = lookup_table(blocks.KEY)
    parts = slim.parts(lookup)
    best = slim.search(table, 0.5, parts, EXTRA.floor, chosen, lookup.weight_bytes)
    cold_sum = sum(table[cold_id(b)].median_s for b in best.blocks(parts))
    expected = 1.3 * cold_sum * math.exp(0.002 * len(best.blocks(parts)))
    assert best.sum_s == pytest.approx(cold_sum) and best.predicted_s == pytest.approx(expected, rel=0.01)
    hot = slim.search(table, 0.5, parts, EXTRA.floor)
    assert hot.predicted_s == pytest.approx(sum(table[b].median_s for b in hot.blocks(parts)))
    code, out, _ = _cli(capsys, "slim", "--budget-ms", f"{best.predicted_s * 1e3 * 1.0001}", "--device", DEVICE,
                        "--backend", BACKEND, "--results-dir", str(tmp_path), "--no-measure",
                        "--margin", "0")  # fmt: skip
    assert code == 0 and "searching with the corrected predictor, the best validated here" in out
    assert best.name in out and f"predicted {best.predicted_s * 1e3:.3f} ms (corrected; raw cold sum" in out


def test_slim_searches_under_the_budget_less_the_predictor_s_error(tmp_path, capsys):
    """By default the search target is the budget less the chosen predictor's cross-validated RMSPE, so that what it
    finds runs under the budget when the prediction misses by a typical error; --margin sets it."""
    measured_s = {m.model: gapped(m) * (1.1 if m.family == "deit" else 1.0) for m in EXTRA.models}
    builders.write(_run(_results(hot_s, cold=True, models=measured_s), "2026-01-01T10:00:00+00:00"), tmp_path)
    table = measured.measured_table([tmp_path], DEVICE, BACKEND, EXTRA, blocks.KEY).data
    chosen = predict.best_predictor(predict.validation({(DEVICE, BACKEND): table}, EXTRA))
    assert chosen.rmspe > 0.01
    lookup = lookup_table(blocks.KEY)
    largest = slim.search(table, 1.0, slim.parts(lookup), EXTRA.floor, chosen, lookup.weight_bytes).predicted_s
    budget = round(largest * 1e3 * 0.8, 3)  # binds: the largest configuration does not fit
    args = ["slim", "--budget-ms", str(budget), "--device", DEVICE, "--backend", BACKEND, "--results-dir",
            str(tmp_path), "--no-measure"]  # fmt: skip
    code, out, _ = _cli(capsys, *args)
    target = budget * (1 - chosen.rmspe)
    assert code == 0 and f"searching under {target:.3f} ms: the budget less {chosen.rmspe:.1%} (the predictor's" in out
    found = float(re.search(r"predicted ([0-9.]+) ms \(", out).group(1))
    assert found <= target
    code, out, _ = _cli(capsys, *args, "--margin", "0.2")
    assert code == 0 and f"searching under {budget * 0.8:.3f} ms: the budget less 20.0% (--margin)" in out


@pytest.mark.parametrize("value", ["1", "-0.1", "nan", "5%"])
def test_slim_refuses_a_bad_margin(value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["slim", "--budget-ms", "20", "--device", DEVICE, "--backend", BACKEND, "--margin", value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and ("the margin must be a share" in err or "is not a share (0.05 for 5%)" in err)


def test_slim_without_validated_models_searches_with_the_raw_hot_sum_and_says_so(tmp_path, capsys):
    builders.write(_run(_results(hot_s, cold=False, models={}), "2026-01-01T10:00:00+00:00"), tmp_path)
    code, out, _ = _cli(capsys, "slim", "--budget-ms", "50", "--device", DEVICE, "--backend", BACKEND,
                        "--results-dir", str(tmp_path), "--no-measure")  # fmt: skip
    assert code == 0 and "searching with the raw hot sum (not validated" in out


def test_slim_with_a_cold_predictor_names_a_missing_cold_block(tmp_path):
    table = constructed(lambda m: 1.0)
    lookup = lookup_table(blocks.KEY)
    parts = slim.parts(lookup)
    for b in set(parts.values()):
        table.setdefault(b, Measured(b, median_s=hot_s(b), macs=1))
        table[b] = dataclasses.replace(table[b], macs=1)
    cold = gap.Predictor("cold", cold=True)
    with pytest.raises(OpbenchError, match="lacks .* search-space block.*-cold: not in any result"):
        slim.search(table, 1.0, parts, None, cold, lookup.weight_bytes)


def test_the_report_shows_the_three_predictors_side_by_side_with_the_bracket(tmp_path):
    from opbench.report import render

    results = _results(hot_s, cold=True, models=_everything_measured())
    builders.write(builders.make_run(builders.MARKUP_DEVICE, results), tmp_path / "runs")
    out = render([tmp_path / "runs"], tmp_path / "r" / "index.html", progress=False)
    html = out.read_text()
    assert "corrected (best)" in html and ">cold<" in html and ">hot<" in html
    assert "measured between the hot and the cold sum for 0 of 17 models" in html
    assert "<b>box</b>" not in html and "&lt;b&gt;box&lt;/b&gt;" in html
    per_model = pd.read_csv(tmp_path / "r" / "prediction.csv")
    assert {"predicted_ms", "cold_ms", "corrected_ms", "corrected_error", "in_bracket"} <= set(per_model.columns)
    summary = pd.read_csv(tmp_path / "r" / "prediction_summary.csv")
    assert {"within_10pct", "cold_within_10pct", "corrected_rmspe", "bracketed", "best"} <= set(summary.columns)


@pytest.mark.parametrize("coefficients", [(0.0, 1.0, 0.01, 0.0), (0.0, 1.0, 0.0, 0.02), (0.1, 0.9, 0.003, 0.01)])
def test_slim_gives_the_correction_each_candidate_s_weights_and_block_count(coefficients):
    lookup = lookup_table(blocks.KEY)
    parts = slim.parts(lookup)
    table = {b: Measured(b, median_s=hot_s(b), macs=1 + zlib.crc32(b.encode()) % 100) for b in set(parts.values())}
    predictor = gap.Predictor("corrected", cold=False, gap=gap.Gap(coefficients, ()))
    best = slim.search(table, 0.02, parts, None, predictor, lookup.weight_bytes)
    found = best.blocks(parts)
    weights = sum(lookup.weight_bytes[b] for b in found)
    assert best.sum_s == pytest.approx(sum(table[b].median_s for b in found))
    assert best.predicted_s == pytest.approx(gap.Gap(coefficients, ()).latency(best.sum_s, weights, len(found)))
    assert best.macs == sum(table[b].macs for b in found) and best.predicted_s <= 0.02


def test_the_report_says_why_the_cold_sum_is_absent(tmp_path):
    from opbench.report import render

    results = _results(hot_s, cold=False, models=_everything_measured())
    builders.write(builders.make_run(DEVICE, results), tmp_path / "runs")
    html = render([tmp_path / "runs"], tmp_path / "r" / "index.html", progress=False).read_text()
    assert f"{DEVICE} / {BACKEND}: no cold prediction: {predict.NO_COLD}" in html and ">absent<" in html
