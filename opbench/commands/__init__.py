"""One module per command (asv's layout), in the order `opbench --help` lists them. Each has `add(sub)`, which
adds its subcommand(s) with `set_defaults(func=...)`."""

from opbench.commands import compare, export, import_, list_, lookup, profile, report, stability

COMMANDS = (list_, export, import_, report, compare, profile, stability, lookup)
