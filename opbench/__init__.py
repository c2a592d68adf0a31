"""opbench: operator-level latency suite for the EfficientFormer observations.

Public API for suites in a user's own files: `opbench.define_suite` (see opbench/user.py and the README's
"Your own blocks and models").
"""

__version__ = "0.1.0"
__all__ = ["SuiteBuilder", "define_suite"]


def __getattr__(name: str):
    """`opbench.define_suite` without importing torch on `import opbench`."""
    if name in __all__:
        from opbench import user

        return getattr(user, name)
    raise AttributeError(f"module 'opbench' has no attribute {name!r}")
