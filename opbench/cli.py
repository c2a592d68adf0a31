"""`opbench list | ...`: the command line. User errors print one clear message and exit 2, no traceback."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from opbench.errors import OpbenchError
from opbench.observations import OBSERVATIONS, OVERHEAD_KEY, select_cases
from opbench.results import DEFAULT_DIR
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
        help="judge the four observations and write reports/index.html with its CSV tables",
        description="Read result files (measured runs, imported device runs, published reference numbers), decide "
        "each observation's verdict per (device, backend), and write one self-contained HTML report (figures "
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list the cases with their shapes, MACs and parameters")
    add_selection(p)
    p.set_defaults(func=cmd_list)
    add_report(sub)
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
