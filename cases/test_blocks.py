"""The block lookup table: every distinct block of the zoo and of the slimming search space (opbench/lookup.py)."""

SUITE = "blocks"


def test_blocks(opbench_case, benchmark):
    opbench_case.measure(benchmark)
