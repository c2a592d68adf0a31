"""`opbench list`: the cases with their shapes, MACs and parameters, or the suites."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from opbench.commands.common_args import add_selection, selected_cases
from opbench.suite import suites


def run(args: argparse.Namespace) -> int:
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


def add(sub) -> None:
    p = sub.add_parser("list", help="list the cases with their shapes, MACs and parameters")
    add_selection(p)
    p.add_argument("--suites", action="store_true", help="list the suites (their keys select them) instead")
    p.set_defaults(func=run)
