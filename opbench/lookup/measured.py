"""The measured table a prediction reads: one (device, backend)'s results, the run that timed the blocks and the
models together winning.

A table and models timed in different runs can be half an hour apart on a machine whose speed moved by up to 50%
in between, so by default the newest run holding both the block table and the models for the (device, backend) is
laid over the others (each case's latest result fills what it lacks, e.g. the per-call floor timed in another run);
`run` chooses another run. Without a run holding both, each case's latest result is used, and the note says so.
`opbench predict` and `opbench slim` read it from result files, the report's prediction validation from the runs it
judges: both validate the same table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from opbench.errors import OpbenchError
from opbench.lookup.table import cold_id
from opbench.plan import Predictions
from opbench.results import Result, Run, load_runs, slugify
from opbench.verdict import Measured


@dataclass(frozen=True)
class MeasuredTable:
    data: dict[str, Measured]  # case id -> its result on the (device, backend)
    run_id: str | None  # the run laid over the others; None: each case's latest result
    note: str  # one line: which run the table and the models came from


def _holds(run: Run, backend: str, cases: set[str]) -> bool:
    return any(r.ok and r.backend == backend and r.case in cases for r in run.results)


def measured_table(
    paths: Iterable[Path | str], device: str, backend: str, extra: Predictions, suite: str, run: str | None = None
) -> MeasuredTable:
    """Every result of one (device, backend) under the paths (see laid_over); a failed or unsupported one is kept
    with its reason, so that a prediction that needs it says why it is missing. `run`: the run id (or its start)
    to lay over the others."""
    runs = [r for r in load_runs(paths) if r.source != "reference"]
    wanted = slugify(device) if any(ch.isalnum() for ch in device) else device
    runs = [r for r in runs if device in (r.device.name, r.device.slug) or r.device.slug == wanted]
    if not runs:
        raise OpbenchError(f"no results for device {device!r}; measure there first (make bench) or check the name")
    measured_here = sorted({r.backend for run in runs for r in run.results})
    if backend not in measured_here:
        raise OpbenchError(
            f"no results for backend {backend!r} on {device!r}; measured there: {', '.join(measured_here) or 'none'}"
        )
    found = laid_over(runs, backend, extra, run)
    blocks = {b for m in extra.models for b, _ in m.blocks}
    if not any(found.data.get(b) is not None and found.data[b].ok for b in blocks):
        raise OpbenchError(
            f"no block lookup table for {device!r} / {backend!r}: run the {suite} suite there "
            f'(make bench ARGS="--opbench-suites {suite} --opbench-backends {backend}")'
        )
    return found


def laid_over(runs: Iterable[Run], backend: str, extra: Predictions, run: str | None = None) -> MeasuredTable:
    """One device's runs as one table for `backend`: each case's latest result (an ok one before a later failure),
    with the newest run that holds both the block table and the models (or the run `run` names) laid over it."""
    runs = sorted(runs, key=lambda r: r.created)
    blocks = {b for m in extra.models for b, _ in m.blocks}
    models = {m.case for m in extra.models}
    chosen = _chosen(runs, backend, blocks, models, run)
    latest: dict[str, tuple[str, Result]] = {}
    for r_run in runs:
        for r in r_run.results:
            earlier = latest.get(r.case)
            if r.backend == backend and r.replaces(earlier and earlier[1]):
                latest[r.case] = (r_run.run_id, r)
    if chosen is not None:
        latest.update({r.case: (chosen.run_id, r) for r in chosen.results if r.backend == backend})
    table = {case: Measured.of(r, run_id) for case, (run_id, r) in latest.items()}
    return MeasuredTable(table, chosen.run_id if chosen else None, _note(table, chosen, blocks, models))


def _chosen(runs: list[Run], backend: str, blocks: set[str], models: set[str], run: str | None) -> Run | None:
    if run is not None:
        found = [r for r in runs if r.run_id.startswith(run) and any(x.backend == backend for x in r.results)]
        if len(found) != 1:
            known = ", ".join(r.run_id for r in runs if any(x.backend == backend for x in r.results))
            which = "several runs match" if found else "no run matches"
            raise OpbenchError(f"--run {run!r}: {which} on this device/backend; runs there: {known}")
        return found[0]
    both = [r for r in runs if _holds(r, backend, blocks) and _holds(r, backend, models)]
    return both[-1] if both else None


def _note(table: dict[str, Measured], chosen: Run | None, blocks: set[str], models: set[str]) -> str:
    if chosen is None:
        return "no run holds both the block table and the models here: each case's latest result is used"
    wanted = blocks | models | {cold_id(b) for b in blocks}
    used = [m for c, m in table.items() if c in wanted]
    other = sum(m.run_id != chosen.run_id for m in used)
    return f"table and models from run {chosen.run_id} ({chosen.created})" + (
        f"; {other} of {len(used)} entries from other runs (absent from it)" if other else ""
    )
