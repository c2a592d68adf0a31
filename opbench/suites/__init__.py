"""The paper's four observations, one module each: the claim, its cases, its comparisons and its rule.

Each module defines a module-level SUITE; the registry is opbench.suite.
"""
