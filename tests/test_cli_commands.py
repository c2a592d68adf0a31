"""The command line's layout: cli.py builds its parser from one module per command, and an option several commands
share is defined once, with one help text wherever it appears."""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from opbench import cli
from opbench.commands import COMMANDS

SHARED = ("--results-dir", "--cache-dir", "--threads", "--seconds", "--suite-file")


def subcommands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_command_comes_from_its_own_module_and_dispatches_to_it():
    parsers = subcommands()
    assert list(parsers) == ["list", "export", "import", "report", "compare", "profile", "stability", "predict", "slim"]
    modules = {command.__name__ for command in COMMANDS}
    for name, parser in parsers.items():
        func = parser.get_default("func")
        assert func.__module__ in modules, f"{name} dispatches to {func.__module__}"


def test_a_shared_option_has_one_help_text_in_every_command():
    helps = defaultdict(set)
    for parser in subcommands().values():
        for action in parser._actions:
            for option in set(action.option_strings) & set(SHARED):
                helps[option].add(action.help)
    assert set(helps) == set(SHARED)
    assert {option: len(texts) for option, texts in helps.items()} == dict.fromkeys(SHARED, 1)


def test_cli_only_parses_and_dispatches():
    assert len(Path(cli.__file__).read_text().splitlines()) <= 80
