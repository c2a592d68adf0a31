"""Timing a case with its weights cold and its activations warm, as a block runs inside a model.

A block timed alone is called again and again, so its weights stay in the cache; inside a model the other blocks
evict them and they come from memory (oneDNN's `--cold-cache=wei`, XNNPACK's rotated weight copies). So a cold
case is prepared N times (N separate `Backend.prepare` results of its hot twin: N modules, sessions or compiled
programs, the same weights), and each timed call goes to the next copy in turn: by the time a copy runs again, the
others' weights have gone through the cache. N is enough copies for their weights together to exceed twice the
last-level cache, at least MIN_COPIES and at most MAX_COPIES (which bounds the preparation time), so the copies
hold at most max(4 x LLC, MIN_COPIES x one copy). A small block may not reach twice the cache under the cap; the
record (results.ColdWeights) says so.

What the copies share: each is its own `prepare` (its own module, ORT session, OpenVINO Core and compiled model,
ExecuTorch method), told which copy it is (RunConfig.copy: torch-inductor compiles a module per copy instead of
reusing the one it keeps in the process), so weights a runtime repacks are each copy's own. Each copy also binds its
own input, so an input larger than a share of the cache is colder than in a model (where it is the previous block's
output, just written).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from opbench.backends.base import Prepared

CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")
FALLBACK_LLC_BYTES = 32 * 2**20  # when sysfs says nothing: the size of this project's machine's L3
MIN_COPIES = 2  # every call on another copy, however large one copy is
MAX_COPIES = 64
COLD_FACTOR = 2  # the copies' weights together at least this many times the last-level cache
# calls of every copy when its context is entered, before any is timed: a runtime's first calls on a session
# allocate and first-touch its buffers (ONNX Runtime's arena), which a window's few warm-up rounds, each on one copy,
# leave undone for most of 64 copies (an EfficientFormer c96 56x56 block timed 39 ms cold against 2.8 ms hot)
WARM_CALLS = 2
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


@dataclass(frozen=True)
class LastLevelCache:
    bytes: int
    source: str  # the sysfs file read, or the fallback and why


def parse_size(text: str) -> int:
    """sysfs's cache size ('32768K', '1M', '512') in bytes; ValueError for anything else."""
    found = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, re.IGNORECASE)
    if not found or int(found[1]) <= 0:
        raise ValueError(f"not a cache size: {text!r}")
    return int(found[1]) * _UNITS[found[2].upper()]


def last_level_cache(root: Path = CACHE_DIR) -> LastLevelCache:
    """The level-3 cache of cpu0 (the largest data or unified cache when there is no level 3), read from sysfs;
    FALLBACK_LLC_BYTES with the reason when no size there can be read."""
    found = []
    for index in sorted(root.glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level, size = int((index / "level").read_text()), parse_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if kind != "Instruction":
            found.append((level == 3, size, str(index / "size")))
    if not found:
        return LastLevelCache(FALLBACK_LLC_BYTES, f"fallback {FALLBACK_LLC_BYTES // 2**20} MiB: no readable cache "
                                                  f"size under {root}")  # fmt: skip
    _, size, source = max(found)
    return LastLevelCache(size, source)


def copies_needed(weight_bytes: int, llc_bytes: int, most: int = MAX_COPIES) -> int:
    """How many copies hold COLD_FACTOR x the cache between them, from MIN_COPIES to `most`; MIN_COPIES for a case
    without weights (nothing to make cold)."""
    if weight_bytes <= 0:
        return MIN_COPIES
    wanted = math.ceil(COLD_FACTOR * llc_bytes / weight_bytes)
    return max(MIN_COPIES, min(most, wanted))


def protocol(llc: LastLevelCache | None = None) -> dict:
    """How a run times its cold cases, for its result file's protocol (each cold result records its own copies)."""
    llc = llc or last_level_cache()
    return {
        "copies": f"ceil({COLD_FACTOR} x llc_bytes / a copy's weight bytes), from {MIN_COPIES} to {MAX_COPIES}",
        "llc_bytes": llc.bytes,
        "llc_source": llc.source,
        "calls": (
            f"round-robin: each timed call on the next copy; every copy checked and called {WARM_CALLS} times before "
            "the first is timed; copies prepared again each pass"
        ),
    }


def rotation(copies: Sequence[Prepared]) -> Prepared:
    """One Prepared over the copies: `run` calls the next copy in turn (round-robin, one iterator step more per
    call), `context` enters every copy's context and calls each copy WARM_CALLS times, `infer` is the first copy's;
    so pytest-benchmark's loop and window.time_group time it unchanged, every copy warm. What the copies charged up
    front is summed; the first copy's info stays."""
    if not copies:
        raise ValueError("a rotation needs at least one copy")
    turns = itertools.cycle([c.run for c in copies])

    def run() -> object:
        return next(turns)()

    @contextlib.contextmanager
    def context() -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for c in copies:
                stack.enter_context(c.context())
            for _ in range(WARM_CALLS):
                for c in copies:
                    c.run()
            yield

    first = copies[0]
    export_s = sum(c.export_s for c in copies)
    return Prepared(run, first.infer, context, export_s, first.cache_hit, dict(first.info))
