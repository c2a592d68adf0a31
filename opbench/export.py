"""`opbench export`: every selected case as a file another device can run, a manifest and a measurement template.

The artifacts come from the same cache the backends use (a second export converts nothing), are copied to
the out folder (default exports/<format>/) and listed in manifest.json with their input and output, MACs and
a checksum; a case the converter cannot handle is listed as unsupported with the converter's message.
template.csv has one row per exported package for the numbers measured on the device (`opbench import`); a format
with a device script (a shell script that measures every package) gets it beside them.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TextIO

from opbench import __version__
from opbench.backends import ExportFormat
from opbench.cache import Artifact, ArtifactCache
from opbench.case import Case
from opbench.errors import OpbenchError, UnsupportedCase, error_text, first_line
from opbench.files import atomic_write_text, csv_text, ensure_folder, read_json, remove, temp_beside, tree_sha256

MANIFEST_SCHEMA = "opbench-export/1"
MANIFEST = "manifest.json"
TEMPLATE = "template.csv"
# what the user fills in (times in milliseconds), then two columns written by the export: leave them as they are
FILL_COLUMNS = ("median_ms", "compute_unit", "mean_ms", "min_ms", "max_ms", "runs")
TEMPLATE_COLUMNS = ("case", *FILL_COLUMNS, "file", "sha256")
DEFAULT_OUT = Path("exports")


def manifest_checksum(manifest: dict) -> str:
    """sha256 of the manifest's canonical JSON without its own `checksum`: any edit changes it."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def export_cases(
    cases: list[Case],
    fmt: ExportFormat,
    out_dir: Path | str,
    cache: ArtifactCache,
    grid: str = "default",
    log: TextIO | None = None,
) -> dict:
    """Export every case (cached), copy the artifacts to out_dir, write manifest.json and template.csv. A cold case
    (Case.weights) is left out: its package is its hot twin's, and a device's tool times one package, hot."""
    cases = [c for c in cases if c.weights == "hot"]
    log = log or sys.stderr
    out_dir = ensure_folder(out_dir, "export folder")
    previous = _previous_entries(out_dir / MANIFEST)
    entries = []
    for index, case in enumerate(cases, start=1):
        start = time.perf_counter()
        entry, how = _export_one(case, fmt, out_dir, cache)
        entries.append(entry)
        line = f"[{index}/{len(cases)}] {case.id} {how} ({time.perf_counter() - start:.1f} s)"
        if entry["reason"]:
            line += ": " + first_line(entry["reason"], 160)
        print(line, file=log, flush=True)
    # packages of an earlier export to this folder that this one does not list
    current = {e["file"] for e in entries}
    for old in previous.values():
        file = old.get("file")
        if isinstance(file, str) and file == Path(file).name and file not in current:
            remove(out_dir / file)
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "format": fmt.name,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "opbench": __version__,
        "grid": grid,
        "options": fmt.options,
        "versions": fmt.versions,
        "entries": entries,
    }
    manifest["checksum"] = manifest_checksum(manifest)
    kept = _keep_measured_manifest(out_dir, entries)
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    template = write_template(manifest, out_dir)
    for name, make in fmt.device_files.items():  # the script that measures the packages on the device
        atomic_write_text(out_dir / name, make(manifest))
        (out_dir / name).chmod(0o755)
        print(f"measure them on the device with {out_dir / name}", file=log)
    if template.name != TEMPLATE:
        print(f"{out_dir / TEMPLATE} holds measurements: left as it is; the new template is {template}", file=log)
    if kept:
        print(f"its packages changed since: import it with --manifest {kept}", file=log)
    return manifest


def _keep_measured_manifest(out_dir: Path, entries: list[dict]) -> Path | None:
    """Before a filled template's manifest is replaced by one with other packages, keep it for `opbench import`."""
    old = out_dir / MANIFEST
    if not (old.exists() and (out_dir / TEMPLATE).exists() and _has_measurements(out_dir / TEMPLATE)):
        return None
    now = {e["case"]: e.get("sha256") for e in entries}
    if all(now.get(case) == entry.get("sha256") for case, entry in _previous_entries(old).items()):
        return None  # every package of the old manifest is still there, unchanged
    try:
        kept = out_dir / f"manifest.{json.loads(old.read_text())['checksum'][:12]}.json"
    except (OSError, ValueError, KeyError, TypeError):
        return None
    shutil.copy2(old, kept)
    return kept


def _export_one(case: Case, fmt: ExportFormat, out_dir: Path, cache: ArtifactCache):
    entry = {"case": case.id, "status": "ok", "file": None, "reason": ""}
    try:
        artifact = fmt.artifact(case, cache)
        info = _artifact_info(case, artifact, fmt)
    except UnsupportedCase as exc:
        costs = case.costs
        entry.update(status="unsupported", reason=str(exc), macs=costs.macs, param_count=costs.param_count)
        entry.update(fingerprint=case.fingerprint)
        return entry, "unsupported"
    file = case.slug + fmt.suffix
    dest = out_dir / file
    # the package already in the out folder is re-hashed, never trusted: a damaged or different one is replaced
    sha256 = tree_sha256(dest) if dest.exists() else None
    if sha256 != artifact.sha256:
        _copy(artifact.path, dest)
        sha256 = tree_sha256(dest)
        if sha256 != artifact.sha256:
            raise OpbenchError(
                f"{dest}: the copy differs from the cached {artifact.path}; check the disk, export again"
            )
    entry.update(file=file, **info)
    entry.update(sha256=sha256, fingerprint=case.fingerprint)  # the checksum of the package in the out folder
    how = "cached" if artifact.cache_hit else "exported"
    return entry, how + (f" ({artifact.repaired})" if artifact.repaired else "")


def _artifact_info(case: Case, artifact: Artifact, fmt: ExportFormat) -> dict:
    """Input, output (read back from the artifact) and MACs, kept beside the cached artifact."""
    sidecar = artifact.path.with_name(artifact.path.name + ".info.json")
    if sidecar.exists() and not artifact.repaired:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(sidecar.read_text())
    try:
        io = fmt.describe(artifact.path)
    except Exception as exc:  # a package the converter wrote but its own reader rejects is not usable
        raise UnsupportedCase(f"written but cannot be read back: {error_text(exc)}") from exc
    costs = case.costs
    info = {**io, "macs": costs.macs, "param_count": costs.param_count}
    atomic_write_text(sidecar, json.dumps(info))
    return info


def _previous_entries(path: Path) -> dict[str, dict]:
    try:
        return {e["case"]: e for e in json.loads(path.read_text()).get("entries", [])}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return {}


def write_template(manifest: dict, out_dir: Path) -> Path:
    """template.csv: one row per exported artifact, the measurement columns empty.

    A template.csv that already holds measurements is never overwritten: the new one goes to template.new.csv.
    """
    import pandas as pd

    path = out_dir / TEMPLATE
    if path.exists() and _has_measurements(path):
        path = out_dir / "template.new.csv"
    rows = [
        {"case": e["case"], "file": e["file"], "sha256": e["sha256"]}
        for e in manifest["entries"]
        if e["status"] == "ok"
    ]
    atomic_write_text(path, csv_text(pd.DataFrame(rows, columns=list(TEMPLATE_COLUMNS))))
    return path


def _has_measurements(path: Path) -> bool:
    try:
        with path.open(newline="") as f:
            return any((row.get("median_ms") or "").strip() for row in csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return True  # unreadable: not ours to overwrite


def load_manifest(path: Path | str) -> dict:
    """A manifest written by `opbench export`, its checksum verified; OpbenchError when it is not one or was edited."""
    manifest = read_json(path, "manifest")
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise OpbenchError(f"{path}: not an opbench export manifest (no schema {MANIFEST_SCHEMA!r})")
    if manifest.get("checksum") != manifest_checksum(manifest):
        raise OpbenchError(
            f"{path}: manifest checksum does not match its content: the file was edited or damaged; "
            "export again (`opbench export`) and measure the packages it lists"
        )
    return manifest


def _copy(src: Path, dest: Path) -> None:
    tmp = temp_beside(dest)
    remove(tmp)
    if src.is_dir():
        shutil.copytree(src, tmp)
    else:
        shutil.copy2(src, tmp)
    remove(dest)
    os.replace(tmp, dest)
