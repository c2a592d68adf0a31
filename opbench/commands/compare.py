"""`opbench compare A B`: two runs, devices or backends case by case (the rule is opbench.analysis.compare)."""

from __future__ import annotations

import argparse
import sys

from opbench import options
from opbench.analysis import compare
from opbench.commands.common_args import add_results_dir, checked, documented
from opbench.errors import OpbenchError


def run(args: argparse.Namespace) -> int:
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
    try:
        return compare.check_factor(float(text))
    except (ValueError, OpbenchError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number above 1 (a ratio, e.g. 1.1)") from exc


def add(sub) -> None:
    p = documented(
        sub, "compare", "compare two runs, devices or backends case by case (ratio, interval, significance)", compare
    )
    p.add_argument("a", help="baseline: RUN, RUN@BACKEND or backend:BACKEND (RUN = result file, run id or device)")
    p.add_argument("b", help="candidate, same syntax; ratios are B / A")
    p.add_argument("--run", help="the run that backend:NAME operands refer to (default: the latest run)")
    add_results_dir(p)
    p.add_argument(
        "--factor", type=ratio_option, default=compare.DEFAULT_FACTOR, help="ratio threshold (default: %(default)s)"
    )
    p.add_argument(
        "--alpha",
        type=checked(float, options.positive_finite, "--alpha"),
        default=compare.DEFAULT_ALPHA,
        help="rank test level (default: %(default)s)",
    )
    p.add_argument("--format", choices=compare.FORMATS, default="text", help="output format (default: %(default)s)")
    p.add_argument("--output", metavar="PATH", help="write the table there instead of to standard output")
    p.add_argument(
        "--fail-on-regression",
        type=ratio_option,
        metavar="FACTOR",
        help="exit 1 if any case is significantly slower in B than FACTOR x A (for CI)",
    )
    p.set_defaults(func=run)
