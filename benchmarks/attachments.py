"""Attachments delivered node to node on loopback (protocol v1.1): KZ (A) sends to UZ (B).

Both nodes run `migex serve --workers 2` on SQLite, `delivery.concurrency` 48. Two figures:

- **one large file**: a 1 GiB PDF-like file is handed to A (`POST /v1/files`, streamed,
  not timed), a `migration.violation-notice` naming it is queued, and the time from the
  queueing to A's `delivered` (B has checked digest, size and media type, stored the
  file and signed a receipt listing it) gives MB/s (10^6 bytes). Meanwhile each node's
  resident memory is sampled every 50 ms; the figure is its peak growth over its
  resident memory just before the queueing.
- **many small files**: `COUNT` messages, each naming its own 100 KB file (handed to A
  beforehand, not timed), are queued over 16 connections (by the delivery benchmark's
  minimal HTTP/1.1 driver, whose own cost is far below the nodes'); the figure is messages per
  second from the first queueing to the moment every one is delivered.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from benchmarks import delivery, nodes
from benchmarks.figures import Figure, at_least, below, print_figure
from benchmarks.verify import _tree_rss as tree_rss

NAME = "attachments"
NOTICE = "migration.violation-notice"
PURPOSE = "illegal-migration-control"
MIB = 1024 * 1024
LARGE = 1024 * MIB
SMALL = 100_000
COUNT = 1000
QUICK_COUNT = 300
SUBMITTERS = 16
# Each process of each node; a delivery with a file waits on two round trips and the
# receiver's disk, so more of them are kept in flight than for plain messages.
WORKERS = 2
CONCURRENCY = 48
HEAD = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\n"
TAIL = b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
COMMAND = "bash benchmarks/run --only attachments"


def pdf_blocks(size: int, seed: int, block: int = MIB) -> Iterator[bytes]:
    """A `size`-byte PDF-like file, generated a block at a time."""
    yield HEAD
    left = size - len(HEAD) - len(TAIL)
    filler = hashlib.sha256(str(seed).encode()).digest() * (block // 32)
    while left > 0:
        part = filler[:left]
        left -= len(part)
        yield part
    yield TAIL


def _config(me: nodes.Party, other: nodes.Party, tmp: Path, ports: tuple[int, int]) -> Path:
    cfg = nodes.node_config(
        me, other, database_url=f"sqlite:///{tmp / me.party[:2]}.db", port=ports[0],
        partner_port=ports[1], inbound=True, outbound=True, delivery_concurrency=CONCURRENCY,
    )  # fmt: skip
    cfg["agreements"][0]["covers"].append({"types": [NOTICE], "purposes": [PURPOSE]})
    partner = cfg["partners"][0]
    for rule in partner["rules"]:
        rule["types"], rule["purposes"] = [NOTICE], [PURPOSE]
    partner["attachments"] = {
        "max_count": 1, "max_bytes": 2 * LARGE, "max_total_bytes": 2 * LARGE,
        "media_types": ["application/pdf"],
    }  # fmt: skip
    cfg["attachments"] = {"directory": str(tmp / f"{me.party[:2]}-files")}
    cfg["delivery"].update(timeout_seconds=60, lease_seconds=600)
    return nodes.write_config(tmp / f"{me.party[:2]}.yaml", cfg)


def _client() -> dict[str, str]:
    return {"Authorization": f"Bearer {nodes.CLIENT_TOKEN}"}


def _put(url: str, content: Any) -> dict[str, Any]:
    resp = httpx.post(
        f"{url}/v1/files", content=content, timeout=600,
        headers={**_client(), "Content-Type": "application/pdf"},
    )  # fmt: skip
    resp.raise_for_status()
    held: dict[str, Any] = resp.json()
    return {"name": "decision.pdf", **held}


def _notice(named: dict[str, Any]) -> dict[str, Any]:
    return {
        "to": "UZ:MIA", "type": NOTICE, "agreement": "kz-uz-2019", "purpose": PURPOSE,
        "body": {**nodes.example_body(NOTICE), "attachments": [named]},
    }  # fmt: skip


def _delivered(database: Path, count: int, deadline: float) -> int:
    """Poll A's outbox table until `count` messages are delivered (or the deadline); how
    many are. Read from the database, so that the polling costs the node nothing."""
    engine = create_engine(f"sqlite:///{database}")
    try:
        while True:
            with engine.connect() as conn:
                rows = dict(
                    conn.execute(text("SELECT state, count(*) FROM outbox GROUP BY state")).all()
                )
            if rows.get("failed"):
                raise RuntimeError(f"{rows['failed']} messages failed")
            done = int(rows.get("delivered", 0))
            if done >= count or time.monotonic() > deadline:
                return done
            time.sleep(0.05)
    finally:
        engine.dispose()


class Sampler:
    """The peak resident memory of each process tree, sampled every 50 ms."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.base = {name: tree_rss(pid) for name, pid in pids.items()}
        self.peak = dict(self.base)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], tree_rss(pid))

    def growth_mb(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {n: (self.peak[n] - self.base[n]) / 1e6 for n in self.pids}


def _large(a_url: str, database: Path, pids: dict[str, int]) -> list[Figure]:
    named = _put(a_url, pdf_blocks(LARGE, seed=1))
    sampler = Sampler(pids)
    started = time.monotonic()
    resp = httpx.post(f"{a_url}/v1/outbox", json=_notice(named), headers=_client())
    resp.raise_for_status()
    done = _delivered(database, 1, time.monotonic() + 600)
    seconds = time.monotonic() - started
    growth = sampler.growth_mb()
    rate = LARGE / seconds / 1e6 if done else None
    figures = [
        Figure(NAME, "1 GiB attachment delivered", rate, "MB/s", COMMAND, at_least(100),
               f"{seconds:.1f} s from queueing to delivered"),
    ]  # fmt: skip
    for name, grew in growth.items():
        figures.append(
            Figure(NAME, f"memory growth of {name} during it", grew, "MB", COMMAND, below(50))
        )
    return figures


def _many(a_url: str, database: Path, count: int) -> list[Figure]:
    files = [_put(a_url, b"".join(pdf_blocks(SMALL, seed=i, block=4096))) for i in range(count)]
    port = httpx.URL(a_url).port
    assert port is not None
    requests = [delivery.outbox_request(port, _notice(f)) for f in files]
    started = time.monotonic()
    queued, _ = asyncio.run(delivery.post_all(port, requests, SUBMITTERS))
    if queued != count:
        raise RuntimeError(f"{count - queued} of {count} messages were not queued")
    done = _delivered(database, count + 1, time.monotonic() + 300) - 1  # and the large one
    seconds = time.monotonic() - started
    return [
        Figure(NAME, "messages with a 100 KB attachment", done / seconds, "messages/s",
               COMMAND, at_least(200), f"{done} of {count} delivered in {seconds:.1f} s"),
    ]  # fmt: skip


def run(*, quick: bool = False) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="migex-bench-attach-") as name:
        tmp = Path(name)
        kz, uz = nodes.make_party(tmp, "KZ:MIA"), nodes.make_party(tmp, "UZ:MIA")
        a_port, b_port = nodes.free_port(), nodes.free_port()
        a_cfg = _config(kz, uz, tmp, (a_port, b_port))
        b_cfg = _config(uz, kz, tmp, (b_port, a_port))
        with (
            nodes.migex_server(b_cfg, b_port, tmp / "b.log", workers=WORKERS) as b,
            nodes.migex_server(a_cfg, a_port, tmp / "a.log", workers=WORKERS) as a,
        ):
            a_url = f"http://127.0.0.1:{a_port}"
            database = tmp / "KZ.db"
            figures = _large(a_url, database, {"sender": a.pid, "receiver": b.pid})
            figures += _many(a_url, database, QUICK_COUNT if quick else COUNT)
    for figure in figures:
        print_figure(figure)
    return figures
