"""`opbench list | ...`: the command line. User errors print one clear message and exit 2, no traceback.

This module only builds the parser from the command modules (opbench/commands/, one per command) and dispatches to
the function each sets as `func`; options several commands share are defined in opbench/commands/common_args.py.
"""

from __future__ import annotations

import argparse
import sys

from opbench.commands import COMMANDS
from opbench.errors import OpbenchError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # a checked option raises OpbenchError here, before any work
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
