"""opbench: operator-level latency suite for the EfficientFormer observations."""

__version__ = "0.1.0"
