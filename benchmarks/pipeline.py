"""Processor time per inbound message, in one process, without HTTP.

A steady yardstick for the inbound path on a busy machine: the node's ASGI app (every
middleware, the route, the checks, the group commit) is called directly with
`CONCURRENCY` requests in flight, and the process's CPU time (all its threads, the
database's C code included) is divided by the messages accepted. Wall-clock rates
move with other work on the machine; CPU time per message moves far less.

    .venv/bin/python -m benchmarks.pipeline [--messages N] [--pg] [--profile FILE]

`--profile` writes a cProfile (processor time of the event loop's thread) of the
measured run (`python -m pstats FILE`). Instructions, which other work on the machine
does not change, are counted with callgrind (slow: use a few hundred messages):

    MIGEX_BENCH_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file=pipeline.cg .venv/bin/python -m benchmarks.pipeline \
        --messages 300 --warm 300
    callgrind_annotate pipeline.cg | head
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import logging.config
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from benchmarks import nodes
from benchmarks.load import sign_messages
from service.config import load_config
from service.logs import lean_records, log_config
from service.main import create_app
from service.observability.metrics import MULTIPROC_ENV

CONCURRENCY = 32
CALLGRIND_ENV = "MIGEX_BENCH_CALLGRIND"


async def post(app: FastAPI, body: bytes) -> int:
    """One `POST /v1/messages` through the ASGI app; its status."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/messages",
        "raw_path": b"/v1/messages",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/jose"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "app": app,
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status


async def drive(app: FastAPI, bodies: list[bytes]) -> dict[str, int]:
    statuses: dict[str, int] = {}
    queue = iter(bodies)

    async def client() -> None:
        for body in queue:
            status = str(await post(app, body))
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return statuses


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    async with app.router.lifespan_context(app):
        yield


@contextmanager
def instructions_counted() -> Iterator[None]:
    """Under `valgrind --tool=callgrind --instr-atstart=no`, count the instructions of
    the measured run only (a figure that other work on the machine does not move)."""
    if not os.environ.get(CALLGRIND_ENV):
        yield
        return
    control = ["callgrind_control", "--instr"]
    subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)


@contextmanager
def profiling(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(str(path))


def thread_cpu() -> dict[str, float]:
    """Processor seconds used so far by each thread of this process, by name."""
    hz = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        name = names.get(int(tid), "other")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / hz
    return out


async def measure(config: Path, warm: list[bytes], main: list[bytes], profile: Path | None) -> None:
    app = create_app(
        load_config(config), run_delivery=False, run_witnessing=False, freeze_heap=True
    )
    async with running(app):
        await drive(app, warm)
        threads = thread_cpu()
        cpu, wall = time.process_time(), time.perf_counter()
        with profiling(profile), instructions_counted():
            statuses = await drive(app, main)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        after = thread_cpu()
    accepted = max(statuses.get("201", 0), 1)
    per_thread = ", ".join(
        f"{name} {(after[name] - threads.get(name, 0.0)) / accepted * 1e6:.0f}"
        for name in sorted(after)
        if after[name] > threads.get(name, 0.0)
    )
    print(
        f"{accepted:,} accepted of {len(main):,} ({statuses}); "
        f"{cpu / accepted * 1e6:.0f} us CPU a message ({per_thread}), "
        f"{len(main) / wall:.0f} messages/s in one process"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--warm", type=int, default=1000, help="messages sent before measuring")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    # As `migex serve --workers 2` runs: JSON log lines on standard error (send them
    # to /dev/null), counters in multiprocess files.
    logging.config.dictConfig(log_config())
    lean_records()
    with tempfile.TemporaryDirectory(prefix="migex-bench-pipeline-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "metrics").mkdir()
        os.environ.setdefault(MULTIPROC_ENV, str(tmp / "metrics"))
        kz, uz = nodes.make_party(tmp, "KZ:MIA"), nodes.make_party(tmp, "UZ:MIA")
        signed = tmp / "signed.txt"
        sign_messages(uz, args.messages + args.warm, signed)
        bodies = signed.read_bytes().splitlines()
        database: AbstractContextManager[str] = (
            nodes.pg_database("pipeline") if args.pg else nullcontext(f"sqlite:///{tmp / 'db'}")
        )
        with database as url:
            cfg = nodes.node_config(
                kz, uz, database_url=url, port=9, partner_port=9, inbound=True, outbound=False
            )
            config = nodes.write_config(tmp / "kz.yaml", cfg)
            asyncio.run(measure(config, bodies[: args.warm], bodies[args.warm :], args.profile))


if __name__ == "__main__":
    main()
