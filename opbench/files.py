"""File helpers every writer and reader shares: atomic writes (temp file + rename), removal, reading JSON,
checksums of files and folders, spreadsheet-safe CSV, and checks that a folder can be written."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from opbench.errors import OpbenchError


def temp_beside(path: Path) -> Path:
    """A hidden temporary name next to `path` (same folder, so a rename is atomic), unique to this process."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")


def atomic_write_text(path: Path, text: str) -> None:
    replace_together({path: text})


def replace_together(files: dict[Path, str]) -> None:
    """Write every file to a temporary name first, then rename each into place: a failure while writing
    (a full disk, a folder in the way) leaves every existing file as it was and no temporary file behind."""
    temps = {path: temp_beside(path) for path in files}
    try:
        for path, text in files.items():
            temps[path].write_text(text, encoding="utf-8")
        for path, tmp in temps.items():
            os.replace(tmp, path)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)


def remove(path: Path) -> None:
    """Delete a file or a whole folder (an .mlpackage); nothing if it is not there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


MAX_JSON_BYTES = 64 * 2**20  # a result file of a full run is about 2 MB; anything far larger is not one


def read_json(path: Path | str, what: str = "file") -> object:
    """Parsed JSON; OpbenchError naming the path when it cannot be read, is too large or too deeply nested, is not
    JSON, or holds NaN or Infinity (not JSON, though Python's parser accepts them)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise OpbenchError(
                f"{path}: {size / 2**20:.0f} MB is larger than a {what} can be ({MAX_JSON_BYTES >> 20} MB)"
            )
        return parse_json(path.read_text())
    except OSError as exc:
        raise OpbenchError(f"{path}: cannot read the {what}: {exc.strerror}") from exc
    except RecursionError as exc:
        raise OpbenchError(f"{path}: nested too deeply to be a {what}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise OpbenchError(f"{path}: not JSON ({short(str(exc))})") from exc


def parse_json(text: str) -> object:
    """json.loads refusing NaN and Infinity (ValueError); RecursionError when nested too deeply."""
    return json.loads(text, parse_constant=_no_constant)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def short(text: str, limit: int = 300) -> str:
    """At most `limit` characters of a message or a quoted value, saying how much was left out."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def tree_sha256(path: Path | str) -> str:
    """sha256 of a file, or of every file under a folder (an .mlpackage) by relative path, in sorted order."""
    path = Path(path)
    if path.is_file():
        return _file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        digest.update(_file_sha256(file).encode() + b"\n")
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# OWASP's CSV-injection rule: a cell starting with one of these is run as a formula by spreadsheet programs
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def spreadsheet_safe(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, with a leading ' (shown as text); all else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(table) -> str:
    """A pandas DataFrame as CSV text without its index, every text cell made spreadsheet-safe.

    Every CSV opbench writes goes through here. Lines end in CRLF (RFC 4180), so that a cell holding a carriage
    return is quoted too (with a bare newline as line end, the csv module leaves a lone CR unquoted)."""
    return table.map(spreadsheet_safe).to_csv(index=False, lineterminator="\r\n")


def ensure_folder(path: Path | str, what: str = "folder") -> Path:
    """The folder, created with its parents if needed; OpbenchError when a file is in the way or it cannot be made."""
    path = Path(path)
    check_folder(path, what)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OpbenchError(f"{what} {path}: cannot create it: {exc.strerror or exc}") from exc
    return path


def check_folder(path: Path | str, what: str = "folder") -> None:
    """OpbenchError unless `path` is a writable folder or could be created (creates nothing)."""
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == path else f" ({existing} is a file)"
        raise OpbenchError(f"{what} {path} is not a folder{where}: name a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OpbenchError(f"{what} {path}: {existing} is not writable")
