"""The block lookup table, predictions from it and latency-driven slimming, one way down: slim and predict read the
table; the table is built from the decomposition and the search space; neither of those knows the other."""
