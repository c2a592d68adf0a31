"""The per-call floor of each backend (cases: opbench/suites/overhead.py)."""

SUITE = "overhead"


def test_overhead(opbench_case, benchmark):
    opbench_case.measure(benchmark)
