"""Observation 3: CONV-BN against LN (GN)-Linear (cases: opbench/suites/)."""

SUITE = "obs3"


def test_obs3_conv_bn(opbench_case, benchmark):
    opbench_case.measure(benchmark)
