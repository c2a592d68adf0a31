"""Observation 4: GELU, ReLU, HardSwish, SiLU (cases: opbench/suites/)."""

SUITE = "obs4"


def test_obs4_nonlinearity(opbench_case, benchmark):
    opbench_case.measure(benchmark)
