"""Encryption at rest under inbound load: the `load` run on SQLite with and without a KEK.

The same pre-signed verification requests are posted by wrk to `migex serve --workers 2`
with `privacy.kek_files` set (every accepted body sealed with AES-256-GCM under a fresh
data key, wrapped by the KEK) and without it, alternately, `ROUNDS` times each, each
run on a fresh database. The figure is the median over rounds of the ratio of the two
runs of a round (adjacent in time, so they share the machine's load of the moment):
the target is that sealing costs at most 10 %. The ratio of the medians is printed too.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from benchmarks import nodes
from benchmarks.figures import OUT, Figure, at_least, print_figure, run_alone
from benchmarks.load import SIGNED_PER_SECOND, WARMUP_SECONDS, run_node, sign_messages

NAME = "atrest"
ROUNDS = 3


def write_kek(path: Path) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(os.urandom(32))
    return path


def _rate(result: dict[str, Any]) -> float:
    return float(result["accepted"]) / (result["duration_us"] / 1e6)


def run(quick: bool = False) -> list[Figure]:
    seconds = 5 if quick else 15
    command = "bash benchmarks/run --only atrest" + (" --quick" if quick else "")
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "atrest-wrk.log"
    log.write_text("")
    rates: dict[str, list[float]] = {"off": [], "on": []}
    p99: dict[str, list[float]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="migex-bench-atrest-") as tmp_name:
        tmp = Path(tmp_name)
        kz = nodes.make_party(tmp, "KZ:MIA")
        uz = nodes.make_party(tmp, "UZ:MIA")
        privacy = {"kek_files": [{"id": "bench-1", "file": str(write_kek(tmp / "kek"))}]}
        warm, main = tmp / "warm.txt", tmp / "main.txt"
        started = time.monotonic()
        sign_messages(uz, SIGNED_PER_SECOND * WARMUP_SECONDS, warm)
        sign_messages(uz, SIGNED_PER_SECOND * seconds, main)
        print(f"  signed the messages in {time.monotonic() - started:.1f} s", flush=True)
        for round_ in range(ROUNDS):
            for mode in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                label = f"{mode}-{round_}"
                database = nullcontext(f"sqlite:///{tmp / (label + '.db')}")
                result = run_node(
                    tmp,
                    f"atrest-{label}",
                    database,
                    kz,
                    uz,
                    warm,
                    main,
                    seconds,
                    log,
                    privacy=privacy if mode == "on" else None,
                )
                rates[mode].append(_rate(result))
                p99[mode].append(result["p99_us"] / 1000)
                print(
                    f"  KEK {mode}, round {round_ + 1}: {_rate(result):,.0f} accepted/s", flush=True
                )
    off, on = statistics.median(rates["off"]), statistics.median(rates["on"])
    # Each round's two runs are adjacent in time and share the machine's load of the
    # moment: their ratio is the figure (the median over rounds), the ratio of the
    # medians is shown beside it.
    paired = [a / b for a, b in zip(rates["on"], rates["off"], strict=True)]
    rounds = ", ".join(f"{r:.2f}" for r in paired)
    figures = [
        Figure(
            NAME,
            "SQLite without KEK: accepted messages/s",
            off,
            "msg/s",
            command,
            note=f"median of {ROUNDS}: " + ", ".join(f"{r:,.0f}" for r in rates["off"]),
        ),
        Figure(
            NAME,
            "SQLite with KEK: accepted messages/s",
            on,
            "msg/s",
            command,
            note=f"median of {ROUNDS}: " + ", ".join(f"{r:,.0f}" for r in rates["on"]),
        ),
        Figure(
            NAME, "SQLite without KEK: p99 latency", statistics.median(p99["off"]), "ms", command
        ),
        Figure(NAME, "SQLite with KEK: p99 latency", statistics.median(p99["on"]), "ms", command),
        Figure(NAME, "ratio of the medians, with KEK to without", on / off, "x", command),
        Figure(
            NAME,
            "ratio with KEK to without, same round",
            statistics.median(paired),
            "x",
            command,
            at_least(0.90),
            note=f"rounds: {rounds}",
        ),
    ]
    for figure in figures:
        print_figure(figure)
    return figures


if __name__ == "__main__":
    run_alone(__doc__, run)
