"""The block lookup table: every distinct block of the zoo and of the slimming search space (cases:
opbench/suites/block_table.py, from opbench/lookup/)."""

SUITE = "blocks"


def test_blocks(opbench_case, benchmark):
    opbench_case.measure(benchmark)
