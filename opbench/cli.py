"""`opbench list | ...`: the command line. User errors print one clear message and exit 2, no traceback."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from opbench.errors import OpbenchError
from opbench.results import DEFAULT_DIR
from opbench.shapes import GRIDS
from opbench.suite import parse_suites, select_cases, suites


def suite_keys(values: list[str] | None) -> list[str] | None:
    """Suite keys, comma-separated or repeated; a bare number N names observation N (obsN)."""
    if not values:
        return None
    names = [n.strip() for v in values for n in v.split(",")]
    return parse_suites([f"obs{n}" if n.isdigit() else n for n in names])


def add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-s", "--suite", "-o", "--observation", dest="suite", action="append",
        help="a suite (obs1..obs4, overhead, ...; 1..4 name the observations); repeatable (default: all)",
    )  # fmt: skip
    parser.add_argument("--grid", default="default", choices=list(GRIDS), help="stage shapes (default: L1's)")
    parser.add_argument(
        "--cases", metavar="GLOB", type=glob_option, help="only case ids matching this glob, e.g. 'obs3/mlp/*'"
    )


def glob_option(text: str) -> str:
    """A glob of case ids; an empty one is a mistake (it would silently select every case), not 'all'."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty glob: give case ids to match, e.g. 'obs4/*', or leave it out")
    return text


def selected_cases(args: argparse.Namespace):
    cases = select_cases(args.grid, suite_keys(args.suite), args.cases)
    if not cases:
        raise OpbenchError("no case matches that selection; `opbench list` shows them all")
    return cases


def cmd_list(args: argparse.Namespace) -> int:
    if args.suites:
        for key, suite in suites().items():
            kind = "observation" if suite.rule else "on request" if suite.on_request else "suite"
            print(f"{key:12} {kind:12} {suite.title}")
        return 0
    rows = []
    for case in selected_cases(args):
        costs = case.costs
        rows.append(
            {
                "case": case.id,
                "input": "x".join(map(str, case.input_shape)),
                "MMACs": round(costs.macs / 1e6, 2),
                "params": costs.param_count,
                "what": case.description,
            }
        )
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 60, "display.width", 200):
        print(pd.DataFrame(rows).to_string(index=False))
    print(f"\n{len(rows)} cases", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from opbench.backends import export_format
    from opbench.cache import ArtifactCache
    from opbench.export import DEFAULT_OUT, MANIFEST, TEMPLATE, export_cases

    fmt = export_format(args.backend, args.precision, args.target)
    cases = selected_cases(args)
    out = Path(args.out) if args.out else DEFAULT_OUT / fmt.name
    start = time.perf_counter()
    manifest = export_cases(cases, fmt, out, ArtifactCache(args.cache_dir), args.grid)
    ok = [e for e in manifest["entries"] if e["status"] == "ok"]
    print(
        f"{len(manifest['entries'])} cases in {time.perf_counter() - start:.1f} s: {len(ok)} exported, "
        f"{len(manifest['entries']) - len(ok)} unsupported -> {out / MANIFEST}, {out / TEMPLATE}",
        file=sys.stderr,
    )
    for entry in manifest["entries"]:
        if entry["status"] != "ok":
            print(f"  unsupported: {entry['case']}: {entry['reason'].strip().splitlines()[0][:200]}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from opbench.importer import import_file

    path = import_file(
        args.file, args.device, args.backend, args.manifest, args.results_dir, args.kind, args.os, args.protocol
    )
    print(f"imported measurements of {args.device} -> {path}", file=sys.stderr)
    return 0


def add_export_import(sub) -> None:
    from opbench.backends import EXPORT_FORMATS
    from opbench.cache import DEFAULT_ROOT
    from opbench.results import DEFAULT_DIR

    p = sub.add_parser(
        "export", help="write every case as a Core ML package (or ONNX, LiteRT file), a manifest and a template"
    )
    p.add_argument("--backend", required=True, choices=list(EXPORT_FORMATS), help="what to export to")
    add_selection(p)
    p.add_argument("--out", help="folder for the packages, manifest.json and template.csv (default: exports/<backend>)")
    p.add_argument("--precision", default="float32", help="compute precision: float32 (default) or float16 (Core ML)")
    p.add_argument("--target", help="Core ML minimum deployment target (default: iOS15)")
    p.add_argument("--cache-dir", default=str(DEFAULT_ROOT), help="exported artifacts (default: %(default)s)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="bring numbers measured on a device (template.csv, result JSON, measured/)")
    p.add_argument(
        "file",
        help="a filled template.csv, a result file in opbench's schema (.json), or the measured/ folder an export's "
        "device script (run_on_android.sh) brought back",
    )
    p.add_argument("--device", required=True, help='the device measured, e.g. "iPhone 12"')
    p.add_argument("--backend", help="coreml-all (default), coreml-cpu-gpu or coreml-cpu; any name for ONNX and LiteRT")
    p.add_argument("--manifest", help="manifest.json of the export measured (default: beside FILE, exports/coreml/)")
    p.add_argument("--kind", help="device kind (default: phone for an iPhone, tablet for an iPad, else device)")
    p.add_argument("--os", help='its operating system, e.g. "iOS 17.5"')
    p.add_argument("--protocol", help='how it was measured, e.g. "Xcode 16 performance report, median"')
    p.add_argument("--results-dir", default=str(DEFAULT_DIR), help="where result files go (default: %(default)s)")
    p.set_defaults(func=cmd_import)


def cmd_report(args: argparse.Namespace) -> int:
    from opbench.report import render  # matplotlib and jinja2 only when reporting

    out = render(
        args.paths or [DEFAULT_DIR],
        args.out,
        devices=args.device,
        backends=args.backend,
        baseline=args.baseline,
        skip_invalid=args.skip_invalid,
        progress=not args.quiet,
    )
    print(f"report written to {out} (tables: {out.parent}/*.csv)", file=sys.stderr)
    return 0


def add_report(sub) -> None:
    p = sub.add_parser(
        "report",
        help="judge every suite with a rule and write reports/index.html with its CSV tables",
        description="Read result files (measured runs, imported device runs, published reference numbers), decide "
        "each suite's verdict per (device, backend), and write one self-contained HTML report (figures "
        "inline, opens from disk) plus the tables behind it as CSV in the same folder.",
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=f"result files or folders searched for *.json (default: {DEFAULT_DIR}/)",
    )
    p.add_argument("--out", default="reports/index.html", help="the HTML file to write (default: %(default)s)")
    p.add_argument(
        "--device", action="append", metavar="NAME", help="only this device, by name or slug; glob; repeatable"
    )
    p.add_argument(
        "--backend", action="append", metavar="NAME", help="only this backend, e.g. ort-cpu; glob; repeatable"
    )
    p.add_argument(
        "--baseline",
        metavar="[DEVICE/]BACKEND",
        help="what the cross-backend view divides by (default: the first pair)",
    )
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip malformed result files with a warning (on stderr and in the report) instead of stopping",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar while figures render")
    p.set_defaults(func=cmd_report)


def cmd_profile(args: argparse.Namespace) -> int:
    from opbench.backends import RunConfig
    from opbench.cache import ArtifactCache
    from opbench.files import atomic_write_text, check_folder
    from opbench.measure.standalone import parse_shape, render_text, run_profile, target_case
    from opbench.results import device_info, new_run, write_run

    check_folder(args.results_dir, "--results-dir")
    if args.threads < 1:
        raise OpbenchError(f"--threads must be 1 or more, got {args.threads}")
    device = device_info(args.device)
    case = target_case(args.target, parse_shape(args.input) if args.input else None)
    out = Path(args.out) if args.out else Path("reports") / "profile" / f"{case.slug}.md"
    check_folder(out.parent, "the folder of --out")
    print(f"opbench profile: {case.id} ({case.costs.macs / 1e6:,.1f} MMACs)", file=sys.stderr)
    config = RunConfig(threads=args.threads, cache=ArtifactCache(args.cache_dir))
    found = run_profile(
        case, args.backends, config, args.seconds, lambda line: print(f"  {line}", file=sys.stderr, flush=True)
    )
    protocol = {"threads": args.threads, "timer": "time.perf_counter loop of `opbench profile` (not pytest-benchmark)",
                "seconds": args.seconds, "target": args.target}  # fmt: skip
    run = new_run(device, found.results, "pytest-benchmark", protocol, unavailable_backends=found.unavailable)
    path = write_run(run, args.results_dir)
    text = render_text(found)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    sys.stdout.write(text)
    print(f"results written to {path}; report written to {out}", file=sys.stderr)
    return 0


def add_profile(sub) -> None:
    from opbench.cache import DEFAULT_ROOT

    p = sub.add_parser(
        "profile",
        help="verify, time and profile one model (zoo name, MODULE:FACTORY or FILE.py:FACTORY) on each backend",
    )
    p.add_argument("target", help="a zoo model (efficientformer_l1), package.module:factory or path/file.py:factory")
    p.add_argument("--input", metavar="SHAPE", help="input shape of a factory's model, e.g. 1x3x224x224 (default)")
    p.add_argument("--backends", default="all", help="comma-separated backends (default: every one available here)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default: 1)")
    p.add_argument("--seconds", type=float, default=1.0, help="timing per backend, seconds (default: %(default)s)")
    p.add_argument("--device", help="name of this device (default: the processor's brand)")
    p.add_argument("--results-dir", default=str(DEFAULT_DIR), help="where result files go (default: %(default)s)")
    p.add_argument("--cache-dir", default=str(DEFAULT_ROOT), help="exported artifacts (default: %(default)s)")
    p.add_argument("--out", help="the report to write (default: reports/profile/<case>.md)")
    p.set_defaults(func=cmd_profile)


def cmd_compare(args: argparse.Namespace) -> int:
    from opbench.analysis import compare

    table, a, b = compare.run_compare(args.a, args.b, args.results_dir, args.run, args.factor, args.alpha)
    text = compare.render(table, args.format, a, b, args.factor, args.alpha)
    if args.output:
        try:
            with open(args.output, "w") as f:
                f.write(text)
        except OSError as exc:
            raise OpbenchError(f"{args.output}: cannot write: {exc.strerror}") from exc
        print(f"{compare.summary(table)}; written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.fail_on_regression is not None:
        worse = compare.regressions(table, args.fail_on_regression)
        invalid = int((worse["change"] == "invalid").sum())
        if len(worse):
            print(
                f"opbench: {len(worse) - invalid} significant slowdown(s) beyond x{args.fail_on_regression:g}, "
                f"{invalid} case(s) with invalid timings",
                file=sys.stderr,
            )
            return 1
    return 0


def ratio_option(text: str) -> float:
    """argparse type of a ratio threshold (--factor, --fail-on-regression): a finite number above 1."""
    from opbench.analysis.compare import check_factor

    try:
        return check_factor(float(text))
    except (ValueError, OpbenchError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number above 1 (a ratio, e.g. 1.1)") from exc


def documented(sub, name: str, help: str, module) -> argparse.ArgumentParser:
    """A subcommand whose --help is its module's docstring, as written."""
    return sub.add_parser(
        name, help=help, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_compare(sub) -> None:
    from opbench.analysis import compare
    from opbench.analysis.compare import DEFAULT_ALPHA, DEFAULT_FACTOR, FORMATS

    p = documented(
        sub, "compare", "compare two runs, devices or backends case by case (ratio, interval, significance)", compare
    )
    p.add_argument("a", help="baseline: RUN, RUN@BACKEND or backend:BACKEND (RUN = result file, run id or device)")
    p.add_argument("b", help="candidate, same syntax; ratios are B / A")
    p.add_argument("--run", help="the run that backend:NAME operands refer to (default: the latest run)")
    p.add_argument("--results-dir", default="device_results", help="where runs are found (default: %(default)s)")
    p.add_argument("--factor", type=ratio_option, default=DEFAULT_FACTOR, help="ratio threshold (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="rank test level (default: %(default)s)")
    p.add_argument("--format", choices=FORMATS, default="text", help="output format (default: %(default)s)")
    p.add_argument("--output", metavar="PATH", help="write the table there instead of to standard output")
    p.add_argument(
        "--fail-on-regression",
        type=ratio_option,
        metavar="FACTOR",
        help="exit 1 if any case is significantly slower in B than FACTOR x A (for CI)",
    )
    p.set_defaults(func=cmd_compare)


def cmd_stability(args: argparse.Namespace) -> int:
    from opbench.analysis import stability

    runs = stability.load(args.paths)
    frame, counts = stability.table(runs)
    sys.stdout.write(stability.render(runs, frame, counts))
    return 0


def add_stability(sub) -> None:
    from opbench.analysis import stability

    p = documented(
        sub,
        "stability",
        "several runs' verdicts side by side, and the flips between holds and does not hold",
        stability,
    )
    p.add_argument("paths", nargs="+", metavar="RUN_OR_DIR", help="result files, or folders of them (each file a run)")
    p.set_defaults(func=cmd_stability)


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
    """The measured lookup table of the run's (device, backend), with the suite and extra it belongs to."""
    from opbench.lookup.predict import measured_table

    suite, extra = lookup_suite()
    return measured_table([args.results_dir], args.device, args.backend, extra, suite.key), suite, extra


def cmd_predict(args: argparse.Namespace) -> int:
    from opbench.lookup.predict import predict

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
    if p.measured:
        print(
            f"measured  (models/{args.model}): {_ms(p.measured)}; error {p.error:+.1%} (plain sum {p.plain_error:+.1%})"
        )
    else:
        print(f"measured: models/{args.model} was not measured on this device/backend")
    return 0


def budget_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of milliseconds") from exc
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"the budget must be a positive finite number of milliseconds, not {text}")
    return value


def cmd_slim(args: argparse.Namespace) -> int:
    import numpy as np

    from opbench.backends import RunConfig, get_backend
    from opbench.lookup import slim
    from opbench.lookup.table import table
    from opbench.measure.path import measure
    from opbench.measure.standalone import perf_counter_timer

    measured, suite, extra = lookup_table(args)
    best = slim.search(measured, args.budget_ms / 1e3, slim.parts(table(suite.key)), extra.floor)
    print(f"found {best.name}: widths {best.widths}, depths {best.depths}, {best.num_meta3d} Meta3D")
    print(f"  {best.macs / 1e9:.3f} GMACs (the accuracy proxy), predicted {best.predicted_s * 1e3:.3f} ms")
    if args.no_measure:
        return 0
    timer, samples = perf_counter_timer(args.seconds, warmup=3, min_rounds=5)
    outcome = measure(best.case(), get_backend(args.backend), RunConfig(threads=args.threads), timer)
    if outcome.status != "ok":
        raise OpbenchError(f"{best.name} could not be measured on {args.backend}: {outcome.reason}")
    measured = float(np.median(samples))
    print(
        f"  measured here: {measured * 1e3:.3f} ms (median of {len(samples)}; check max abs err "
        f"{outcome.check.max_abs_err:.2g}); predicted / measured - 1 = {best.predicted_s / measured - 1:+.1%}"
    )
    return 0


def add_lookup(sub) -> None:
    p = sub.add_parser("predict", help="a zoo model's latency from the block lookup table, against measured")
    p.add_argument("model", help="a zoo model (opbench list --suite models)")
    p.add_argument("--device", required=True, help="device name or slug of the results")
    p.add_argument("--backend", required=True)
    p.add_argument("--results-dir", default=str(DEFAULT_DIR), help="where runs are found (default: %(default)s)")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("slim", help="search EfficientFormer's space for the most MACs under a latency budget")
    p.add_argument("--budget-ms", type=budget_ms, required=True, help="latency budget in milliseconds")
    p.add_argument("--device", required=True, help="device name or slug of the lookup table")
    p.add_argument("--backend", required=True)
    p.add_argument("--results-dir", default=str(DEFAULT_DIR), help="where runs are found (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="threads for measuring the result (default: 1)")
    p.add_argument("--seconds", type=float, default=1.0, help="timing length for the result (default: 1 s)")
    p.add_argument("--no-measure", action="store_true", help="search only; do not build and measure the result")
    p.set_defaults(func=cmd_slim)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list the cases with their shapes, MACs and parameters")
    add_selection(p)
    p.add_argument("--suites", action="store_true", help="list the suites (their keys select them) instead")
    p.set_defaults(func=cmd_list)
    add_export_import(sub)
    add_report(sub)
    add_compare(sub)
    add_profile(sub)
    add_stability(sub)
    add_lookup(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OpbenchError as exc:
        print(f"opbench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user named that cannot be read or written: a message, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"opbench: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
