"""On-disk cache of exported artifacts, keyed by what the case computes, the exporter and its versions.

A second run exports nothing: not the artifacts that worked, and not the ones that failed (the
exporter's message is cached beside them, so an unsupported case stays cheap to report).

Each artifact has a checksum beside it (`<artifact>.sha256`: sha256 of the file, or of the folder's files
for an .mlpackage or an IR folder), written when it is created and checked whenever it is used. An artifact
that does not match (truncated, edited, half-deleted) is evicted and exported again, and the artifact says so
(`repaired`, which the backends put in the result's `info` as `cache_repaired`). An artifact without a
checksum (written by an opbench before checksums, or by a run killed between the two writes) cannot be
trusted either: it is exported again the same way.

Several processes share the cache (pytest-xdist workers, the export-ahead pool, two runs side by side), and two
backends often need the same artifact (ort-cpu and ort-cpu-noopt the same ONNX file): each artifact is looked up
and created under an exclusive file lock (`<artifact>.lock`), so a second process waits for the first export and
then finds a finished, checksummed artifact instead of a half-written one (or one it would evict as unchecked).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from opbench.case import Case
from opbench.errors import UnsupportedCase, error_text
from opbench.files import atomic_write_text, remove, temp_beside, tree_sha256

DEFAULT_ROOT = Path(os.environ.get("OPBENCH_CACHE", ".opbench_cache"))


@dataclass(frozen=True)
class Artifact:
    path: Path
    cache_hit: bool
    export_s: float  # time spent exporting in this process; 0 on a cache hit
    sha256: str = ""  # of the artifact as it is now (checked against its sidecar on a hit)
    repaired: str | None = None  # what was wrong with the cached copy that this export replaced

    @property
    def info(self) -> dict:
        """What a result's `info` should say about the cache: {"cache_repaired": why} after a repair, else {}."""
        return {"cache_repaired": self.repaired} if self.repaired else {}


def checksum_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def repair_note(path: Path) -> Path:
    return path.with_name(path.name + ".repaired.txt")


class ArtifactCache:
    """`pass_on_repairs` (the export-ahead workers): a repair is also written beside the artifact
    (`<artifact>.repaired.txt`), and the next process to use it takes the note, so that the timed run's result says
    `cache_repaired` although a worker made the repair."""

    def __init__(self, root: Path | str = DEFAULT_ROOT, pass_on_repairs: bool = False):
        self.root = Path(root)
        self.pass_on_repairs = pass_on_repairs

    def path_for(self, case: Case, kind: str, key: dict, suffix: str) -> Path:
        digest = hashlib.sha256(json.dumps({"case": case.fingerprint, **key}, sort_keys=True).encode()).hexdigest()
        return self.root / kind / f"{case.slug}-{digest[:16]}{suffix}"

    def get_or_create(self, case: Case, kind: str, key: dict, suffix: str, create: Callable[[Path], None]) -> Artifact:
        """The cached artifact (checksum verified), or create(tmp_path) then an atomic rename; an export error is
        cached too. A damaged cached artifact is evicted and created again.

        Raises UnsupportedCase with the exporter's message when this export failed now or before.
        """
        path = self.path_for(case, kind, key, suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(path.with_name(path.name + ".lock")):
            return self._get_or_create(path, create)

    def _get_or_create(self, path: Path, create: Callable[[Path], None]) -> Artifact:
        failure = path.with_name(path.name + ".unsupported.txt")
        repaired = None
        if path.exists():
            actual, problem = verify(path)
            if problem is None:
                return Artifact(path, True, 0.0, actual, _take(repair_note(path)))
            repaired = problem
            remove(path)
            remove(checksum_file(path))
            remove(repair_note(path))
        elif failure.exists():
            raise UnsupportedCase(failure.read_text())
        tmp = temp_beside(path)  # keeps the suffix: exporters check it
        remove(tmp)  # left over by a killed run with the same pid
        start = time.perf_counter()
        try:
            create(tmp)
        except Exception as exc:  # any exporter failure makes the case unsupported on this backend
            remove(tmp)
            message = error_text(exc)
            atomic_write_text(failure, message)
            raise UnsupportedCase(message) from exc
        elapsed = time.perf_counter() - start
        os.replace(tmp, path)  # atomic for a file and for a directory (an .mlpackage) alike
        actual = tree_sha256(path)
        atomic_write_text(checksum_file(path), actual + "\n")  # after the rename: a kill in between means no checksum
        if repaired and self.pass_on_repairs:
            atomic_write_text(repair_note(path), repaired)
        return Artifact(path, False, elapsed, actual, repaired)


def _take(note: Path) -> str | None:
    """The note's text, removing it (it is told once); None when there is none."""
    try:
        text = note.read_text()
    except OSError:
        return None
    note.unlink(missing_ok=True)
    return text


def verify(path: Path) -> tuple[str, str | None]:
    """(sha256 of the artifact, None) when it matches its checksum file, else ("", what is wrong with it)."""
    try:
        expected = checksum_file(path).read_text().strip()
    except OSError:
        return "", f"{path.name} had no checksum (a cache from an older opbench): exported again"
    try:
        actual = tree_sha256(path)
    except OSError as exc:
        return "", f"{path.name} could not be read ({exc.strerror or exc}): exported again"
    if actual != expected:
        return "", f"{path.name} did not match its checksum (damaged or changed since export): exported again"
    return actual, None
