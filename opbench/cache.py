"""On-disk cache of exported artifacts, keyed by what the case computes, the exporter and its versions.

A second run exports nothing: not the artifacts that worked, and not the ones that failed (the
exporter's message is cached beside them, so an unsupported case stays cheap to report).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opbench.case import Case
from opbench.errors import UnsupportedCase
from opbench.files import atomic_write_text, remove, temp_beside

DEFAULT_ROOT = Path(os.environ.get("OPBENCH_CACHE", ".opbench_cache"))


@dataclass(frozen=True)
class Artifact:
    path: Path
    cache_hit: bool
    export_s: float  # time spent exporting in this process; 0 on a cache hit


class ArtifactCache:
    def __init__(self, root: Path | str = DEFAULT_ROOT):
        self.root = Path(root)

    def path_for(self, case: Case, kind: str, key: dict, suffix: str) -> Path:
        digest = hashlib.sha256(json.dumps({"case": case.fingerprint, **key}, sort_keys=True).encode()).hexdigest()
        return self.root / kind / f"{case.slug}-{digest[:16]}{suffix}"

    def get_or_create(self, case: Case, kind: str, key: dict, suffix: str, create: Callable[[Path], None]) -> Artifact:
        """The cached artifact, or create(tmp_path) then an atomic rename; an export error is cached too.

        Raises UnsupportedCase with the exporter's message when this export failed now or before.
        """
        path = self.path_for(case, kind, key, suffix)
        failure = path.with_name(path.name + ".unsupported.txt")
        if path.exists():
            return Artifact(path, True, 0.0)
        if failure.exists():
            raise UnsupportedCase(failure.read_text())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_beside(path)  # keeps the suffix: exporters check it
        remove(tmp)  # left over by a killed run with the same pid
        start = time.perf_counter()
        try:
            create(tmp)
        except Exception as exc:  # any exporter failure makes the case unsupported on this backend
            remove(tmp)
            message = f"{type(exc).__name__}: {exc}".strip()
            atomic_write_text(failure, message)
            raise UnsupportedCase(message) from exc
        elapsed = time.perf_counter() - start
        try:
            os.replace(tmp, path)  # atomic for a file and for a directory (an .mlpackage) alike
        except OSError:
            if not path.exists():
                raise
            remove(tmp)  # another process exported the same directory first; a directory cannot replace it
        return Artifact(path, False, elapsed)
