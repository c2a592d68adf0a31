"""`opbench profile TARGET`: one model verified, timed and profiled on each backend (opbench.measure.standalone),
written as a result file and a report of that model alone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from opbench.commands.common_args import (
    add_cache_dir,
    add_device_measured,
    add_results_dir,
    add_seconds,
    add_threads,
)
from opbench.errors import OpbenchError
from opbench.options import input_shape


def run(args: argparse.Namespace) -> int:
    from opbench.backends import RunConfig
    from opbench.cache import ArtifactCache
    from opbench.files import atomic_write_text, check_folder
    from opbench.measure.standalone import render_text, run_profile, target_case
    from opbench.results import device_info, new_run, write_run

    check_folder(args.results_dir, "--results-dir")
    if args.out and Path(args.out).is_dir():
        raise OpbenchError(f"--out {args.out} is a folder: name the report file to write, e.g. {args.out}/model.md")
    device = device_info(args.device)
    case = target_case(args.target, args.input)
    out = Path(args.out) if args.out else Path("reports") / "profile" / f"{case.slug}.md"
    check_folder(out.parent, "the folder of --out")
    print(f"opbench profile: {case.id} ({case.costs.macs / 1e6:,.1f} MMACs)", file=sys.stderr)
    config = RunConfig(threads=args.threads, cache=ArtifactCache(args.cache_dir))
    found = run_profile(
        case, args.backends, config, args.seconds, lambda line: print(f"  {line}", file=sys.stderr, flush=True)
    )
    protocol = {"threads": args.threads, "timer": "time.perf_counter loop of `opbench profile` (not pytest-benchmark)",
                "seconds": args.seconds, "target": args.target}  # fmt: skip
    run = new_run(device, found.results, "pytest-benchmark", protocol, unavailable_backends=found.unavailable)
    path = write_run(run, args.results_dir)
    text = render_text(found)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    sys.stdout.write(text)
    print(f"results written to {path}; report written to {out}", file=sys.stderr)
    return 0


def add(sub) -> None:
    p = sub.add_parser(
        "profile",
        help="verify, time and profile one model (zoo name, MODULE:FACTORY or FILE.py:FACTORY) on each backend",
    )
    p.add_argument("target", help="a zoo model (efficientformer_l1), package.module:factory or path/file.py:factory")
    shape = "input shape of a factory's model, e.g. 1x3x224x224 (default)"
    p.add_argument("--input", metavar="SHAPE", type=input_shape, help=shape)
    p.add_argument("--backends", default="all", help="comma-separated backends (default: every one available here)")
    add_threads(p)
    add_seconds(p)
    add_device_measured(p)
    add_results_dir(p)
    add_cache_dir(p)
    p.add_argument("--out", help="the report to write (default: reports/profile/<case>.md)")
    p.set_defaults(func=run)
