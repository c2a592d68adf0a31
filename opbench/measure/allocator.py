"""The memory allocator's configuration: fixed for a whole run, recorded in its protocol, and warned about when not.

glibc's malloc serves a block above its mmap threshold with a fresh mmap (and page faults on first touch), and it
raises that threshold, and the trim threshold with it, to the largest block the process has freed so far. So a case
that allocates a few MB per call runs at one speed in a fresh process and at another after something freed a large
block (an import, an earlier case, a whole model): 5.1 ms against 3.4 ms for obs1/stem/efficientformer/c96.
Setting either threshold explicitly switches that adjustment off. `make bench` and `make test` export RECOMMENDED:
blocks up to 64 MiB come from the heap and are reused call after call (what the adjustment converges to after a
large free, capped at 32 MiB by glibc, which whole models exceed), and up to 128 MiB of freed heap stays mapped
instead of being returned to the system between calls. The variables must be set before the process starts.
"""

from __future__ import annotations

import os
import platform

RECOMMENDED = {"MALLOC_MMAP_THRESHOLD_": "67108864", "MALLOC_TRIM_THRESHOLD_": "134217728"}  # the Makefile's too
TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold")  # GLIBC_TUNABLES spellings of the same


def configuration(environ: dict[str, str] | None = None) -> dict:
    """What the result's protocol records: the C library, the variables that configure malloc, and whether the
    thresholds are fixed (None where the C library is not glibc and the variables mean nothing)."""
    env = os.environ if environ is None else environ
    libc, version = platform.libc_ver()
    config: dict = {"libc": f"{libc} {version}".strip() or "unknown"}
    config.update({name: env[name] for name in (*RECOMMENDED, "MALLOC_ARENA_MAX", "GLIBC_TUNABLES") if name in env})
    tunables = env.get("GLIBC_TUNABLES", "")
    fixed = any(name in env for name in RECOMMENDED) or any(t in tunables for t in TUNABLES)
    config["fixed"] = fixed if libc == "glibc" else None
    return config


def warning(config: dict) -> str | None:
    """A warning when glibc's thresholds were left to adjust themselves, else None."""
    if config.get("fixed") is not False:
        return None
    settings = " ".join(f"{k}={v}" for k, v in RECOMMENDED.items())
    return (
        "opbench: glibc's malloc thresholds are not fixed, so a case's latency depends on what ran before it in the "
        f"process; run through `make bench`, or start pytest with {settings} in the environment"
    )
