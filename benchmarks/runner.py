"""Run the benchmarks in turn and print every figure beside its target.

    bash benchmarks/run [--quick] [--only NAME ...]

Figures are also written to benchmarks/out/results.json, with the machine's load
average before each benchmark, since other processes on the machine change them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback

from benchmarks.figures import Figure, print_commands, print_table, save

BENCHMARKS = (
    "load",
    "append",
    "proofs",
    "verify",
    "delivery",
    "attachments",
    "flood",
    "witness",
    "console",
    "flat",
    "memory",
    "delivery_ratio",
    "atrest",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, 100,000-entry logs")
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS, metavar="NAME", help=", ".join(BENCHMARKS)
    )
    args = parser.parse_args(argv)
    chosen = args.only or list(BENCHMARKS)
    figures: list[Figure] = []
    failed: list[str] = []
    started = time.monotonic()
    for name in chosen:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\n== {name} (load average before: {load})", flush=True)
        began = time.monotonic()
        module = importlib.import_module(f"benchmarks.{name}")
        try:
            measured: list[Figure] = module.run(quick=args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        figures.extend(
            Figure(f.benchmark, f.name, f.value, f.unit, f.command, f.target, f.note)
            for f in measured
        )
        print(f"   ({time.monotonic() - began:.0f} s)", flush=True)
    print(f"\nSummary ({time.monotonic() - started:.0f} s{', quick' if args.quick else ''})")
    print_table(figures)
    print_commands(figures)
    save(figures, [n for n in chosen if n not in failed])
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
