"""Which cases are timed together, and in what order within a round.

A comparison's ratio is only as steady as the machine between its two sides' samples: timed in separate tenths of a
second, the machine's drift between those tenths lands in the ratio. So the cases a suite compares form a group (the
connected components of its comparisons among the selected cases: a baseline with every candidate that shares it),
timed in one window, call by call, each round calling every member once.

The same holds between suites: the items of a run go pass after pass (`sequence`), and suites a suite names in
Suite.same_window run in the same passes when both are selected, so a table and the models it predicts share the
machine's state.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from opbench.case import Case
from opbench.plan import Plan
from opbench.suite import Suite


@dataclass(frozen=True)
class Group:
    """Cases timed in one window, in the order a pass runs them; a case in no comparison is a group of one."""

    members: tuple[Case, ...]

    @property
    def id(self) -> str:
        """The first member's id, with how many others share its window: obs2/stage/meta3d/c448_h7_d4+1."""
        first = self.members[0].id
        return first if len(self.members) == 1 else f"{first}+{len(self.members) - 1}"

    @property
    def suite(self) -> str:
        return self.members[0].suite

    def window(self, backend: str) -> str:
        """The name of this group's window on a backend (Stats.window): the same for every member."""
        return f"{self.id} [{backend}]"


def groups(plan: Plan, selected: Sequence[Case]) -> list[Group]:
    """Every selected case in exactly one group: the connected components of the plan's comparisons whose two
    sides are both selected, members and groups in the plan's run order (a case the plan lacks comes last)."""
    chosen = {c.id for c in selected}
    order = list({c.id: c for c in [*plan.run_order(), *selected] if c.id in chosen}.values())
    index = {c.id: i for i, c in enumerate(order)}
    edges = [
        (index[c.baseline.id], index[c.candidate.id])
        for c in plan.comparisons
        if {c.baseline.id, c.candidate.id} <= chosen
    ]
    rows, cols = np.array([a for a, _ in edges], dtype=int), np.array([b for _, b in edges], dtype=int)
    graph = coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(len(order), len(order)))
    _, labels = connected_components(graph, directed=False)
    components: dict[int, list[Case]] = {}
    for case, label in zip(order, labels, strict=True):
        components.setdefault(int(label), []).append(case)
    return [Group(tuple(members)) for members in components.values()]


def round_orders(members: int) -> Iterator[tuple[int, ...]]:
    """The order of the members' calls in each round, endlessly: round i rotates them by i // 2 and reverses every
    odd round, so over 2 x members rounds each member goes first twice and takes every position equally often (two
    members: AB BA BA AB ...). Fixed, so a window can be replayed."""
    for i in itertools.count():
        turn = (i // 2) % members
        order = tuple(range(turn, members)) + tuple(range(turn))
        yield order[::-1] if i % 2 else order


@dataclass(frozen=True)
class Slot:
    """Where one timed item stands: its suite, backend, pass (1-based) and rank in its suite's Plan.run_order."""

    suite: str
    backend: str
    pass_index: int
    rank: int  # -1 for a case the plan lacks


def anchors(keys: Sequence[str], suites: Mapping[str, Suite], grid: str) -> dict[str, str | None]:
    """Each selected suite -> the by_backend suite whose schedule it runs in (itself when scheduled by_backend), or
    None (interleaved). A suite and the selected suites of its same_window run in one schedule: the first
    by_backend one's, when one of them is scheduled by_backend."""
    found: dict[str, str | None] = {k: k if suites[k].schedule_for(grid) == "by_backend" else None for k in keys}
    for key in keys:
        joined = [key, *(k for k in suites[key].same_window if k in found)]
        lead = next((k for k in keys if k in joined and found[k] == k), None)
        if lead is not None:
            found.update(dict.fromkeys(joined, lead))
    return found


def sequence(slots: Sequence[Slot], suites: Mapping[str, Suite], grid: str) -> list[int]:
    """The order the items run in, as indices into `slots`. Interleaved suites first: pass after pass, each pass by
    suite (in the order the slots name them), backend and rank. Then each by_backend schedule (anchors), backend by
    backend, all passes of one backend before the next, the suites drawn into it side by side within each pass.
    Ranks are reversed in every even pass (the two sides of a comparison take turns going first), and so is the
    order of the suites within a pass of a joined schedule."""
    keys = list(dict.fromkeys(s.suite for s in slots))
    backends = list(dict.fromkeys(s.backend for s in slots))
    anchor = anchors(keys, suites, grid)

    def position(i: int) -> tuple[int, ...]:
        slot = slots[i]
        turn = 1 if slot.pass_index % 2 else -1
        suite, backend = keys.index(slot.suite), backends.index(slot.backend)
        if (lead := anchor[slot.suite]) is not None:
            return (1, keys.index(lead), backend, slot.pass_index, suite * turn, slot.rank * turn)
        return (0, slot.pass_index, suite, backend, slot.rank * turn, 0)

    return sorted(range(len(slots)), key=position)
