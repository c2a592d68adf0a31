"""The block lookup table: every distinct block of the zoo's models and of the slimming search space's probes, as
cases of the suite that times them, with each model's block sequence.

Each block is timed hot (weights in cache, as a benchmark loop leaves them) and, where the suite times it so, cold
(its twin `cold_id(id)`: weights from memory, as inside a model after the other blocks evicted them).

The decomposition takes about ten seconds (a forward of every model on the meta device), so it is kept in the
artifact cache under a hash of opbench's own source files: any change to a model or to the decomposition derives it
again.
"""

from __future__ import annotations

import functools

from opbench.cache import DEFAULT_ROOT
from opbench.case import COLD_SUFFIX
from opbench.lookup.decompose import Source, Table, build_table, source_hash
from opbench.lookup.space import probe_sources
from opbench.zoo import ZOO


def cold_id(hot_id: str) -> str:
    """The case id of a block's cold twin (its weights cold: each call on another copy, Case.cold), beside the hot
    one (the suffix is spelled once, in opbench.case)."""
    return hot_id + COLD_SUFFIX


def is_cold(case_id: str) -> bool:
    return case_id.endswith(COLD_SUFFIX)


def zoo_sources() -> list[Source]:
    return [Source(name, m.family, m.factory, m.input_shape) for name, m in ZOO.items()]


@functools.cache
def table(suite: str) -> Table:
    """The zoo's blocks and the search space's, one entry per distinct block, as cases of `suite`."""
    remembered = DEFAULT_ROOT / "lookup" / f"decomposition-{source_hash()}.json"
    return build_table([*zoo_sources(), *probe_sources()], suite, remembered)
