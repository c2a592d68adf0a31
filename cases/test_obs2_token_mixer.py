"""Observation 2: pool vs MHSA token mixers, with and without 4D/3D reshapes (cases: opbench/suites/)."""

SUITE = "obs2"


def test_obs2_token_mixer(opbench_case, benchmark):
    opbench_case.measure(benchmark)
