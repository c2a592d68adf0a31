"""The block lookup table, predictions from it and latency-driven slimming, one way down: slim and predict read the
table; predict reads the gap models (the scaled and corrected predictions), slim the predictor it is handed; the
measured table is chosen from result files (measured); the table is built from the decomposition and the search
space; neither of those knows the other."""
