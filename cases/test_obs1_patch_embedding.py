"""Observation 1: large-kernel patch embedding against 3x3 stems (cases: opbench/suites/)."""

SUITE = "obs1"


def test_obs1_patch_embedding(opbench_case, benchmark):
    opbench_case.measure(benchmark)
