"""Delivery against inbound in the same run: end-to-end delivery between two nodes
must reach at least half of one node's inbound rate.

Each round measures, one after the other on the same machine, the `load` benchmark's
inbound rate (wrk `-t2 -c32` posting pre-signed verification requests to `migex serve
--workers 2` on SQLite, accepted messages counted in the database) and the `delivery`
benchmark's end-to-end rate (two such nodes, messages queued at KZ through `POST
/v1/outbox` until every one is delivered to UZ and its receipt verified at KZ, with
`delivery.concurrency` `CONCURRENCY`). The figure is the ratio of the medians over
`MIGEX_BENCH_DELIVERY_RATIO_ROUNDS` rounds (default 1), with the load average before
each measurement in the notes.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from contextlib import nullcontext
from pathlib import Path

from benchmarks import delivery, load, nodes
from benchmarks.figures import OUT, Figure, at_least, print_figure, run_alone

NAME = "delivery_ratio"
CONCURRENCY = 16
ROUNDS_ENV = "MIGEX_BENCH_DELIVERY_RATIO_ROUNDS"


def inbound_rate(
    tmp: Path, uz: nodes.Party, warm: Path, main: Path, seconds: int, log: Path
) -> float:
    """Accepted messages per second of one `load` run on a fresh SQLite node."""
    kz = nodes.make_party(tmp, "KZ:MIA")
    url = f"sqlite:///{tmp / 'inbound.db'}"
    result = load.run_node(tmp, "inbound", nullcontext(url), kz, uz, warm, main, seconds, log)
    rate: float = result["accepted"] / (result["duration_us"] / 1e6)
    return rate


def run(quick: bool = False) -> list[Figure]:
    seconds = 5 if quick else 15
    total = 1000 if quick else 3000
    rounds = max(1, int(os.environ.get(ROUNDS_ENV, "1")))
    command = f"bash benchmarks/run --only {NAME}" + (" --quick" if quick else "")
    if ROUNDS_ENV in os.environ:
        command = f"{ROUNDS_ENV}={rounds} {command}"
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "delivery-ratio-wrk.log"
    log.write_text("")
    inbound: list[tuple[float, float]] = []
    delivered: list[tuple[float, float]] = []
    complete = True
    with tempfile.TemporaryDirectory(prefix="migex-bench-ratio-") as tmp_name:
        tmp = Path(tmp_name)
        uz = nodes.make_party(tmp, "UZ:MIA")
        warm, main = tmp / "warm.txt", tmp / "main.txt"
        load.sign_messages(uz, load.SIGNED_PER_SECOND * load.WARMUP_SECONDS, warm)
        load.sign_messages(uz, load.SIGNED_PER_SECOND * seconds, main)
        for round_ in range(rounds):
            here = tmp / f"round-{round_}"
            here.mkdir()
            before = os.getloadavg()[0]
            inbound.append((inbound_rate(here, uz, warm, main, seconds, log), before))
            before = os.getloadavg()[0]
            (here / "delivery").mkdir()
            r = delivery.measure(here / "delivery", CONCURRENCY, total)
            complete = complete and r["delivered"] == total and r["received"] == total
            delivered.append((r["delivered"] / r["seconds"], before))
            print(
                f"    round {round_ + 1}: inbound {inbound[-1][0]:,.0f} accepted/s "
                f"(load average {inbound[-1][1]:.2f}), delivered {delivered[-1][0]:,.0f}/s "
                f"(load average {before:.2f})",
                flush=True,
            )
    figures = _figures(inbound, delivered, complete, total, command)
    for figure in figures:
        print_figure(figure)
    return figures


def _figures(
    inbound: list[tuple[float, float]],
    delivered: list[tuple[float, float]],
    complete: bool,
    total: int,
    command: str,
) -> list[Figure]:
    def each(rates: list[tuple[float, float]]) -> str:
        return ", ".join(f"{rate:,.0f} (load {load_average:.1f})" for rate, load_average in rates)

    rate_in = statistics.median(rate for rate, _ in inbound)
    rate_out = statistics.median(rate for rate, _ in delivered)
    note = f"delivery at concurrency {CONCURRENCY}, {total:,} messages a round"
    if not complete:
        note = "INCOMPLETE: not every message was delivered in time; " + note
    return [
        Figure(
            NAME, "inbound: accepted messages/s", rate_in, "msg/s", command, None, each(inbound)
        ),
        Figure(
            NAME,
            "delivery end to end: messages/s",
            rate_out,
            "msg/s",
            command,
            None,
            each(delivered),
        ),
        Figure(NAME, "delivery / inbound", rate_out / rate_in, "x", command, at_least(0.5), note),
    ]


if __name__ == "__main__":
    run_alone(__doc__, run)
