"""`opbench import FILE`: numbers measured on a device (a filled template.csv, or a result file) as a result file."""

from __future__ import annotations

import argparse
import sys

from opbench.commands.common_args import add_device_measured, add_results_dir


def run(args: argparse.Namespace) -> int:
    from opbench.importer import import_file

    path = import_file(
        args.file, args.device, args.backend, args.manifest, args.results_dir, args.kind, args.os, args.protocol
    )
    print(f"imported measurements of {args.device} -> {path}", file=sys.stderr)
    return 0


def add(sub) -> None:
    p = sub.add_parser("import", help="bring numbers measured on a device (filled template.csv or result JSON)")
    p.add_argument("file", help="a filled template.csv, or a result file in opbench's schema (.json)")
    add_device_measured(p, required=True)
    p.add_argument("--backend", help="coreml-all (default), coreml-cpu-gpu or coreml-cpu; any name for ONNX")
    p.add_argument("--manifest", help="manifest.json of the export measured (default: beside FILE, exports/coreml/)")
    p.add_argument("--kind", help="device kind (default: phone for an iPhone, tablet for an iPad, else device)")
    p.add_argument("--os", help='its operating system, e.g. "iOS 17.5"')
    p.add_argument("--protocol", help='how it was measured, e.g. "Xcode 16 performance report, median"')
    add_results_dir(p)
    p.set_defaults(func=run)
