"""Whole models of the zoo end to end, with a profiling pass (cases: opbench/suites/models.py)."""

SUITE = "models"


def test_models(opbench_case, benchmark):
    opbench_case.measure(benchmark)
