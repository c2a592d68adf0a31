"""Result files: the schema (result.schema.json), atomic writing, loading with validation, a DataFrame view.

One JSON file per run at device_results/<device-slug>/<run-id>.json. JSON only, never pickle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import importlib.metadata
import json
import math
import os
import platform
import re
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import jsonschema
import numpy as np
import pandas as pd

from opbench import stats
from opbench.errors import OpbenchError
from opbench.files import MAX_JSON_BYTES, atomic_write_text, parse_json, read_json, short
from opbench.options import is_positive_finite

if TYPE_CHECKING:
    from opbench.case import Case

# 4: weights (a case timed with its weights cold); 3: stats.window (members of a comparison group timed round by
# round); 2: samples per pass (stats.passes_s); 1: one block of samples (stats.samples_s)
SCHEMA = "opbench-results/4"
SCHEMAS = (
    "opbench-results/1",
    "opbench-results/2",
    "opbench-results/3",
    SCHEMA,
)  # the versions that load; a schema-1 result is one pass
SCHEMA_PATH = Path(__file__).with_name("result.schema.json")
DEFAULT_DIR = Path("device_results")
MAX_SAMPLES = 10_000  # raw samples per result kept when a file is loaded (a timed run keeps about 1,000)
SOFTWARE = ("torch", "numpy", "scipy", "pytest-benchmark")  # plus each backend's own versions (Backend.versions)


MAX_DEVICE_NAME = 100  # characters; and the folder name at most MAX_SLUG_BYTES (file systems allow 255 bytes)
MAX_SLUG_BYTES = 200


def slugify(name: str) -> str:
    """'iPhone 12' -> 'iphone-12', 'Café Box' -> 'café-box', '华为 Mate 60' -> '华为-mate-60': the device's folder name.
    Letters, marks and digits of every script are kept (NFC, lower-cased), every run of anything else is one '-'."""
    if len(name) > MAX_DEVICE_NAME:
        raise OpbenchError(f"a device name of {len(name)} characters is too long: name the device in at most "
                           f"{MAX_DEVICE_NAME}")  # fmt: skip
    kept = "".join(
        c if unicodedata.category(c)[0] in "LMN" else "-" for c in unicodedata.normalize("NFC", name).lower()
    )
    slug = re.sub(r"-+", "-", kept).strip("-")
    if not slug:
        raise OpbenchError(f"device name {name!r} has no letters or digits to name its folder")
    if len(slug.encode()) > MAX_SLUG_BYTES:
        raise OpbenchError(f"device name {short(name, 40)!r} makes a folder name of {len(slug.encode())} bytes, more "
                           f"than {MAX_SLUG_BYTES}: name the device shorter")  # fmt: skip
    return slug


@dataclass(frozen=True)
class Device:
    """The machine a run was measured on."""

    name: str
    slug: str
    kind: str = "host"
    cpu: str | None = None
    cores: int | None = None
    memory_gb: float | None = None
    os: str | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict) -> Device:
        return cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls) if f.name in data})


def device_info(name: str | None = None, kind: str = "host") -> Device:
    """This host: processor (py-cpuinfo), cores, memory, OS. `name` defaults to the processor's brand."""
    import cpuinfo

    cpu = cpuinfo.get_cpu_info().get("brand_raw") or platform.processor() or "unknown cpu"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    name = name or cpu
    return Device(name, slugify(name), kind, cpu, os.cpu_count(), round(memory, 1), platform.platform())


def software_versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in SOFTWARE:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {**versions, **(extra or {})}


@dataclass(frozen=True)
class Stats:
    """Per-call latency statistics in seconds, raw samples kept per pass (an imported number may be a median alone).

    With several passes, median_s is the mean of the passes' medians (stats.center: what verdicts and compare use);
    the other statistics are over every sample."""

    median_s: float
    mean_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    iqr_s: float | None = None
    stddev_s: float | None = None
    rounds: int | None = None
    iterations: int | None = None
    passes_s: tuple[tuple[float, ...], ...] = ()
    # The timing window shared with the other members of a comparison group: sample i of pass k of every set with
    # the same window was taken in round i of pass k, beside the others' (None: timed alone, as in schemas 1-2).
    window: str | None = None

    @classmethod
    def from_passes(
        cls, passes_s: Iterable[Iterable[float]], iterations: int | None = None, window: str | None = None
    ) -> Stats:
        passes = tuple(tuple(float(f"{x:.5g}") for x in p) for p in passes_s)  # 5 significant digits: below noise
        passes = tuple(p for p in passes if p)
        data = np.concatenate([np.asarray(p) for p in passes])
        q1, q3 = np.percentile(data, [25, 75])
        return cls(
            median_s=stats.center(passes),
            mean_s=float(data.mean()),
            min_s=float(data.min()),
            max_s=float(data.max()),
            iqr_s=float(q3 - q1),
            stddev_s=float(data.std(ddof=1)) if data.size > 1 else 0.0,
            rounds=int(data.size),
            iterations=iterations,
            passes_s=passes,
            window=window,
        )

    @classmethod
    def from_samples(cls, samples_s: Iterable[float], iterations: int | None = None) -> Stats:
        """One pass."""
        return cls.from_passes([samples_s], iterations)

    @property
    def samples_s(self) -> tuple[float, ...]:
        """Every sample, pass after pass."""
        return tuple(x for p in self.passes_s for x in p)

    @property
    def samples(self) -> tuple[tuple[float, ...], ...] | None:
        """The raw samples per pass when there are enough to bootstrap (stats.usable decides), else None."""
        return self.passes_s if stats.usable(self.passes_s) is not None else None

    def to_json(self) -> dict:
        data = {k: v for k, v in dataclasses.asdict(self).items() if v is not None and k != "passes_s"}
        if self.passes_s:
            data["passes_s"] = [list(p) for p in self.passes_s]
        return data

    @classmethod
    def from_json(cls, data: dict) -> Stats:
        """Schema 2's passes_s, or schema 1's samples_s as one pass. More than MAX_SAMPLES raw samples are thinned
        to evenly spaced ones, the same share of each pass (order kept), which bounds what a report or a comparison
        bootstraps whatever a file holds."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        passes = [p for p in data.get("passes_s") or ([data["samples_s"]] if data.get("samples_s") else []) if p]
        keep = MAX_SAMPLES // max(1, len(passes))
        values["passes_s"] = tuple(tuple(_thinned(p, keep)) for p in passes)
        return cls(**values)


def _thinned(samples: list, keep: int) -> list:
    if len(samples) <= keep:
        return samples
    return [samples[i] for i in np.linspace(0, len(samples) - 1, keep).round().astype(int)]


@dataclass(frozen=True)
class Check:
    """The backend's output against eager PyTorch's on the same input."""

    max_abs_err: float  # NaN when the output holds NaN or Infinity (written as null)
    tolerance: float
    passed: bool

    def to_json(self) -> dict:
        err = self.max_abs_err if math.isfinite(self.max_abs_err) else None
        return {**dataclasses.asdict(self), "max_abs_err": err}

    @classmethod
    def from_json(cls, data: dict) -> Check:
        return cls(**{**data, "max_abs_err": math.nan if data["max_abs_err"] is None else data["max_abs_err"]})


@dataclass(frozen=True)
class ColdWeights:
    """How cold a cold case's weights were (opbench.measure.cold): each timed call went to the next of `copies`
    prepared copies, each holding `copy_weight_bytes` of weights (torch's count of parameters and buffers), against
    a last-level cache of `llc_bytes` read from `llc_source` (or the fallback and why). `reaches_2x_llc` says
    whether the copies together held at least twice the cache; a small block under the copy cap does not."""

    copies: int
    copy_weight_bytes: int
    llc_bytes: int
    llc_source: str
    prepare_s: float  # preparing and checking every copy, in the pass that recorded it
    checked: str = "every copy against eager; the result's check is the worst copy's"
    state: Literal["cold"] = "cold"

    @property
    def total_weight_bytes(self) -> int:
        return self.copies * self.copy_weight_bytes

    @property
    def reaches_2x_llc(self) -> bool:
        return self.total_weight_bytes >= 2 * self.llc_bytes

    def to_json(self) -> dict:
        """The record with its derived facts, for readers of the file (they are derived again when it loads)."""
        derived = {"total_weight_bytes": self.total_weight_bytes, "reaches_2x_llc": self.reaches_2x_llc}
        return {**dataclasses.asdict(self), **derived}

    @classmethod
    def from_json(cls, data: dict) -> ColdWeights:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Result:
    """One (case, backend) measurement of a run: what was measured, how, its check and its statistics.

    The one record the plugin, the importer and the tests write, and the report and compare read. In the JSON
    file `suite` is the key "observation" (schema 1 named it so)."""

    case: str
    suite: str
    backend: str
    status: Literal["ok", "unsupported", "failed"] = "ok"
    reason: str = ""
    family: str = ""
    variant: str = ""
    group: str = ""
    params: dict = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()
    backend_options: dict = field(default_factory=dict)
    backend_versions: dict = field(default_factory=dict)
    threads: int | None = None
    precision: str = "float32"
    macs: int | None = None
    param_count: int | None = None
    bytes: int | None = None
    export_s: float | None = None
    cache_hit: bool | None = None
    info: dict = field(default_factory=dict)
    check: Check | None = None
    stats: Stats | None = None
    # the profiling pass (suites that ask for it): {"rows": [OpRow JSON...], "e2e_median_s": the median timed
    # alongside it, "runs": profiled runs} or {"unavailable": why}; categories are derived, never stored
    profile: dict | None = None
    reference: dict | None = None  # published numbers only: where they come from
    weights: ColdWeights | None = None  # a cold case's copies (schema 4); None: timed hot, as every case before

    @classmethod
    def for_case(cls, case: Case, backend: str, **fields) -> Result:
        """A result of the case, its metadata (costs counted once per case; none for a broken case) filled in."""
        costs = None if case.problem else case.costs
        return cls(
            case=case.id, suite=case.suite, family=case.family, variant=case.variant, group=case.group,
            params=dict(case.params), input_shape=tuple(case.input_shape), backend=backend,
            macs=costs and costs.macs, param_count=costs and costs.param_count, bytes=costs and costs.bytes, **fields,
        )  # fmt: skip

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.stats is not None

    def replaces(self, earlier: Result | None) -> bool:
        """Whether this later result of the same case stands for it instead of `earlier`: an ok one always, a
        failure only over another failure (a failure never hides an earlier success)."""
        return earlier is None or self.status == "ok" or earlier.status != "ok"

    def to_json(self) -> dict:
        data = {"case": self.case, "observation": self.suite}
        for f in dataclasses.fields(self):
            if f.name in ("case", "suite"):
                continue
            value = getattr(self, f.name)
            if f.name in ("reference", "profile", "weights") and value is None:
                continue
            if isinstance(value, Stats | Check | ColdWeights):
                value = value.to_json()
            data[f.name] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def from_json(cls, data: dict) -> Result:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["suite"] = data.get("observation", "")
        values["input_shape"] = tuple(data.get("input_shape") or ())
        values["check"] = Check.from_json(data["check"]) if data.get("check") else None
        values["stats"] = Stats.from_json(data["stats"]) if data.get("stats") else None
        values["weights"] = ColdWeights.from_json(data["weights"]) if data.get("weights") else None
        for key in ("params", "backend_options", "backend_versions", "info"):
            values[key] = data.get(key) or {}
        return cls(**values)


@dataclass
class Run:
    """One result file: where and with what a set of results was measured (or imported, or published)."""

    run_id: str
    created: str
    source: Literal["pytest-benchmark", "import", "reference"]
    device: Device
    software: dict[str, str]
    results: list[Result]
    protocol: dict = field(default_factory=dict)
    unavailable_backends: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        data = {"schema": SCHEMA, "run_id": self.run_id, "created": self.created, "source": self.source,
                "device": self.device.to_json(), "software": self.software, "protocol": self.protocol}  # fmt: skip
        if self.unavailable_backends:
            data["unavailable_backends"] = self.unavailable_backends
        data["results"] = [r.to_json() for r in self.results]
        return data

    @classmethod
    def from_json(cls, data: dict) -> Run:
        return cls(
            run_id=data["run_id"], created=data["created"], source=data["source"],
            device=Device.from_json(data["device"]), software=dict(data.get("software") or {}),
            results=[Result.from_json(r) for r in data["results"]], protocol=dict(data.get("protocol") or {}),
            unavailable_backends=dict(data.get("unavailable_backends") or {}),
        )  # fmt: skip


def passes_text(protocol: dict) -> str:
    """How many passes a run's protocol says its cases ran: '6 passes each', or by suite when they differ
    ('6 passes: obs1, overhead; 3 passes: models'), '1 pass'. A number in files older than per-suite passes."""
    passes = protocol.get("passes") or 1
    by_count: dict[int, list[str]] = {}
    for suite, n in (passes if isinstance(passes, dict) else {"": passes}).items():
        by_count.setdefault(n, []).append(suite)
    if len(by_count) > 1:
        return "; ".join(f"{n} pass{'es' if n > 1 else ''}: {', '.join(keys)}" for n, keys in by_count.items())
    n = next(iter(by_count))
    return "1 pass" if n == 1 else f"{n} passes each"


def new_run(
    device: Device,
    results: list[Result],
    source: str,
    protocol: dict | None = None,
    software: dict[str, str] | None = None,
    unavailable_backends: dict[str, str] | None = None,
) -> Run:
    created = dt.datetime.now(dt.UTC)
    return Run(
        run_id=f"{created:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
        created=created.isoformat(timespec="seconds"),
        source=source,
        device=device,
        software=software_versions(software),
        results=list(results),
        protocol=protocol or {},
        unavailable_backends=unavailable_backends or {},
    )


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def validate(run: object, where: str) -> dict:
    """The run if it matches the schema; else OpbenchError naming `where`, the field and the problem."""
    if isinstance(run, dict) and run.get("schema") not in (None, *SCHEMAS):
        raise OpbenchError(
            f"{where}: schema {run.get('schema')!r} is not one of {', '.join(SCHEMAS)}; not an opbench result file"
        )
    errors = [
        (f"at {'/'.join(map(str, e.absolute_path)) or '(top level)'}", short(e.message))
        for e in sorted(_validator().iter_errors(_structure(run)), key=lambda e: list(e.absolute_path))
    ]
    if not errors:
        errors = _impossible_numbers(run)
    if errors:
        lines = [f"  {at}: {message}" for at, message in errors[:10]]
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise OpbenchError(f"{where}: not a valid opbench result file ({SCHEMA}):\n" + "\n".join(lines) + more)
    return run  # type: ignore[return-value]


def _structure(run: object) -> object:
    """The run with each list of samples cut to its first: the schema checks the structure, _impossible_numbers every
    sample (a schema walk over a full run's hundreds of thousands of samples took seconds)."""
    if not isinstance(run, dict) or not isinstance(run.get("results"), list):
        return run
    results = []
    for result in run["results"]:
        stats = result.get("stats") if isinstance(result, dict) else None
        if isinstance(stats, dict):
            cut = dict(stats)
            if isinstance(cut.get("samples_s"), list):
                cut["samples_s"] = cut["samples_s"][:1]
            if isinstance(cut.get("passes_s"), list):
                cut["passes_s"] = [p[:1] if isinstance(p, list) else p for p in cut["passes_s"]]
            result = {**result, "stats": cut}
        results.append(result)
    return {**run, "results": results}


def _impossible_numbers(run: dict) -> list[tuple[str, str]]:
    """What the schema cannot say: the device's folder one that slugify makes, every median and sample a positive
    finite number of seconds, and one result per (case, backend) in a run (a second copy would silently replace the
    first)."""
    errors, seen = [], {}
    slug = run["device"]["slug"]
    try:
        made = slugify(slug)
    except OpbenchError as exc:
        made = str(exc)
    if made != slug:
        errors.append(("at device/slug", f"{short(slug, 60)!r} is not a folder name opbench makes ({short(made, 60)})"))
    for i, result in enumerate(run["results"]):
        key = (result["case"], result["backend"])
        if key in seen:
            errors.append((f"at results/{i}", f"{key[0]} on {key[1]} is listed twice (first at results/{seen[key]})"))
        seen.setdefault(key, i)
        timed = result.get("stats") or {}
        median = [] if timed.get("median_s") is None else [timed["median_s"]]  # an unmeasured case has none
        values = [*median, *timed.get("samples_s", ()), *(x for p in timed.get("passes_s", ()) for x in p)]
        bad = [v for v in values if not is_positive_finite(v)]
        if bad:
            errors.append(
                (f"at results/{i}/stats", f"{len(bad)} timing(s) not a positive finite number (e.g. {bad[0]})")
            )
    return errors


def json_text(data: object, indent: int | None = None) -> str:
    """JSON as opbench writes it: never NaN or Infinity (not JSON: opbench's own reader refuses a file holding them),
    OpbenchError naming where one is instead."""
    try:
        return json.dumps(data, indent=indent, allow_nan=False)
    except ValueError as exc:
        where = _non_finite_at(data) or "(unknown)"
        raise OpbenchError(f"a result to write holds NaN or Infinity, which JSON does not allow: at {where}") from exc


def _non_finite_at(value: object, at: str = "") -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return at or "(top level)"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list | tuple) else ()
    return next((found for k, v in items if (found := _non_finite_at(v, f"{at}/{k}" if at else str(k)))), None)


def write_run(run: Run, results_dir: Path | str = DEFAULT_DIR) -> Path:
    """Validate, then write atomically (temp file + rename) to <results_dir>/<device-slug>/<run-id>.json."""
    data = validate(run.to_json(), "result to write")
    folder = Path(results_dir) / run.device.slug
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run.run_id}.json"
    atomic_write_text(path, json_text(data, indent=1))
    return path


JOURNAL = ".partial.jsonl"  # a run in progress: its header, then one result per line as each case finishes


class JournalError(OpbenchError):
    """The journal of a run could not be appended (a full disk); the message says which results it keeps, where."""


class Journal:
    """A run written as it goes (asv writes a result per benchmark): the run's header with its first result, then
    each result as it finishes, flushed to disk. A run that is killed (SIGKILL, a crash, a full disk at the end) leaves
    its journal, which load_run reads as a run marked interrupted; a run that ends well replaces it with its file.
    A protocol that grew since the last line (a backend's call cost, measured when its first window is timed) is
    written as a line `{"protocol": ...}` before the next result, which replaces the header's when the journal is read.
    A line the disk refuses is cut off again (no torn line) and raises JournalError: the journal keeps exactly the
    results before it (`kept`)."""

    def __init__(self, header: Run, results_dir: Path | str):
        self.header = header
        self.path = Path(results_dir) / header.device.slug / f"{header.run_id}{JOURNAL}"
        self.kept: set[tuple[str, str]] = set()  # (case, backend) of every result on disk
        self._started = False
        self._protocol = ""  # the protocol as last written

    def append(self, result: Result) -> None:
        try:
            if not self._started:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._write(json_text(validate(self.header.to_json(), "result to write")), truncate=True)
                self._started, self._protocol = True, json_text(self.header.protocol)
            if (protocol := json_text(self.header.protocol)) != self._protocol:
                self._write(json_text({"protocol": self.header.protocol}))
                self._protocol = protocol
            self._write(json_text(result.to_json()))
        except OSError as exc:
            total = len(self.kept | {(result.case, result.backend)})
            raise JournalError(
                f"opbench: stopped timing: the journal {self.path} could not be appended ({exc.strerror or exc}); "
                + self.kept_text(total)
            ) from exc
        self.kept.add((result.case, result.backend))

    def kept_text(self, total: int) -> str:
        """What the journal holds of `total` finished results, as a sentence."""
        if not self.kept:
            return f"none of the {total} finished results is kept"
        where = f"kept in {self.path}, which `opbench report` reads"
        if len(self.kept) >= total:
            return f"all {total} finished results are {where}"
        return (
            f"{len(self.kept)} of the {total} finished results are {where}; the other {total - len(self.kept)} are lost"
        )

    def _write(self, line: str, truncate: bool = False) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND), 0o644)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                _write_all(fd, (line + "\n").encode())
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)  # freeing space needs none: the journal ends at its last whole line
                raise
        finally:
            os.close(fd)

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def load_run(path: Path | str) -> Run:
    path = Path(path)
    if path.name.endswith(JOURNAL):
        return _load_journal(path)
    return Run.from_json(validate(read_json(path, "result file"), str(path)))


def _load_journal(path: Path) -> Run:
    """The results a killed run finished, as a run whose protocol says it was interrupted. A torn last line (the
    case in flight when it was killed) is left out; any other line that is not a result (torn in the middle, nested
    too deeply, an array) is left out too, and the protocol's `interrupted` note names it. A (case, backend) is
    journaled after each of its passes, so its last line holds every pass it finished."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise OpbenchError(f"{path}: larger than a journal of a run can be ({MAX_JSON_BYTES >> 20} MB)")
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise OpbenchError(f"{path}: not a readable journal of a run ({short(str(exc))})") from exc
    header, problem = _journal_line(lines[0] if lines else "")
    if header is None:
        raise OpbenchError(f"{path}: not a readable journal of a run: its first line, the run's header, {problem}")
    results, unreadable = {}, []
    for number, line in enumerate(lines[1:], start=2):
        result, problem = _journal_line(line)
        if result is not None and result.keys() == {"protocol"}:
            header["protocol"] = result["protocol"]
        elif result is not None:
            results[(result.get("case"), result.get("backend"))] = result
        elif number < len(lines) or problem != "is not JSON":
            unreadable.append(f"line {number} {problem}")
    note = "the run was killed; finished cases only"
    if unreadable:
        note += f"; left out of its journal: {'; '.join(unreadable[:5])}" + (" ..." if len(unreadable) > 5 else "")
    header["results"] = list(results.values())
    protocol = header.get("protocol") or {}
    header["protocol"] = {**protocol, "interrupted": note} if isinstance(protocol, dict) else protocol
    return Run.from_json(validate(header, str(path)))


def _journal_line(line: str) -> tuple[dict | None, str]:
    """(the line's object, "") or (None, what is wrong with it)."""
    try:
        value = parse_json(line)
    except RecursionError:
        return None, "is nested too deeply"
    except ValueError:
        return None, "is not JSON"
    if isinstance(value, dict):
        return value, ""
    return None, f"is {JSON_KINDS.get(type(value), 'a value')}, not an object"


JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false"}


def result_files(paths: Iterable[Path | str]) -> list[Path]:
    """Every *.json (and journal of a killed run) under the given folders, recursively, plus the files given.

    Hidden files and folders are skipped: an export cache (.opbench_cache) or an editor's folder inside a results
    folder holds JSON that is not a run."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = [*p.rglob("*.json"), *p.rglob(f"*{JOURNAL}")]
            files.extend(sorted(f for f in found if not any(part.startswith(".") for part in f.relative_to(p).parts)))
        elif p.exists():
            files.append(p)
        else:
            raise OpbenchError(f"{p}: no such file or folder")
    return files


def load_runs(paths: Iterable[Path | str] = (DEFAULT_DIR,)) -> list[Run]:
    return [load_run(f) for f in result_files(paths)]


def to_dataframe(runs: Iterable[Run]) -> pd.DataFrame:
    """One row per (run, case, backend): result fields, stats flattened, plus device and run columns."""
    rows = []
    for run in runs:
        for result in run.results:
            data = result.to_json()
            rows.append(
                {
                    "run_id": run.run_id,
                    "source": run.source,
                    "created": run.created,
                    "device": run.device.name,
                    "device_slug": run.device.slug,
                    **{k: v for k, v in data.items() if k not in ("stats", "check")},
                    **(data.get("stats") or {}),
                    "check_passed": result.check.passed if result.check else None,
                    "max_abs_err": result.check.max_abs_err if result.check else None,
                }
            )
    return pd.DataFrame(rows)
