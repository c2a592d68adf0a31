"""`opbench profile TARGET`: one model (a zoo name, or a user's `module:factory`) verified, timed and profiled on
each backend, written as a result file, and summarized as a report of that model alone.

The path is the suite's: `measure.measure` prepares the case on the backend, checks it against eager and hands the
bound call to a timer; here the timer is a plain `time.perf_counter` loop (warm-up, then rounds for `seconds`), not
pytest-benchmark, because no pytest session runs. `profile.profile_pass` then takes the profiling pass, as the
models suite does. Everything a user can get wrong about the target is checked before anything is measured or
written (OpbenchError, one line).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from opbench.attribution import OpRow, breakdown, categorize
from opbench.backends import RunConfig, get_backend, parse_backends, unavailable_reason
from opbench.case import Case, make_case
from opbench.errors import ANSI, BackendUnavailable, OpbenchError, error_line, first_line
from opbench.measure import path as measuring
from opbench.measure.profile_pass import profile_pass
from opbench.results import Result, Stats
from opbench.stats import median

KEY = "profile"  # the suite key of a user's model (ids profile/<module>.<factory>); zoo models keep models/<name>
DEFAULT_INPUT = (1, 3, 224, 224)


def out_of_memory(exc: BaseException) -> bool:
    """Whether an exception is the allocator giving up (PyTorch's CPU allocator raises a plain RuntimeError)."""
    return isinstance(exc, MemoryError | torch.OutOfMemoryError) or "can't allocate memory" in str(exc)


def load_factory(target: str) -> Callable[[], nn.Module]:
    """`package.module:factory` or `path/to/file.py:factory` -> the callable."""
    where, _, name = target.rpartition(":")
    if not where or not name:
        raise OpbenchError(f"target {target!r} is not MODULE:FACTORY, FILE.py:FACTORY or a zoo model name")
    try:
        if where.endswith(".py"):
            path = Path(where).resolve()
            if not path.is_file():
                raise OpbenchError(f"target {target!r}: no such file {where}")
            spec = importlib.util.spec_from_file_location(f"opbench_target_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(path.parent))  # the file may import its neighbours
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(path.parent))
        else:
            module = importlib.import_module(where)
    except OpbenchError:
        raise
    except Exception as exc:
        raise OpbenchError(f"target {target!r} does not import: {error_line(exc)}") from exc
    factory = getattr(module, name, None)
    if not callable(factory):
        raise OpbenchError(f"target {target!r}: {where} has no callable {name!r}")
    return factory


def target_case(target: str, input_shape: tuple[int, ...] | None = None) -> Case:
    """The target as a case, checked: a zoo model name, or a factory (`--input`, default 1x3x224x224)."""
    from opbench.suites.models import model_case
    from opbench.zoo import ZOO

    if ":" not in target:
        if target not in ZOO:
            raise OpbenchError(f"{target!r} is no zoo model (choose from {', '.join(ZOO)}) and no MODULE:FACTORY")
        case = model_case(target)
        if input_shape and input_shape != case.input_shape:
            case = make_case(KEY, "", target, case.factory, input_shape, KEY, case.description)
    else:
        where, _, name = target.rpartition(":")
        factory = load_factory(target)
        variant = f"{Path(where).stem if where.endswith('.py') else where}.{name}"
        case = make_case(KEY, "", variant, factory, input_shape or DEFAULT_INPUT, KEY, target)
    check_model(case)
    return case


def check_model(case: Case) -> None:
    """OpbenchError unless the factory returns an nn.Module that takes the input and answers it deterministically
    in eval mode (twice the same output for the same input): a backend's check against eager needs that."""
    name = case.description or case.id
    try:
        made = case.factory()
    except Exception as exc:
        raise OpbenchError(f"{name}: the factory raised {error_line(exc)}") from exc
    if not isinstance(made, nn.Module):
        raise OpbenchError(f"{name}: the factory returned a {type(made).__name__}, not a torch.nn.Module")
    module, x = case.build(), case.example_input()
    shape = "x".join(map(str, case.input_shape))
    try:
        with torch.inference_mode():
            first, second = module(x), module(x)
    except Exception as exc:
        if out_of_memory(exc):
            raise OpbenchError(
                f"{name}: ran out of memory on input {shape} ({error_line(exc)}); give a smaller --input"
            ) from exc
        raise OpbenchError(f"{name}: the model rejects input {shape} ({error_line(exc)}); give --input") from exc
    if not isinstance(first, torch.Tensor):
        raise OpbenchError(f"{name}: the model returns a {type(first).__name__}; opbench needs one tensor out")
    atol, rtol = measuring.TOLERANCES["float32"]
    if not torch.allclose(first, second, atol=atol, rtol=rtol, equal_nan=True):
        err = float((first - second).abs().max())
        raise OpbenchError(
            f"{name}: two runs on the same input differ by up to {err:.3g} in eval mode (dropout or other randomness "
            "left on?); a backend cannot be checked against a model that is not deterministic"
        )


def perf_counter_timer(seconds: float, warmup: int = 10, min_rounds: int = 20, max_rounds: int = 2000):
    """A timer for measure.measure: warm-up calls, then one sample per call for about `seconds`."""
    samples: list[float] = []

    def timer(run: Callable[[], object]) -> None:
        for _ in range(warmup):
            run()
        end = time.perf_counter() + seconds
        while len(samples) < max_rounds and (len(samples) < min_rounds or time.perf_counter() < end):
            start = time.perf_counter()
            run()
            samples.append(time.perf_counter() - start)

    return timer, samples


@dataclass
class Profiled:
    """What `opbench profile` found: one result per backend that ran, and the backends that could not."""

    case: Case
    results: list[Result] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)


def run_profile(
    case: Case, backends: str, config: RunConfig, seconds: float, progress: Callable[[str], None]
) -> Profiled:
    """Verify, time and profile the case on each backend ('all': every one available here), a line per backend."""
    found = Profiled(case)
    config = replace(config, profiled=True)
    names = parse_backends(backends)
    for name in names:
        if backends.strip() == "all" and (reason := unavailable_reason(name)):
            found.unavailable[name] = reason
            continue
        try:
            backend = get_backend(name)
        except BackendUnavailable as exc:
            found.unavailable[name] = str(exc)
            progress(f"{name}: unavailable: {exc}")
            continue
        timer, samples = perf_counter_timer(seconds)
        outcome = measuring.measure(case, backend, config, timer)
        stats = Stats.from_samples(samples, 1) if outcome.status == "ok" else None
        profiled = profile_pass(case, backend, config, stats.median_s) if stats else None
        found.results.append(measuring.to_result(case, backend, outcome, config, stats, profiled))
        progress(f"{name}: {summary_line(found.results[-1])}")
    if not any(r.ok for r in found.results):
        reasons = "; ".join(f"{r.backend}: {r.status}: {r.reason}" for r in found.results) or "no backend available"
        raise OpbenchError(f"{case.id} could not be timed on any backend ({reasons})")
    return found


def summary_line(result: Result) -> str:
    if not result.ok:
        return f"{result.status}: {first_line(result.reason)}"
    e = median(result.stats.samples, result.stats.median_s)
    gmacs = (result.macs or 0) / e.value / 1e9
    prof = result.profile or {}
    if "rows" in prof:
        b = breakdown([OpRow.from_json(r) for r in prof["rows"]], prof["e2e_median_s"])
        where = f"profiled, {len(prof['rows'])} operators, coverage {b.coverage:.2f}"
    else:
        where = f"no profile ({prof.get('unavailable', 'not taken')})"
    return f"ok, {e.value * 1e3:.3f} ms [{e.low * 1e3:.3f}, {e.high * 1e3:.3f}], {gmacs:.1f} GMAC/s; {where}"


def render_text(found: Profiled, top: int = 8) -> str:
    """The report of one model: latency per backend with its 95% interval and GMAC/s, then per backend the time
    by category (with coverage) and the slowest operators."""
    case, costs = found.case, found.case.costs
    lines = [
        f"# opbench profile: {case.id}",
        "",
        f"input {'x'.join(map(str, case.input_shape))}, {costs.macs / 1e6:,.1f} MMACs, "
        f"{costs.param_count / 1e6:,.2f} M parameters",
        "",
        "## End-to-end latency (median, 95% bootstrap interval)",
        "",
        f"{'backend':<22}{'status':<13}{'median ms':>10}  {'95% interval':<20}{'GMAC/s':>8}",
    ]
    for r in found.results:
        if r.ok:
            e = median(r.stats.samples, r.stats.median_s)
            lines.append(
                f"{r.backend:<22}{'ok':<13}{e.value * 1e3:>10.3f}  [{e.low * 1e3:.3f}, {e.high * 1e3:.3f}]"
                f"{'':<3}{(r.macs or 0) / e.value / 1e9:>8.1f}"
            )
        else:
            lines.append(f"{r.backend:<22}{r.status:<13}{'-':>10}  {first_line(r.reason, 200)}")
    for name, reason in found.unavailable.items():
        lines.append(f"{name:<22}{'unavailable':<13}{'-':>10}  {reason[:200]}")
    for r in found.results:
        prof = r.profile or {}
        lines += ["", f"## Where the time goes on {r.backend}", ""]
        if "rows" not in prof:
            lines.append(f"no profile: {ANSI.sub('', prof.get('unavailable', r.reason))}")
            continue
        rows = [OpRow.from_json(x) for x in prof["rows"]]
        b = breakdown(rows, prof["e2e_median_s"], top)
        lines += [b.table(), "", f"top {top} operators:", f"{'ms':>9}  {'category':<14}{'op':<28}module"]
        for row in b.top:
            lines.append(f"{row.time_s * 1e3:>9.3f}  {categorize(row):<14}{row.op_type[:27]:<28}{row.scope or '-'}")
    return "\n".join(lines) + "\n"
