"""Result files: the schema (result.schema.json), atomic writing, loading with validation, a DataFrame view.

One JSON file per run at device_results/<device-slug>/<run-id>.json. JSON only, never pickle.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib.metadata
import json
import os
import platform
import re
import uuid
from collections.abc import Iterable
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd

from opbench.errors import OpbenchError
from opbench.files import atomic_write_text, read_json

SCHEMA = "opbench-results/1"
SCHEMA_PATH = Path(__file__).with_name("result.schema.json")
DEFAULT_DIR = Path("device_results")
SOFTWARE = ("torch", "onnxruntime", "onnx", "onnxscript", "coremltools", "numpy", "pytest-benchmark")


def slugify(name: str) -> str:
    """'iPhone 12' -> 'iphone-12': the device's folder name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise OpbenchError(f"device name {name!r} has no letters or digits to name its folder")
    return slug


def device_info(name: str | None = None, kind: str = "host") -> dict:
    """This host: processor (py-cpuinfo), cores, memory, OS. `name` defaults to the processor's brand."""
    import cpuinfo

    cpu = cpuinfo.get_cpu_info().get("brand_raw") or platform.processor() or "unknown cpu"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    name = name or cpu
    return {
        "name": name,
        "slug": slugify(name),
        "kind": kind,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory, 1),
        "os": platform.platform(),
    }


def software_versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in SOFTWARE:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {**versions, **(extra or {})}


def stats_from_samples(samples_s: Iterable[float], iterations: int | None = None) -> dict:
    """Summary of per-call samples (seconds), raw samples kept."""
    data = np.asarray(list(samples_s), dtype=float)
    q1, median, q3 = np.percentile(data, [25, 50, 75])
    return {
        "median_s": float(median),
        "mean_s": float(data.mean()),
        "min_s": float(data.min()),
        "max_s": float(data.max()),
        "iqr_s": float(q3 - q1),
        "stddev_s": float(data.std(ddof=1)) if data.size > 1 else 0.0,
        "rounds": int(data.size),
        "iterations": iterations,
        "samples_s": [float(f"{x:.5g}") for x in data],  # 5 significant digits: far below timer noise
    }


def new_run(device: dict, results: list[dict], source: str, protocol: dict | None = None, **extra) -> dict:
    created = dt.datetime.now(dt.UTC)
    return {
        "schema": SCHEMA,
        "run_id": f"{created:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
        "created": created.isoformat(timespec="seconds"),
        "source": source,
        "device": device,
        "software": software_versions(extra.pop("software", None)),
        "protocol": protocol or {},
        **extra,
        "results": results,
    }


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def validate(run: object, where: str) -> dict:
    """The run if it matches the schema; else OpbenchError naming `where`, the field and the problem."""
    if isinstance(run, dict) and run.get("schema") not in (None, SCHEMA):
        raise OpbenchError(f"{where}: schema {run.get('schema')!r} is not {SCHEMA!r}; not an opbench result file")
    errors = sorted(_validator().iter_errors(run), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  at {'/'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors[:10]]
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise OpbenchError(f"{where}: not a valid opbench result file ({SCHEMA}):\n" + "\n".join(lines) + more)
    return run  # type: ignore[return-value]


def write_run(run: dict, results_dir: Path | str = DEFAULT_DIR) -> Path:
    """Validate, then write atomically (temp file + rename) to <results_dir>/<device-slug>/<run-id>.json."""
    validate(run, "result to write")
    folder = Path(results_dir) / run["device"]["slug"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run['run_id']}.json"
    atomic_write_text(path, json.dumps(run, indent=1))
    return path


def load_run(path: Path | str) -> dict:
    return validate(read_json(path, "result file"), str(path))


def result_files(paths: Iterable[Path | str]) -> list[Path]:
    """Every *.json under the given folders (recursively), plus the files given directly."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*.json") if not f.name.startswith(".")))
        elif p.exists():
            files.append(p)
        else:
            raise OpbenchError(f"{p}: no such file or folder")
    return files


def load_runs(paths: Iterable[Path | str] = (DEFAULT_DIR,)) -> list[dict]:
    return [load_run(f) for f in result_files(paths)]


def to_dataframe(runs: Iterable[dict]) -> pd.DataFrame:
    """One row per (run, case, backend): result fields, stats flattened, plus device and run columns."""
    rows = []
    for run in runs:
        for result in run["results"]:
            stats = result.get("stats") or {}
            check = result.get("check") or {}
            rows.append(
                {
                    "run_id": run["run_id"],
                    "source": run["source"],
                    "created": run["created"],
                    "device": run["device"]["name"],
                    "device_slug": run["device"]["slug"],
                    **{k: v for k, v in result.items() if k not in ("stats", "check")},
                    **{k: v for k, v in stats.items()},
                    "check_passed": check.get("passed"),
                    "max_abs_err": check.get("max_abs_err"),
                }
            )
    return pd.DataFrame(rows)
