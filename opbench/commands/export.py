"""`opbench export`: every selected case as a Core ML package (or ONNX file), with a manifest and a template for
the numbers measured on the device."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from opbench.commands.common_args import add_cache_dir, add_selection, selected_cases
from opbench.errors import first_line


def run(args: argparse.Namespace) -> int:
    from opbench.backends import export_format
    from opbench.cache import ArtifactCache
    from opbench.export import DEFAULT_OUT, MANIFEST, TEMPLATE, export_cases

    fmt = export_format(args.backend, args.precision, args.target)
    cases = selected_cases(args)
    out = Path(args.out) if args.out else DEFAULT_OUT / fmt.name
    start = time.perf_counter()
    manifest = export_cases(cases, fmt, out, ArtifactCache(args.cache_dir), args.grid)
    ok = [e for e in manifest["entries"] if e["status"] == "ok"]
    print(
        f"{len(manifest['entries'])} cases in {time.perf_counter() - start:.1f} s: {len(ok)} exported, "
        f"{len(manifest['entries']) - len(ok)} unsupported -> {out / MANIFEST}, {out / TEMPLATE}",
        file=sys.stderr,
    )
    for entry in manifest["entries"]:
        if entry["status"] != "ok":
            print(f"  unsupported: {entry['case']}: {first_line(entry['reason'], 200)}", file=sys.stderr)
    return 0


def add(sub) -> None:
    from opbench.backends import EXPORT_FORMATS

    p = sub.add_parser("export", help="write every case as a Core ML package (or ONNX file), a manifest and a template")
    p.add_argument("--backend", required=True, choices=list(EXPORT_FORMATS), help="what to export to")
    add_selection(p)
    p.add_argument("--out", help="folder for the packages, manifest.json and template.csv (default: exports/<backend>)")
    p.add_argument("--precision", default="float32", help="compute precision: float32 (default) or float16 (Core ML)")
    p.add_argument("--target", help="Core ML minimum deployment target (default: iOS15)")
    add_cache_dir(p)
    p.set_defaults(func=run)
