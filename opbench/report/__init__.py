"""`opbench report`: result files -> reports/index.html (self-contained) and the CSV tables behind it.

Presentation only: opbench.analysis.judge judges the runs; this package makes each table once (tables.py), the
page's view and the series its figures draw (page.py, extras.py), the figures (figures.py) and the files.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from opbench.analysis import judge as judging
from opbench.errors import OpbenchError
from opbench.files import csv_text, ensure_folder, replace_together
from opbench.report import tables as tabling
from opbench.report.page import page
from opbench.results import DEFAULT_DIR

DEFAULT_OUT = Path("reports/index.html")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def render(
    paths: Iterable[Path | str] = (DEFAULT_DIR,),
    out: Path | str = DEFAULT_OUT,
    devices: list[str] | None = None,
    backends: list[str] | None = None,
    baseline: str | None = None,
    skip_invalid: bool = False,
    progress: bool = True,
    warn: Callable[[str], None] = _stderr,
) -> Path:
    """Load, select, judge, draw and write the report; returns the HTML file's path.

    Every table and the prediction validation are made once, then shared by the CSV files and the page. Every file
    of the report is made before any is written, then all are replaced together: a failure on the way leaves the
    previous report as it was."""
    inputs = judging.load_inputs(paths, skip_invalid, warn)
    inputs = judging.select(inputs, devices, backends)
    judged = judging.judge(inputs)
    base = tabling.baseline_target(judged.targets, baseline)
    out = Path(out)
    folder = ensure_folder(out.parent, "report folder")
    if out.is_dir():
        raise OpbenchError(f"{out} is a folder: name the HTML file to write, e.g. {out / DEFAULT_OUT.name}")
    validations = judging.validate_predictions(judged)
    tables = tabling.make(judged, base, validations)
    files = {folder / name: csv_text(frame) for name, frame in tables.csv_files().items()}
    files[out] = page(judged, tables, validations, base, folder, progress)
    replace_together(files)
    return out
