"""`opbench report [PATH...]`: every suite with a rule judged per (device, backend), one HTML page and its CSV
tables."""

from __future__ import annotations

import argparse
import sys

from opbench.commands.common_args import add_result_filters, add_suite_files
from opbench.results import DEFAULT_DIR
from opbench.suite import import_suite_files


def run(args: argparse.Namespace) -> int:
    from opbench.report import render  # matplotlib and jinja2 only when reporting

    import_suite_files(args.suite_file)
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


def add(sub) -> None:
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
    add_result_filters(p)
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
    add_suite_files(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar while figures render")
    p.set_defaults(func=run)
