"""`opbench list | ...`: the command line. User errors print one clear message and exit 2, no traceback."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from opbench.errors import OpbenchError
from opbench.observations import OBSERVATIONS, OVERHEAD_KEY, select_cases
from opbench.shapes import GRIDS


def observation_keys(values: list[str] | None) -> list[str] | None:
    """'1', 'obs1' and 'overhead' all name observations."""
    if not values:
        return None
    keys = [v if not v.isdigit() else f"obs{v}" for v in values]
    unknown = [k for k in keys if k not in OBSERVATIONS and k != OVERHEAD_KEY]
    if unknown:
        raise OpbenchError(f"unknown observation(s) {', '.join(unknown)}; choose from 1-4 or {', '.join(OBSERVATIONS)}")
    return keys


def add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--observation", action="append", help="1..4 or obs1..obs4 (repeatable; default: all)")
    parser.add_argument("--grid", default="default", choices=list(GRIDS), help="stage shapes (default: L1's)")
    parser.add_argument("--cases", metavar="GLOB", help="only case ids matching this glob, e.g. 'obs3/mlp/*'")


def selected_cases(args: argparse.Namespace):
    cases = select_cases(args.grid, observation_keys(args.observation), args.cases)
    if not cases:
        raise OpbenchError("no case matches that selection; `opbench list` shows them all")
    return cases


def cmd_list(args: argparse.Namespace) -> int:
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


def cmd_compare(args: argparse.Namespace) -> int:
    from opbench import compare

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
        if len(worse):
            print(f"opbench: {len(worse)} significant slowdown(s) beyond x{args.fail_on_regression:g}", file=sys.stderr)
            return 1
    return 0


def add_compare(sub) -> None:
    from opbench.compare import DEFAULT_ALPHA, DEFAULT_FACTOR, FORMATS
    from opbench.compare import __doc__ as doc

    p = sub.add_parser(
        "compare",
        help="compare two runs, devices or backends case by case (ratio, interval, significance)",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("a", help="baseline: RUN, RUN@BACKEND or backend:BACKEND (RUN = result file, run id or device)")
    p.add_argument("b", help="candidate, same syntax; ratios are B / A")
    p.add_argument("--run", help="the run that backend:NAME operands refer to (default: the latest run)")
    p.add_argument("--results-dir", default="device_results", help="where runs are found (default: %(default)s)")
    p.add_argument("--factor", type=float, default=DEFAULT_FACTOR, help="ratio threshold (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="rank test level (default: %(default)s)")
    p.add_argument("--format", choices=FORMATS, default="text", help="output format (default: %(default)s)")
    p.add_argument("--output", metavar="PATH", help="write the table there instead of to standard output")
    p.add_argument(
        "--fail-on-regression",
        type=float,
        metavar="FACTOR",
        help="exit 1 if any case is significantly slower in B than FACTOR x A (for CI)",
    )
    p.set_defaults(func=cmd_compare)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list the cases with their shapes, MACs and parameters")
    add_selection(p)
    p.set_defaults(func=cmd_list)
    add_compare(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OpbenchError as exc:
        print(f"opbench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
