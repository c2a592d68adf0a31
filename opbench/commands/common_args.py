"""Options several commands share, each defined once with one help text and one check (asv's common_args): the
same option means the same and is refused the same way in every command that takes it.

A checked option's type raises OpbenchError from `opbench.options` while the command line is parsed, so a bad value
is one line, exit 2, before any work."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from types import ModuleType

from opbench import options
from opbench.errors import OpbenchError
from opbench.results import DEFAULT_DIR
from opbench.shapes import GRIDS
from opbench.suite import parse_suites, select_cases


def checked(parse: Callable[[str], object], check: Callable[..., object], option: str) -> Callable[[str], object]:
    """An argparse type: the text parsed (a ValueError is argparse's own 'invalid value'), then checked."""

    def convert(text: str) -> object:
        return check(parse(text), option)

    convert.__name__ = parse.__name__  # argparse names the type in its message: "invalid float value"
    return convert


def documented(sub, name: str, help: str, module: ModuleType) -> argparse.ArgumentParser:
    """A subcommand whose --help is its module's docstring, as written."""
    return sub.add_parser(
        name, help=help, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )


SUITES_NAMED = "obs1..obs4, overhead, ...; 1..4 name the observations"  # how suite_keys reads a --suite


def suite_keys(values: list[str] | None) -> list[str] | None:
    """Suite keys, comma-separated or repeated; a bare number N names observation N (obsN)."""
    if not values:
        return None
    names = [n.strip() for v in values for n in v.split(",")]
    return parse_suites([f"obs{n}" if n.isdigit() else n for n in names])


def glob_option(text: str) -> str:
    """A glob of case ids; an empty one is a mistake (it would silently select every case), not 'all'."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty glob: give case ids to match, e.g. 'obs4/*', or leave it out")
    return text


def add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-s", "--suite", "-o", "--observation", dest="suite", action="append",
        help=f"a suite ({SUITES_NAMED}); repeatable (default: all)",
    )  # fmt: skip
    parser.add_argument("--grid", default="default", choices=list(GRIDS), help="stage shapes (default: L1's)")
    parser.add_argument(
        "--cases", metavar="GLOB", type=glob_option, help="only case ids matching this glob, e.g. 'obs3/mlp/*'"
    )


def selected_cases(args: argparse.Namespace):
    cases = select_cases(args.grid, suite_keys(args.suite), args.cases)
    if not cases:
        raise OpbenchError("no case matches that selection; `opbench list` shows them all")
    return cases


def add_results_dir(parser: argparse.ArgumentParser) -> None:
    help = "where result files are written and found (default: %(default)s)"
    parser.add_argument("--results-dir", default=str(DEFAULT_DIR), help=help)


def add_cache_dir(parser: argparse.ArgumentParser) -> None:
    from opbench.cache import DEFAULT_ROOT

    parser.add_argument("--cache-dir", default=str(DEFAULT_ROOT), help="exported artifacts (default: %(default)s)")


def add_device_measured(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """The name a new result file gives its device."""
    default = "" if required else " (default: the processor's brand)"
    parser.add_argument("--device", required=required, help=f'the device measured, e.g. "iPhone 12"{default}')


def add_results_of(parser: argparse.ArgumentParser) -> None:
    """The (device, backend) whose results a command reads."""
    parser.add_argument("--device", required=True, help="device name or slug of the results")
    parser.add_argument("--backend", required=True, help="backend of the results, e.g. ort-cpu")


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=checked(int, options.threads, "--threads"),
        default=1,
        help="intra-op threads, 1 to this machine's cores (default: %(default)s)",
    )


def add_seconds(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seconds",
        type=checked(float, partial(options.positive_finite, unit="seconds"), "--seconds"),
        default=1.0,
        help="how long each timing runs, in seconds (default: %(default)s)",
    )


def add_result_filters(parser: argparse.ArgumentParser, suites: bool = False) -> None:
    """Which results of the files given a command reads: backends (globs) and, where asked, suites."""
    parser.add_argument(
        "--backend", action="append", metavar="NAME", help="only this backend, e.g. ort-cpu; glob; repeatable"
    )
    if suites:
        parser.add_argument(
            "--suite",
            action="append",
            metavar="KEY",
            help=f"only this suite ({SUITES_NAMED}); comma-separated or repeatable",
        )


def add_suite_files(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--suite-file",
        action="append",
        default=[],
        metavar="FILE",
        help="a case module of your own suites (opbench.define_suite) to import, so that they are judged; repeatable",
    )
