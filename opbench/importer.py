"""`opbench import`: numbers measured on another device (a filled template.csv, or an opbench result file) into
device_results/<device-slug>/ with `source: import`.

Every row is checked against the export manifest before anything is written: known case ids with an exported
package, the package checksum the template carries, a positive latency in milliseconds, a known compute unit,
no case twice. A file with any error is rejected as a whole with every error listed by line; nothing under
device_results/ changes. The manifest's own checksum is verified first, so an edited manifest is refused too.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from opbench import __version__
from opbench.backends import EXPORT_FORMATS, DeviceUnits, device_units
from opbench.case import Case
from opbench.errors import OpbenchError
from opbench.export import DEFAULT_OUT, FILL_COLUMNS, MANIFEST, TEMPLATE_COLUMNS, load_manifest
from opbench.files import read_json, short, tree_sha256
from opbench.options import is_positive_finite
from opbench.results import DEFAULT_DIR, Device, Result, Stats, new_run, slugify, validate, write_run
from opbench.suite import select_cases

EXTRA_COLUMNS = ("notes",)  # allowed and ignored
TIME_UNITS = {"s": 1e3, "sec": 1e3, "ms": 1.0, "us": 1e-3, "µs": 1e-3, "μs": 1e-3, "ns": 1e-6}
NUMBER_WITH_UNIT = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Zµμ]+)$")
BACKEND_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass
class Problems:
    """Every error found in one file, each with where it is (a CSV line, a result index)."""

    source: str
    items: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def raise_if_any(self, shown: int = 20) -> None:
        if self.items:
            listed = "\n".join(f"  {short(item)}" for item in self.items[:shown])
            if len(self.items) > shown:
                listed += f"\n  ... and {len(self.items) - shown} more"
            raise OpbenchError(
                f"{self.source}: rejected, nothing imported ({len(self.items)} error"
                f"{'s' if len(self.items) != 1 else ''}):\n{listed}"
            )


def find_manifest(file: Path, manifest: Path | str | None) -> Path:
    """--manifest, else manifest.json beside the file, else exports/<format>/manifest.json."""
    if manifest:
        return Path(manifest)
    for candidate in (file.parent / MANIFEST, *(DEFAULT_OUT / name / MANIFEST for name in EXPORT_FORMATS)):
        if candidate.exists():
            return candidate
    raise OpbenchError(
        f"no export manifest beside {file} or under {DEFAULT_OUT}/: name the manifest.json of the export "
        "that was measured with --manifest PATH"
    )


def device_kind(name: str) -> str:
    lowered = name.lower()
    return "phone" if "iphone" in lowered else "tablet" if "ipad" in lowered else "device"


def import_file(
    file: Path | str,
    device: str,
    backend: str | None = None,
    manifest: Path | str | None = None,
    results_dir: Path | str = DEFAULT_DIR,
    kind: str | None = None,
    os_name: str | None = None,
    protocol: str | None = None,
) -> Path:
    """Validate the file against the manifest and write one result file; OpbenchError listing every error."""
    file = Path(file)
    if not file.is_file():
        raise OpbenchError(f"{file}: no such file")
    manifest_path = find_manifest(file, manifest)
    exported = load_manifest(manifest_path)
    is_json = file.suffix.lower() == ".json"
    units = device_units(exported.get("format", ""))
    # a result file names each result's backend; a template's rows take --backend (or the format's default)
    backend = _check_backend(backend, units, default=not is_json)
    slug = slugify(device)
    if slug == "reference" or "published" in slug.split("-"):
        raise OpbenchError(
            f"--device {device!r}: measurements are imported under the device they were taken on; published numbers "
            "live in device_results/reference/ and are not imported"
        )
    problems = Problems(str(file))
    if is_json:
        results, software = _from_json(file, exported, units, backend, problems)
    elif file.suffix.lower() in (".csv", ".txt"):
        results, software = _from_csv(file, exported, units, backend, problems), {}
    else:
        raise OpbenchError(f"{file}: import a filled template (.csv) or an opbench result file (.json)")
    _check_packages(results, exported, manifest_path.parent, problems)
    results = _attach_cases(results, exported, problems)
    problems.raise_if_any()
    if not results:
        raise OpbenchError(f"{file}: no measurements in it; fill median_ms for the packages you measured")
    protocol_info = {
        "method": protocol or "not stated",
        "imported_from": file.name,
        "manifest": str(manifest_path),
        "manifest_checksum": exported["checksum"],
        "export": exported.get("options", {}),
    }
    run = new_run(Device(device, slug, kind or device_kind(device), os=os_name), results, "import", protocol_info)
    run.software = {**exported.get("versions", {}), **software, "opbench": __version__}
    validate(run.to_json(), str(file))
    return write_run(run, results_dir)


def _check_backend(backend: str | None, units: DeviceUnits | None, default: bool) -> str | None:
    if units is not None and (backend or default):
        backend = backend or units.default_backend
        if backend not in units.by_backend:
            settings = ", ".join(f"{b} ({u})" for b, u in units.by_backend.items())
            raise OpbenchError(f"--backend {backend}: these packages are measured as one of {settings}")
    elif backend is not None and not BACKEND_NAME.match(backend):
        raise OpbenchError(f"--backend {backend!r}: use lower-case letters, digits, '.', '-' or '_'")
    return backend


# --- the filled template -------------------------------------------------------------------------------------


def _from_csv(
    file: Path, exported: dict, units: DeviceUnits | None, backend: str | None, problems: Problems
) -> list[Result]:
    entries = {e["case"]: e for e in exported.get("entries", [])}
    if backend is None:
        problems.add("command line", f"--backend is required for {exported.get('format')} measurements (the runtime)")
    try:
        text = file.read_text(encoding="utf-8-sig")  # a BOM from spreadsheet programs is fine
    except (OSError, UnicodeDecodeError) as exc:
        raise OpbenchError(f"{file}: cannot read as UTF-8 text: {exc}") from exc
    reader = csv.DictReader(text.splitlines())
    checksums = any(e.get("sha256") for e in entries.values())
    if not _check_header(reader.fieldnames or [], problems, ("case", "median_ms", *(("sha256",) if checksums else ()))):
        problems.raise_if_any()
    results, seen = [], {}
    for row in reader:
        where = f"line {reader.line_num}"
        if None in row:
            problems.add(where, f"more cells than columns ({len(reader.fieldnames or [])})")
        values = {k: (v or "").strip() for k, v in row.items() if isinstance(k, str) and k in TEMPLATE_COLUMNS}
        if not any(values.values()):
            continue  # a blank line
        case_id = values.get("case", "")
        if not case_id:
            problems.add(where, "no case id")
            continue
        if case_id in seen:
            problems.add(where, f"{case_id} is listed twice (first on line {seen[case_id]})")
            continue
        seen[case_id] = reader.line_num
        entry = entries.get(case_id)
        if entry is None:
            problems.add(where, f"unknown case {case_id!r}: not in the manifest ({len(entries)} cases)")
            continue
        if entry.get("status") != "ok":
            problems.add(where, f"{case_id} was not exported (unsupported), so it cannot have been measured")
            continue
        if entry.get("sha256") and not values.get("sha256"):
            problems.add(where, f"{case_id}: no sha256: keep the checksum the export wrote in each row")
        elif values.get("sha256") and values["sha256"] != entry.get("sha256"):
            problems.add(
                where,
                f"{case_id}: package checksum {values['sha256'][:12]}... is not the manifest's "
                f"{str(entry.get('sha256'))[:12]}...: this row belongs to a different export",
            )
        result = _row_result(values, entry, exported, units, backend, where, problems)
        if result:
            results.append(result)
    return results


WHY_REQUIRED = {"sha256": ": the manifest has a checksum per package, so the template's sha256 column must stay"}


def _check_header(columns: list[str], problems: Problems, required: tuple[str, ...]) -> bool:
    columns = [c.strip() if isinstance(c, str) else c for c in columns]
    if len(columns) == 1 and ";" in (columns[0] or ""):
        problems.add("line 1", "the columns are separated by ';': save the file as comma-separated CSV")
        return False
    good = True
    for column in required:
        if column not in columns:
            header = ", ".join(map(str, columns)) or "empty"
            problems.add("line 1", f"no {column!r} column{WHY_REQUIRED.get(column, '')} (the header is {header})")
            good = False
    for column in columns:
        if column in TEMPLATE_COLUMNS or column in EXTRA_COLUMNS:
            continue
        stem, _, unit = str(column).rpartition("_")
        if stem and unit.lower() in TIME_UNITS:
            problems.add("line 1", f"column {column!r}: times are in milliseconds, as {stem}_ms")
        else:
            allowed = ", ".join((*TEMPLATE_COLUMNS, *EXTRA_COLUMNS))
            problems.add("line 1", f"unknown column {column!r}; the template's columns are {allowed}")
        good = False
    if len(set(columns)) != len(columns):
        problems.add("line 1", "a column name appears twice")
        good = False
    return good


def _row_result(
    values: dict,
    entry: dict,
    exported: dict,
    units: DeviceUnits | None,
    backend: str | None,
    where: str,
    problems: Problems,
) -> Result | None:
    before = len(problems.items)
    times = {c: _milliseconds(values.get(c, ""), c, where, problems) for c in FILL_COLUMNS if c.endswith("_ms")}
    if not values.get("median_ms"):
        problems.add(where, f"{entry['case']}: median_ms is missing (delete the rows you did not measure)")
    runs = _runs(values.get("runs", ""), where, problems)
    unit = _compute_unit(values.get("compute_unit", ""), units, backend, where, problems)
    median, low, high, mean = times["median_ms"], times["min_ms"], times["max_ms"], times["mean_ms"]
    if median and ((low and low > median) or (high and high < median)):
        problems.add(where, f"min_ms <= median_ms <= max_ms does not hold ({low}, {median}, {high})")
    if mean and ((low and low > mean) or (high and high < mean)):
        problems.add(where, f"min_ms <= mean_ms <= max_ms does not hold ({low}, {mean}, {high})")
    if len(problems.items) > before or median is None:
        return None
    seconds = {c: times[c] / 1e3 if times[c] is not None else None for c in ("mean_ms", "min_ms", "max_ms")}
    stats = Stats(median / 1e3, seconds["mean_ms"], seconds["min_ms"], seconds["max_ms"], rounds=runs)
    options = exported.get("options", {})
    backend_options = {**options, "package": entry["file"], "package_sha256": entry["sha256"]}
    if unit:
        backend_options["compute_units"] = unit
    return Result(
        case=entry["case"],
        suite="",  # filled from opbench's case by _attach_cases
        backend=backend,
        backend_options=backend_options,
        backend_versions=exported.get("versions", {}),
        precision=options.get("precision", "float32"),
        stats=stats,
    )


def _milliseconds(text: str, column: str, where: str, problems: Problems) -> float | None:
    """A positive finite number of milliseconds; '1.6 ms' is accepted, other units are refused with the factor."""
    if not text:
        return None
    match = NUMBER_WITH_UNIT.match(text)
    if match:
        number, unit = match.groups()
        if unit.lower() != "ms":
            factor = TIME_UNITS.get(unit.lower()) or TIME_UNITS.get(unit)
            hint = f" ({text} = {float(number) * factor:g} ms)" if factor else ""
            problems.add(where, f"{column} {text!r} is not in milliseconds{hint}: write milliseconds, without a unit")
            return None
        text = number
    try:
        value = float(text)
    except ValueError:
        hint = "; use a dot as decimal separator" if re.fullmatch(r"\d+,\d+", text) else ""
        problems.add(where, f"{column} {text!r} is not a number{hint}")
        return None
    if not is_positive_finite(value):
        problems.add(where, f"{column} {text!r} must be a positive number of milliseconds")
        return None
    return value


def _runs(text: str, where: str, problems: Problems) -> int | None:
    if not text:
        return None
    try:
        runs = float(text)
    except ValueError:
        runs = math.nan
    if not math.isfinite(runs) or runs < 1 or runs != int(runs):
        problems.add(where, f"runs {text!r} must be a whole number of predictions, 1 or more")
        return None
    return int(runs)


def _compute_unit(
    text: str, units: DeviceUnits | None, backend: str | None, where: str, problems: Problems
) -> str | None:
    if units is None:
        return text or None  # another runtime's own words, recorded as they are
    if not text:
        return units.by_backend.get(backend or "")
    unit = units.parse(text)
    if unit is None:
        problems.add(where, f"unknown compute unit {text!r}; use {', '.join(dict.fromkeys(units.by_backend.values()))}")
        return None
    if backend and unit != units.by_backend[backend]:
        problems.add(
            where,
            f"compute unit {unit} is not that of --backend {backend} ({units.by_backend[backend]}); "
            f"import {unit} measurements separately with --backend {units.backend_for(unit)}",
        )
        return None
    return unit


# --- an opbench result file ----------------------------------------------------------------------------------


def _from_json(
    file: Path, exported: dict, units: DeviceUnits | None, backend: str | None, problems: Problems
) -> tuple[list[Result], dict]:
    run = validate(read_json(file), str(file))  # the schema and the numbers: positive timings, no case twice
    entries = {e["case"]: e for e in exported.get("entries", [])}
    results = []
    for index, data in enumerate(run["results"]):
        result = Result.from_json(data)
        where = f"results[{index}]"
        entry = entries.get(result.case)
        if entry is None:
            problems.add(where, f"unknown case {result.case!r}: not in the manifest ({len(entries)} cases)")
            continue
        if units is not None and result.backend not in units.by_backend:
            problems.add(where, f"backend {result.backend!r} is not one of {', '.join(units.by_backend)}")
        if backend and result.backend != backend:
            problems.add(where, f"backend {result.backend} is not --backend {backend}")
        sha = result.backend_options.get("package_sha256")
        if sha and sha != entry.get("sha256"):
            problems.add(where, f"{result.case}: package checksum is not the manifest's: a different export")
        if result.status == "ok" and not result.stats:
            problems.add(where, f"{result.case}: status ok but no stats (median_s)")
        results.append(result)
    return results, run.get("software", {})


# --- both ----------------------------------------------------------------------------------------------------


def _check_packages(results: list[Result], exported: dict, folder: Path, problems: Problems) -> None:
    """Re-hash each measured package that lies beside the manifest: one that changed since the export is refused."""
    entries = {e["case"]: e for e in exported.get("entries", [])}
    for result in results:
        entry = entries.get(result.case, {})
        file, expected = entry.get("file"), entry.get("sha256")
        if not (isinstance(file, str) and expected and file == Path(file).name and not file.startswith(".")):
            continue
        package = folder / file
        if package.exists() and tree_sha256(package) != expected:
            problems.add(
                result.case,
                f"{package} does not match the manifest's checksum: changed or damaged since the export; "
                "export again and measure the new packages",
            )


CASE_FIELDS = ("suite", "family", "variant", "group", "params", "input_shape", "macs", "param_count", "bytes")


def _attach_cases(results: list[Result], exported: dict, problems: Problems) -> list[Result]:
    """Each result with its case's metadata from opbench's own registry, which must still compute what was
    exported."""
    if not results:
        return []
    registry: dict[str, Case] = {c.id: c for c in select_cases(exported.get("grid", "default"))}
    fingerprints = {e["case"]: e.get("fingerprint") for e in exported.get("entries", [])}
    attached = []
    for result in results:
        case = registry.get(result.case)
        if case is None:
            problems.add(result.case, "in the manifest but no longer one of opbench's cases: export again")
            continue
        if fingerprints.get(case.id) and fingerprints[case.id] != case.fingerprint:
            problems.add(case.id, "opbench's case has changed since this export: export again and measure again")
            continue
        described = Result.for_case(case, result.backend)
        attached.append(dataclasses.replace(result, **{f: getattr(described, f) for f in CASE_FIELDS}))
    return attached
