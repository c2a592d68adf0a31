"""`opbench predict MODEL` and `opbench slim`: a zoo model's latency from the block lookup table, and the search of
EfficientFormer's space under a latency budget (opbench.lookup)."""

from __future__ import annotations

import argparse

from opbench.commands.common_args import add_results_dir, add_results_of, add_seconds, add_threads
from opbench.errors import OpbenchError
from opbench.options import is_positive_finite
from opbench.suite import suites


def _ms(e) -> str:
    return f"{e.value * 1e3:.3f} ms" + (f" [{e.low * 1e3:.3f}, {e.high * 1e3:.3f}]" if e.has_interval else "")


def lookup_suite():
    """The suite that times the block lookup table (the one whose report predicts models from it) and that extra."""
    from opbench.plan import Predictions

    for suite in suites().values():
        for extra in suite.plan("default").extras:
            if isinstance(extra, Predictions):
                return suite, extra
    raise OpbenchError("no registered suite predicts models from a lookup table")


def lookup_table(args: argparse.Namespace):
    """The measured lookup table of the (device, backend), the same run's by default (opbench.lookup.measured),
    with the suite and extra it belongs to; says which run was used."""
    from opbench.lookup.measured import measured_table

    suite, extra = lookup_suite()
    found = measured_table([args.results_dir], args.device, args.backend, extra, suite.key, args.run)
    print(found.note)
    return found.data, suite, extra


def _scores(rows) -> None:
    """The target's validation, one line per predictor (opbench.lookup.predict.summary)."""
    from opbench.lookup.predict import PREDICTORS, scores_of, summary

    if rows.empty:
        print("validation: no zoo model measured whole here, so no predictor is validated")
        return
    row = summary(rows).iloc[0].to_dict()
    for name in PREDICTORS:
        s = scores_of(row, name)
        if s["validated"]:
            print(f"  {name:9s} over {s['validated']} models: within ±10% {s['within_10pct']:.0%}, "
                  f"±5% {s['within_5pct']:.0%}, RMSPE {s['rmspe']:.1%}, mean error {s['mean_error']:+.1%}")  # fmt: skip
        else:
            print(f"  {name:9s} absent: {s['absent'] or 'no model validated'}")
    if row["bracket_models"]:
        print(f"  measured between the hot and the cold sum: {row['bracketed']} of {row['bracket_models']} models")


def _validation(measured, extra, args: argparse.Namespace):
    from opbench.lookup.predict import validation

    rows = validation({(args.device, args.backend): measured}, extra)
    print("validation on this device/backend (scaled and corrected: leave-one-family-out cross-validated):")
    _scores(rows)
    return rows


def run_predict(args: argparse.Namespace) -> int:
    from opbench.lookup.predict import gap_forms, predict

    measured, _, extra = lookup_table(args)
    p = predict(args.model, extra, measured)
    for block, count in p.blocks:
        print(f"{count:3d} x {block}")
    if p.floor_s is None:
        print("no per-call floor measured on this device/backend (the overhead suite): the plain sum is the prediction")
    else:
        print(f"per-call floor {p.floor_s * 1e3:.3f} ms, paid once by the whole model, by each block timed alone")
    print(f"predicted (block medians summed, less the floor of all blocks but one; 95% bootstrap interval): "
          f"{_ms(p.predicted)}")  # fmt: skip
    print(f"plain sum of the block medians: {p.plain_sum_s * 1e3:.3f} ms")
    print(f"cold sum (the blocks' cold twins, same rule): {_ms(p.cold) if p.cold else 'absent: ' + p.cold_absent}")
    rows = _validation(measured, extra, args)
    row = rows[rows["model"] == args.model]
    if p.measured:
        print(
            f"measured  (models/{args.model}): {_ms(p.measured)}; error {p.error:+.1%} (plain sum {p.plain_error:+.1%})"
        )
        if p.cold:
            inside = "inside" if p.in_bracket else "outside"
            print(f"cold sum error {p.cold_error:+.1%}; the measured model is {inside} its hot-cold bracket")
        r = row.iloc[0]
        for form, base in gap_forms(r["corrected_from"]):
            if r[f"{form}_absent"]:
                print(f"{form}: absent: {r[f'{form}_absent']}")
            else:
                print(f"{form} (a fit that saw no {r['family']} model, from the {base} sum): "
                      f"{r[f'{form}_ms']:.3f} ms; error {r[f'{form}_error']:+.1%}")  # fmt: skip
    else:
        print(f"measured: models/{args.model} was not measured on this device/backend")
    return 0


def margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share (0.05 for 5%)") from exc
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"the margin must be a share from 0 up to 1 (0.05 for 5%), not {text}")
    return value


def budget_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of milliseconds") from exc
    if not is_positive_finite(value):
        raise argparse.ArgumentTypeError(f"the budget must be a positive finite number of milliseconds, not {text}")
    return value


def run_slim(args: argparse.Namespace) -> int:
    import numpy as np

    from opbench.backends import RunConfig, get_backend
    from opbench.lookup import slim
    from opbench.lookup.predict import best_predictor
    from opbench.lookup.table import table
    from opbench.measure.path import measure
    from opbench.measure.standalone import perf_counter_timer

    measured, suite, extra = lookup_table(args)
    predictor = best_predictor(_validation(measured, extra, args))
    if predictor.rmspe is None:
        print("searching with the raw hot sum (not validated: no zoo model measured whole here)")
    else:
        print(f"searching with the {predictor.name} predictor, the best validated here: RMSPE {predictor.rmspe:.1%} "
              f"over {predictor.validated} models" + ("; its fit for the search saw all of them" if predictor.gap
                                                      else ""))  # fmt: skip
    lookup = table(suite.key)
    share = args.margin if args.margin is not None else predictor.rmspe or 0.0
    target_s = args.budget_ms / 1e3 * (1 - share)
    if share:
        why = "--margin" if args.margin is not None else "the predictor's cross-validated RMSPE"
        print(f"searching under {target_s * 1e3:.3f} ms: the budget less {share:.1%} ({why})")
    best = slim.search(measured, target_s, slim.parts(lookup), extra.floor, predictor, lookup.weight_bytes)
    print(f"found {best.name}: widths {best.widths}, depths {best.depths}, {best.num_meta3d} Meta3D")
    print(f"  {best.macs / 1e9:.3f} GMACs (the accuracy proxy), predicted {best.predicted_s * 1e3:.3f} ms "
          f"({predictor.name}; raw {'cold' if predictor.cold else 'hot'} sum {best.sum_s * 1e3:.3f} ms)")  # fmt: skip
    if args.no_measure:
        return 0
    timer, samples = perf_counter_timer(args.seconds, warmup=3, min_rounds=5)
    outcome = measure(best.case(), get_backend(args.backend), RunConfig(threads=args.threads), timer)
    if outcome.status != "ok":
        raise OpbenchError(f"{best.name} could not be measured on {args.backend}: {outcome.reason}")
    measured_s = float(np.median(samples))
    print(
        f"  measured here: {measured_s * 1e3:.3f} ms (median of {len(samples)}; check max abs err "
        f"{outcome.check.max_abs_err:.2g}); predicted / measured - 1 = {best.predicted_s / measured_s - 1:+.1%}; "
        f"{'under' if measured_s <= args.budget_ms / 1e3 else 'over'} the budget"
    )
    return 0


def add_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run",
        help="the run id (or its start) whose table and models to use (default: the newest run holding both)",
    )


def add(sub) -> None:
    p = sub.add_parser("predict", help="a zoo model's latency from the block lookup table, against measured")
    p.add_argument("model", help="a zoo model (opbench list --suite models)")
    add_results_of(p)
    add_run(p)
    add_results_dir(p)
    p.set_defaults(func=run_predict)
    p = sub.add_parser("slim", help="search EfficientFormer's space for the most MACs under a latency budget")
    p.add_argument("--budget-ms", type=budget_ms, required=True, help="latency budget in milliseconds")
    add_results_of(p)
    add_run(p)
    add_results_dir(p)
    add_threads(p)
    add_seconds(p)
    p.add_argument(
        "--margin",
        type=margin,
        help="search under the budget less this share, so that the model found runs under it (default: the "
        "chosen predictor's cross-validated RMSPE; 0: right at the budget)",
    )
    p.add_argument("--no-measure", action="store_true", help="search only; do not build and measure the result")
    p.set_defaults(func=run_slim)
