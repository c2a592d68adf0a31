"""`opbench stability RUN_OR_DIR...`: several runs' verdicts side by side (the analysis is opbench.analysis)."""

from __future__ import annotations

import argparse
import sys

from opbench.analysis import stability
from opbench.commands.common_args import add_result_filters, add_suite_files, documented, suite_keys
from opbench.suite import import_suite_files


def run(args: argparse.Namespace) -> int:
    import_suite_files(args.suite_file)
    runs = stability.load(args.paths, backends=args.backend, suites=suite_keys(args.suite))
    frame, counts = stability.table(runs)
    sys.stdout.write(stability.render(runs, frame, counts))
    return 0


def add(sub) -> None:
    p = documented(
        sub,
        "stability",
        "several runs' verdicts side by side, and the flips between holds and does not hold",
        stability,
    )
    p.add_argument("paths", nargs="+", metavar="RUN_OR_DIR", help="result files, or folders of them (each file a run)")
    add_result_filters(p, suites=True)
    add_suite_files(p)
    p.set_defaults(func=run)
