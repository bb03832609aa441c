"""Flat with size: the `load` benchmark's inbound traffic on a node whose log already
holds 10,000,000 entries, against an empty node, in the same run.

The large node's database is written in bulk once (benchmarks/biglog.py) and kept in
benchmarks/out/; each run appends to it and is undone afterwards. Both nodes are
`migex serve --workers 2` on SQLite with the same configuration and take the same
pre-signed messages from wrk (`-t2 -c32`). The runs alternate, empty then large, for
`MIGEX_BENCH_FLAT_ROUNDS` rounds (default 2) so that other load on the machine falls
on both alike; each node's figure is the median of its rounds. After each run on the
large node its latest checkpoint is checked against the built log's with a
consistency proof, and its last entry with an inclusion proof.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from benchmarks import biglog, load, nodes
from benchmarks.auditlog import AUDIT_NAME
from benchmarks.figures import OUT, Figure, Target, at_least, print_figure, run_alone
from service.audit.note import verifier_key

NAME = "flat"
SIZE = 10_000_000
QUICK_SIZE = 100_000
ROUNDS_ENV = "MIGEX_BENCH_FLAT_ROUNDS"


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def _rates(result: dict[str, Any]) -> dict[str, Any]:
    seconds = result["duration_us"] / 1e6
    return {
        **result,
        "rate": result["accepted"] / seconds,
        "p99": result["p99_us"] / 1000,
        "p50": result["p50_us"] / 1000,
    }


@contextmanager
def _checked(big: biglog.BigLog, vkey: str, checks: list[str]) -> Iterator[str]:
    with biglog.appended_to(big) as url:
        yield url
        checks.append(biglog.check_grown(big, url, vkey))


def run(quick: bool = False) -> list[Figure]:
    size = QUICK_SIZE if quick else SIZE
    seconds = 5 if quick else 15
    rounds = max(1, int(os.environ.get(ROUNDS_ENV, "2")))
    command = f"bash benchmarks/run --only {NAME}" + (" --quick" if quick else "")
    if ROUNDS_ENV in os.environ:
        command = f"{ROUNDS_ENV}={rounds} {command}"
    OUT.mkdir(parents=True, exist_ok=True)
    big = biglog.ensure_sqlite(size)
    log = OUT / "flat-wrk.log"
    log.write_text("")
    runs: dict[str, list[dict[str, Any]]] = {"empty": [], "large": []}
    checks: list[str] = []
    with tempfile.TemporaryDirectory(prefix="migex-bench-flat-") as tmp_name:
        tmp = Path(tmp_name)
        kz = big.party()
        uz = nodes.make_party(tmp, "UZ:MIA")
        vkey = verifier_key(AUDIT_NAME, kz.key.private.public_key())  # type: ignore[arg-type]
        warm, main = tmp / "warm.txt", tmp / "main.txt"
        load.sign_messages(uz, load.SIGNED_PER_SECOND * load.WARMUP_SECONDS, warm)
        load.sign_messages(uz, load.SIGNED_PER_SECOND * seconds, main)
        for round_ in range(rounds):
            for label in ("empty", "large"):
                database: AbstractContextManager[str]
                if label == "empty":
                    for stale in tmp.glob("empty.db*"):
                        stale.unlink()
                    database = nullcontext(f"sqlite:///{tmp / 'empty.db'}")
                else:
                    database = _checked(big, vkey, checks)
                load_average = os.getloadavg()[0]
                began = time.monotonic()
                result = load.run_node(tmp, label, database, kz, uz, warm, main, seconds, log)
                r = _rates(result)
                r["load"] = load_average
                runs[label].append(r)
                print(
                    f"    round {round_ + 1}, {label} node: {r['rate']:,.0f} accepted/s, "
                    f"p99 {r['p99']:.1f} ms, {r['requests'] - r['created']} not 201 "
                    f"(load average {load_average:.2f}; {time.monotonic() - began:.0f} s)",
                    flush=True,
                )
    figures = _figures(size, runs, checks, command)
    for figure in figures:
        print_figure(figure)
    return figures


def _figures(
    size: int, runs: dict[str, list[dict[str, Any]]], checks: list[str], command: str
) -> list[Figure]:
    empty, large = runs["empty"], runs["large"]
    rate_e, rate_l = _median(empty, "rate"), _median(large, "rate")
    p99_e, p99_l = _median(empty, "p99"), _median(large, "p99")

    def each(rs: list[dict[str, Any]]) -> str:
        return ", ".join(
            f"{r['rate']:,.0f}/s p99 {r['p99']:.0f} ms (load {r['load']:.1f})" for r in rs
        )

    non201 = sum(r["requests"] - r["created"] for r in empty + large)
    label = f"{size:,} entries"
    return [
        Figure(
            NAME, "empty node: accepted messages/s", rate_e, "msg/s", command, None, each(empty)
        ),
        Figure(NAME, f"{label}: accepted messages/s", rate_l, "msg/s", command, None, each(large)),
        Figure(
            NAME,
            f"{label} / empty: accepted rate",
            rate_l / rate_e,
            "x",
            command,
            at_least(0.9),
            f"medians of {len(large)} alternating rounds",
        ),
        Figure(NAME, "empty node: p99 latency", p99_e, "ms", command),
        Figure(NAME, f"{label}: p99 latency", p99_l, "ms", command),
        Figure(
            NAME,
            f"{label} / empty: p99 latency",
            p99_l / p99_e,
            "x",
            command,
            Target("<=", 1.0),
        ),
        Figure(NAME, "non-201 responses, all runs", float(non201), "", command),
        Figure(
            NAME,
            f"{label}: checkpoints after the runs",
            float(len(checks)),
            "verified",
            command,
            at_least(len(large)),
            checks[-1] if checks else "none checked",
        ),
    ]


if __name__ == "__main__":
    run_alone(__doc__, run)
