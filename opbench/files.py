"""File helpers every writer and reader shares: atomic writes (temp file + rename), removal, reading JSON."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from opbench.errors import OpbenchError


def temp_beside(path: Path) -> Path:
    """A hidden temporary name next to `path` (same folder, so a rename is atomic), unique to this process."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")


def atomic_write_text(path: Path, text: str) -> None:
    tmp = temp_beside(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def remove(path: Path) -> None:
    """Delete a file or a whole folder (an .mlpackage); nothing if it is not there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def read_json(path: Path | str, what: str = "file") -> object:
    """Parsed JSON; OpbenchError naming the path when it cannot be read or is not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise OpbenchError(f"{path}: cannot read the {what}: {exc.strerror}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise OpbenchError(f"{path}: not JSON ({exc})") from exc
