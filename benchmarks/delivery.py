"""End-to-end delivery between two nodes on loopback: KZ (A) sends to UZ (B).

Both nodes run `migex serve --workers 2` on SQLite. A driver queues verification requests at A
through its local API (POST /v1/outbox, client token) with a fixed concurrency; A's
delivery worker signs nothing new (the message was signed when queued), posts each
to B, which verifies, stores and receipts it; A verifies the receipt and marks the
message delivered. The figure is messages per second from the first POST to the
moment every message is delivered, read from A's outbox table; B's inbox is counted
too. It is measured with the delivery worker's concurrency (`delivery.concurrency`, per
process) at 8, 16 and 32.

Transports are compared by naming them in MIGEX_BENCH_DELIVERY_TRANSPORTS (a comma list,
each passed to the sending node as MIGEX_DELIVERY_TRANSPORT) with a number of rounds in
MIGEX_BENCH_DELIVERY_ROUNDS: at each concurrency the runs alternate (A B A B ...), so
that the machine's other load falls on both alike, and each figure is the median of its
rounds, with the load average before every run in its note.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from benchmarks import nodes
from benchmarks.figures import OUT, Figure, at_least, print_figure, run_alone

NAME = "delivery"
SUBMITTERS = 32
WORKERS = 2
TARGET = 500
CONCURRENCIES = (8, 16, 32)
# A run that has not delivered everything by then reports the rate it reached.
DEADLINE_SECONDS = 45.0
TRANSPORTS_ENV = "MIGEX_BENCH_DELIVERY_TRANSPORTS"
ROUNDS_ENV = "MIGEX_BENCH_DELIVERY_ROUNDS"


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT state, count(*) FROM outbox GROUP BY state")).all()
        return {str(state): int(n) for state, n in rows}
    finally:
        engine.dispose()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one HTTP/1.1 request on a kept-alive connection; return the response status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


def outbox_request(port: int, item: dict[str, Any]) -> bytes:
    """The bytes of one `POST /v1/outbox` of `item` (JSON) with the client token."""
    body = json.dumps(item).encode()
    return (
        b"POST /v1/outbox HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s"
    ) % (port, nodes.CLIENT_TOKEN.encode(), len(body), body)


async def post_all(port: int, requests: list[bytes], submitters: int) -> tuple[int, float]:
    """Send each of `requests` (whole `POST /v1/outbox` requests) once, over `submitters`
    kept-alive connections; return (how many were answered 202, seconds).

    A minimal HTTP/1.1 client keeps the driver's own cost far below the node's, so the
    figure is the node's.
    """
    remaining = iter(requests)
    queued = 0
    refused: dict[int, int] = {}

    async def submitter() -> None:
        nonlocal queued
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in remaining:
                status = await _exchange(reader, writer, request)
                if status == 202:
                    queued += 1
                else:
                    refused[status] = refused.get(status, 0) + 1
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(submitter() for _ in range(submitters)))
    if refused:
        print(f"    outbox refused: {refused}", flush=True)
    return queued, time.perf_counter() - started


async def _queue(port: int, total: int) -> tuple[int, float]:
    """POST `total` verification requests to A's outbox over SUBMITTERS connections."""
    item = {
        "to": "UZ:MIA",
        "type": nodes.VERIFICATION,
        "agreement": "kz-uz-2019",
        "purpose": "identity-verification",
        "body": nodes.example_body(),
    }
    return await post_all(port, [outbox_request(port, item)] * total, SUBMITTERS)


def measure(
    tmp: Path, concurrency: int, total: int, transport: str | None = None
) -> dict[str, Any]:
    kz = nodes.make_party(tmp, "KZ:MIA")
    uz = nodes.make_party(tmp, "UZ:MIA")
    port_a, port_b = nodes.free_port(), nodes.free_port()
    url_a = f"sqlite:///{tmp / 'a.db'}"
    url_b = f"sqlite:///{tmp / 'b.db'}"
    config_a = nodes.write_config(
        tmp / "a.yaml",
        nodes.node_config(
            kz,
            uz,
            database_url=url_a,
            port=port_a,
            partner_port=port_b,
            inbound=False,
            outbound=True,
            delivery_concurrency=concurrency,
        ),
    )
    config_b = nodes.write_config(
        tmp / "b.yaml",
        nodes.node_config(
            uz,
            kz,
            database_url=url_b,
            port=port_b,
            partner_port=port_a,
            inbound=True,
            outbound=False,
        ),
    )
    sender = nodes.migex_server(config_a, port_a, tmp / "a.log", WORKERS)
    if transport is not None:
        sender.env = {"MIGEX_DELIVERY_TRANSPORT": transport}
    with nodes.migex_server(config_b, port_b, tmp / "b.log", WORKERS), sender:
        started = time.perf_counter()
        queued, queue_seconds = asyncio.run(_queue(port_a, total))
        deadline = started + DEADLINE_SECONDS
        while True:  # read at least once, also when queueing outlasted the deadline
            counts = _counts(url_a)
            done = counts.get("delivered", 0) + counts.get("failed", 0) >= queued
            if done or time.perf_counter() >= deadline:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        received = nodes.accepted_count(url_b)
    label = f"{concurrency}-{transport}" if transport else f"{concurrency}"
    for name in ("a", "b"):
        (OUT / f"delivery-{label}-{name}.log").write_text((tmp / f"{name}.log").read_text())
    return {
        "queued": queued,
        "queue_seconds": queue_seconds,
        "delivered": counts.get("delivered", 0),
        "failed": counts.get("failed", 0),
        "pending": counts.get("pending", 0),
        "received": received,
        "seconds": elapsed,
    }


def run(quick: bool = False) -> list[Figure]:
    total = 1000 if quick else 3000
    transports: list[str | None] = [
        name.strip() for name in os.environ.get(TRANSPORTS_ENV, "").split(",") if name.strip()
    ] or [None]
    rounds = max(1, int(os.environ.get(ROUNDS_ENV, "1")))
    command = "bash benchmarks/run --only delivery" + (" --quick" if quick else "")
    if transports != [None]:
        command = (
            f"{TRANSPORTS_ENV}={','.join(map(str, transports))} {ROUNDS_ENV}={rounds} {command}"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    for concurrency in CONCURRENCIES:
        runs: dict[str | None, list[dict[str, Any]]] = {name: [] for name in transports}
        for round_ in range(rounds):
            for name in transports:
                load = os.getloadavg()[0]
                with tempfile.TemporaryDirectory(prefix="migex-bench-delivery-") as tmp:
                    r = measure(Path(tmp), concurrency, total, name)
                r["load"] = load
                r["rate"] = r["delivered"] / r["seconds"]
                runs[name].append(r)
                if rounds > 1 or len(transports) > 1:
                    print(
                        f"    concurrency {concurrency}, {name or 'default'}, round {round_ + 1}: "
                        f"{r['rate']:,.0f} msg/s (load average {load:.2f})",
                        flush=True,
                    )
        medians: dict[str | None, float] = {}
        for name, measured in runs.items():
            medians[name] = statistics.median(r["rate"] for r in measured)
            for figure in _figures(name, concurrency, total, measured, medians[name], command):
                print_figure(figure)
                figures.append(figure)
        base = transports[0]
        for name in transports[1:]:
            figure = Figure(
                NAME,
                f"concurrency {concurrency}: {name} / {base}, median delivered rate",
                medians[name] / medians[base],
                "ratio",
                command,
            )
            print_figure(figure)
            figures.append(figure)
    return figures


def _figures(
    transport: str | None,
    concurrency: int,
    total: int,
    runs: list[dict[str, Any]],
    rate: float,
    command: str,
) -> tuple[Figure, Figure]:
    label = f"concurrency {concurrency}" + (f", {transport}" if transport else "")
    complete = all(r["delivered"] == total and r["received"] == total for r in runs)
    if len(runs) == 1:
        r = runs[0]
        note = (
            f"{r['delivered']:,} of {total:,} delivered in {r['seconds']:.1f} s "
            f"(queued in {r['queue_seconds']:.1f} s, {r['queued'] / r['queue_seconds']:,.0f}/s); "
            f"B received {r['received']:,}; failed {r['failed']}, pending {r['pending']}"
        )
    else:
        note = f"median of {len(runs)} rounds: " + ", ".join(
            f"{r['rate']:,.0f} (load {r['load']:.1f})" for r in runs
        )
    queued = statistics.median(r["queued"] / r["queue_seconds"] for r in runs)
    return (
        Figure(
            NAME,
            f"{label}: delivered end to end",
            rate,
            "msg/s",
            command,
            at_least(TARGET),
            ("" if complete else "INCOMPLETE: ") + note,
        ),
        Figure(NAME, f"{label}: queued at A", queued, "msg/s", command),
    )


if __name__ == "__main__":
    run_alone(__doc__, run)
