"""`opbench compare A B`: per case, B's median against A's, the ratio with its interval, and whether it changed.

Operands (A is the baseline, B the candidate; ratio = B / A, above 1 means B is slower):

    RUN                  a whole run: a result file's path, a run id, or a device (slug or name: its latest run)
    RUN@BACKEND          one backend of that run: `device_results/amd-epyc/<run-id>.json@ort-cpu`, `amd-epyc@ort-cpu`
    backend:BACKEND      one backend of the run given by --run (a path, run id or device), by default the latest run

Rows pair the same case. Two whole runs pair (case, backend): the same case on the same backend, run against run.
Two backend selections pair the case alone: backend against backend. When only one side names a backend, the
other side is narrowed to the same backend.

The significance rule is asv's (`asv compare`, asv/_stats.py `is_different`): a change is significant when the ratio
is beyond the factor (default 1.1: slower than x1.1 or faster than /1.1) AND the two sides differ statistically:
a two-sided Mann-Whitney U test gives p < alpha (default 0.002) when the samples allow the test to reach that level
(its smallest possible p, 1 / C(m + n, min(m, n)), is below alpha); otherwise the two medians' 99% intervals do not
overlap. Aware of passes: with several passes the test's samples are the passes' medians (the pass, not the sample,
is the independent repetition: samples of one pass share its drift), and the intervals are the hierarchical
bootstrap's (opbench.stats), as asv's come from its own statistics over its runs. With three passes a side the test
cannot reach p < 0.002, so the intervals decide. A side with only a median (an imported device number) has no
interval and no samples: the factor alone decides, and the row says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from opbench import stats
from opbench.errors import OpbenchError
from opbench.files import csv_text
from opbench.options import is_positive_finite
from opbench.results import DEFAULT_DIR, Result, Run, Stats, load_run, result_files, slugify

DEFAULT_FACTOR = 1.1
DEFAULT_ALPHA = 0.002  # asv's p threshold
CONFIDENCE = 0.99  # asv's fallback: the 99% intervals of the two medians must not overlap
FORMATS = ("text", "csv", "json")
COMPARED = ("slower", "faster", "noise", "same")
CHANGES = (*COMPARED, "invalid", "unsupported", "failed", "only in A", "only in B")

COLUMNS = [
    "case",
    "backend_a",
    "backend_b",
    "median_a_s",
    "median_b_s",
    "ratio",
    "ratio_low",
    "ratio_high",
    "p_value",
    "basis",
    "significant",
    "change",
]


@dataclass(frozen=True)
class Selection:
    """One operand resolved: a run, and optionally one backend of it."""

    run: Run
    backend: str | None
    label: str

    def results(self) -> dict[tuple[str, str], Result]:
        """(case, backend) -> result, for the selected backend (or all of them)."""
        chosen = {}
        for result in self.run.results:
            if self.backend is None or result.backend == self.backend:
                chosen[(result.case, result.backend)] = result
        return chosen


# --- resolving operands ------------------------------------------------------------------------------------------


def _runs_in(results_dir: Path) -> list[tuple[Path, Run]]:
    if not results_dir.exists():
        raise OpbenchError(f"{results_dir}: no such folder; pass result files or --results-dir")
    return [(f, load_run(f)) for f in result_files([results_dir])]


def resolve_run(spec: str, results_dir: Path) -> tuple[Run, str]:
    """A result file path, a run id, or a device (slug or name) whose latest run is taken."""
    path = Path(spec)
    if path.is_file() or spec.endswith(".json"):
        if not path.is_file():
            raise OpbenchError(f"{spec}: no such result file")
        return load_run(path), str(path)
    runs = _runs_in(results_dir)
    by_id = [(f, r) for f, r in runs if r.run_id == spec]
    if by_id:
        return by_id[0][1], str(by_id[0][0])
    try:
        slug = slugify(spec)
    except OpbenchError:
        slug = None
    of_device = [(f, r) for f, r in runs if r.device.slug == slug or r.device.name == spec]
    if not of_device:
        devices = sorted({r.device.slug for _, r in runs})
        raise OpbenchError(
            f"{spec!r} is not a result file, a run id or a device with results under {results_dir}; "
            f"devices there: {', '.join(devices) or 'none'}"
        )
    f, run = max(of_device, key=lambda fr: fr[1].created)
    return run, str(f)


def latest_run(results_dir: Path) -> tuple[Run, str]:
    runs = [(f, r) for f, r in _runs_in(results_dir) if r.source == "pytest-benchmark"] or _runs_in(results_dir)
    if not runs:
        raise OpbenchError(f"no result files under {results_dir}; run `make bench` first or pass --run")
    f, run = max(runs, key=lambda fr: fr[1].created)
    return run, str(f)


def resolve(spec: str, results_dir: Path, run_spec: str | None = None) -> Selection:
    """An operand (see the module's docstring) as a Selection; OpbenchError names what was wrong."""
    if spec.startswith("backend:"):
        backend = spec.removeprefix("backend:")
        run, where = resolve_run(run_spec, results_dir) if run_spec else latest_run(results_dir)
    elif "@" in spec and not Path(spec).is_file():
        run_part, backend = spec.rsplit("@", 1)
        run, where = resolve_run(run_part, results_dir)
    else:
        run, where = resolve_run(spec, results_dir)
        return Selection(run, None, where)
    if not backend:
        raise OpbenchError(f"{spec!r}: no backend name after {'backend:' if spec.startswith('backend:') else '@'}")
    present = sorted({r.backend for r in run.results})
    if backend not in present:
        raise OpbenchError(f"{spec!r}: backend {backend!r} has no results in {where}; it has: {', '.join(present)}")
    return Selection(run, backend, f"{where}@{backend}")


# --- the rule ----------------------------------------------------------------------------------------------------


def _bad_timings(timed: Stats) -> str | None:
    """Why a result's median or samples cannot be compared (NaN, infinite, zero, negative), or None."""
    values = [timed.median_s, *timed.samples_s]
    bad = [v for v in values if not is_positive_finite(v)]
    if not bad:
        return None
    return f"{len(bad)} timing(s) not a positive finite number of seconds (e.g. {bad[0]!r})"


def compare_results(a: Result, b: Result, factor: float = DEFAULT_FACTOR, alpha: float = DEFAULT_ALPHA) -> dict:
    """One row: both medians, B/A with its interval, the rank test, and the verdict of the rule."""
    row = {"median_a_s": None, "median_b_s": None, "ratio": None, "ratio_low": None, "ratio_high": None}
    row |= {"p_value": None, "basis": "", "significant": False}
    for side, result in (("A", a), ("B", b)):
        if not result.ok:
            reason = result.reason or "no timing"
            return row | {
                "change": result.status if result.status != "ok" else "failed",
                "basis": f"{side}: {reason}",
            }
        problem = _bad_timings(result.stats)
        if problem:
            return row | {"change": "invalid", "basis": f"{side}: {problem}"}
    sa, sb = a.stats.samples, b.stats.samples
    r = stats.ratio(sb, sa, b.stats.median_s, a.stats.median_s, by_pass=False)
    row |= {"median_a_s": a.stats.median_s, "median_b_s": b.stats.median_s}
    row |= {"ratio": r.value, "ratio_low": r.low, "ratio_high": r.high}
    beyond = r.value > factor or r.value < 1 / factor
    within = f"within x{factor:g}"
    if sa is None or sb is None:
        row |= {"basis": f"medians only: {'beyond' if beyond else within}", "significant": beyond}
    else:
        different, p, evidence = is_different(sa, sb, alpha)
        row |= {"p_value": p, "basis": evidence if beyond else within, "significant": beyond and different}
    if not beyond:
        change = "same"
    elif not row["significant"]:
        change = "noise"
    else:
        change = "slower" if r.value > 1 else "faster"
    return row | {"change": change}


def test_samples(passes: tuple[tuple[float, ...], ...]) -> list[float]:
    """What the rank test compares: each pass's median with several passes, the samples of the one pass else."""
    return [float(np.median(p)) for p in passes] if len(passes) > 1 else list(passes[0])


def is_different(a: tuple, b: tuple, alpha: float = DEFAULT_ALPHA) -> tuple[bool, float | None, str]:
    """asv's is_different on two sample sets (per pass): (different, the rank test's p or None, why).

    Mann-Whitney U (two-sided; exact up to 20 a side, else the normal approximation, as asv) when its smallest
    possible p is below alpha; else whether the 99% intervals of the two medians are apart."""
    x, y = test_samples(a), test_samples(b)
    if 1 / math.comb(len(x) + len(y), min(len(x), len(y))) < alpha:
        method = "exact" if max(len(x), len(y)) <= 20 else "asymptotic"
        p = float(scipy_stats.mannwhitneyu(x, y, alternative="two-sided", method=method, use_continuity=False).pvalue)
        return p < alpha, p, f"rank test p {'<' if p < alpha else '>='} {alpha:g}"
    ma, mb = stats.median(a, confidence=CONFIDENCE), stats.median(b, confidence=CONFIDENCE)
    apart = ma.high < mb.low or mb.high < ma.low
    few = f"{len(x)} vs {len(y)} passes: too few for the rank test"
    return apart, None, f"{few}; 99% intervals {'apart' if apart else 'overlap'}"


def compare(a: Selection, b: Selection, factor: float = DEFAULT_FACTOR, alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
    """The table of A against B, biggest change first (then the rows that could not be compared)."""
    check_factor(factor)
    if a.backend is None and b.backend is not None:
        a = Selection(a.run, b.backend, a.label)
    if b.backend is None and a.backend is not None:
        b = Selection(b.run, a.backend, b.label)
    by_case = a.backend is not None  # both select one backend: pair case against case
    ra, rb = a.results(), b.results()
    if by_case:
        ra = {case: r for (case, _), r in ra.items()}
        rb = {case: r for (case, _), r in rb.items()}
    rows = []
    for key in list(ra) + [k for k in rb if k not in ra]:
        case = key if by_case else key[0]
        row = {"case": case, "backend_a": a.backend or key[1], "backend_b": b.backend or key[1]}
        if key not in rb:
            rows.append(row | {"change": "only in A", "significant": False, "basis": ""})
        elif key not in ra:
            rows.append(row | {"change": "only in B", "significant": False, "basis": ""})
        else:
            rows.append(row | compare_results(ra[key], rb[key], factor, alpha))
    if not any(row["change"] in COMPARED for row in rows):
        why = pd.Series([row["change"] for row in rows], dtype=object).value_counts()
        counts = ", ".join(f"{n} {change}" for change, n in why.items()) or "no results"
        raise OpbenchError(f"nothing compared: no case has a valid timing in both {a.label} and {b.label} ({counts})")
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    size = table["ratio"].map(lambda x: abs(math.log(x)) if x and x > 0 else -1.0)
    order = table["change"].map({c: i for i, c in enumerate(CHANGES)})
    comparable = table["ratio"].notna()
    table = table.assign(_comparable=~comparable, _size=-size, _order=order)
    table = table.sort_values(["_comparable", "_size", "_order", "case"], kind="stable")
    return table.drop(columns=["_comparable", "_size", "_order"]).reset_index(drop=True)


def check_factor(factor: float) -> float:
    """A ratio threshold must be a finite number above 1; OpbenchError otherwise."""
    if not (math.isfinite(factor) and factor > 1):
        raise OpbenchError(f"--factor must be a finite number above 1 (a ratio threshold, e.g. 1.1), got {factor}")
    return factor


def regressions(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Significant slowdowns beyond `threshold` (B/A above it), and rows with invalid timings: a gate fails on both."""
    slower = (table["significant"] == True) & (table["ratio"] > threshold)  # noqa: E712
    return table[slower | (table["change"] == "invalid")]


def summary(table: pd.DataFrame) -> str:
    counts = table["change"].value_counts()
    return ", ".join(f"{counts[c]} {c}" for c in CHANGES if c in counts)


def render(table: pd.DataFrame, fmt: str, a: Selection, b: Selection, factor: float, alpha: float) -> str:
    """The table as text (terminal), CSV or JSON (with what was compared and the rule)."""
    if fmt == "csv":
        return csv_text(table)
    if fmt == "json":
        document = {
            "a": a.label,
            "b": b.label,
            "rule": {"factor": factor, "alpha": alpha, "ratio": "median(B) / median(A)"},
            "summary": {str(k): int(v) for k, v in table["change"].value_counts().items()},
            "rows": [{k: _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")],
        }
        return json.dumps(document, indent=1) + "\n"
    if fmt != "text":
        raise OpbenchError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    shown = pd.DataFrame(
        {
            "case": table["case"],
            "A": table["backend_a"],
            "B": table["backend_b"],
            "A median": table["median_a_s"].map(_duration),
            "B median": table["median_b_s"].map(_duration),
            "B/A [95% CI]": [_ratio(r, lo, hi) for r, lo, hi in table[["ratio", "ratio_low", "ratio_high"]].values],
            "p": table["p_value"].map(lambda p: "" if _missing(p) else f"{p:.2g}"),
            "change": table["change"],
            "why": table["basis"],
        }
    )
    if (shown["A"] == shown["B"]).all():
        shown = shown.drop(columns=["B"]).rename(columns={"A": "backend"})
    header = (
        f"A: {a.label}\nB: {b.label}\n"
        f"significant (asv's rule): B/A beyond x{factor:g} (or /{factor:g}) and Mann-Whitney p < {alpha:g} "
        "(on the passes' medians with several passes), or where that p cannot be reached, 99% intervals apart\n"
    )
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 70, "display.width", 250):
        return header + "\n" + shown.to_string(index=False) + "\n\n" + summary(table) + "\n"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _plain(value):
    if _missing(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _duration(seconds) -> str:
    if _missing(seconds):
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _ratio(value, low, high) -> str:
    if _missing(value):
        return ""
    interval = "" if _missing(low) or _missing(high) else f" [{low:.3f}, {high:.3f}]"
    return f"{value:.3f}{interval}"


def run_compare(
    spec_a: str,
    spec_b: str,
    results_dir: Path | str = DEFAULT_DIR,
    run_spec: str | None = None,
    factor: float = DEFAULT_FACTOR,
    alpha: float = DEFAULT_ALPHA,
) -> tuple[pd.DataFrame, Selection, Selection]:
    results_dir = Path(results_dir)
    a, b = resolve(spec_a, results_dir, run_spec), resolve(spec_b, results_dir, run_spec)
    return compare(a, b, factor, alpha), a, b
