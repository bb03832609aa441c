"""Standalone audit appends through the group committer, on SQLite and PostgreSQL.

Several threads each submit one `AuditOnly` unit at a time (a `delivery.attempt`-like
entry with a message id and digest) and wait for its future, as request handlers do.
The figure is committed appends per second, with the batches the writer formed.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from benchmarks import nodes
from benchmarks.figures import Figure, at_least, print_figure, run_alone
from service.audit.checkpoint import Checkpoint, sign_checkpoint
from service.audit.entries import DELIVERY_ATTEMPT, AuditEvent
from service.db import migrate
from service.db.engine import create_engines
from service.ledger.committer import AuditOnly, GroupCommitter
from service.protocol.keys import generate_private_key

NAME = "append"
THREADS = 128
TARGET = 5000


def _event(i: int) -> AuditEvent:
    return AuditEvent(
        event=DELIVERY_ATTEMPT,
        outcome="delivered",
        party="UZ:MIA",
        sender="KZ:MIA",
        recipient="UZ:MIA",
        message_id=str(uuid.uuid4()),
        type="citizenship.verification-request",
        agreement="kz-uz-2019",
        purpose="identity-verification",
        digest="sha-256:" + hashlib.sha256(i.to_bytes(8, "big")).hexdigest(),
        detail={"attempt": 1, "http_status": 201},
    )


def measure(url: str, seconds: float) -> tuple[int, float, int]:
    """Run THREADS submitters for `seconds`; return (appends, elapsed, batches)."""
    engines = create_engines(url)
    migrate.upgrade(engines.writer)
    audit_key = generate_private_key("ed25519")

    def sign(size: int, root: bytes) -> str:
        return sign_checkpoint(Checkpoint("migex/KZ:MIA", size, root), "migex/KZ:MIA", audit_key)  # type: ignore[arg-type]

    committer = GroupCommitter(
        engines,
        node="KZ:MIA",
        clock=time.time,
        sign_checkpoint=sign,
        checkpoint_interval=1.0,
        gather_seconds=0.001,  # as the node runs it (service/runtime.py)
    )
    committer.start()
    try:
        # Warm up: first batches read the frontier and compile the statements.
        for i in range(200):
            committer.run_sync(AuditOnly([_event(i)]))
        stop = threading.Event()
        counts = [0] * THREADS

        def submitter(slot: int) -> Callable[[], None]:
            def work() -> None:
                n = 0
                while not stop.is_set():
                    committer.run_sync(AuditOnly([_event(n)]))
                    n += 1
                counts[slot] = n

            return work

        threads = [threading.Thread(target=submitter(i)) for i in range(THREADS)]
        batches_before = committer.batches
        started = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        return sum(counts), elapsed, committer.batches - batches_before
    finally:
        committer.stop()
        engines.dispose()


def run(quick: bool = False) -> list[Figure]:
    seconds = 2.0 if quick else 6.0
    command = "bash benchmarks/run --only append" + (" --quick" if quick else "")
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="migex-bench-append-") as tmp:
        databases: list[tuple[str, AbstractContextManager[str] | None]] = [
            ("SQLite", nullcontext(f"sqlite:///{Path(tmp) / 'append.db'}")),
            ("PostgreSQL", nodes.pg_database("append") if nodes.pg_available() else None),
        ]
        for label, database in databases:
            name = f"{label}: appends/s ({THREADS} threads)"
            if database is None:
                figure = Figure(
                    NAME, name, None, "/s", command, at_least(TARGET), "PostgreSQL not reachable"
                )
            else:
                with database as url:
                    appends, elapsed, batches = measure(url, seconds)
                note = f"{appends:,} in {elapsed:.1f} s, {batches:,} batches of {appends / max(batches, 1):.1f} on average"
                figure = Figure(
                    NAME, name, appends / elapsed, "/s", command, at_least(TARGET), note
                )
            print_figure(figure)
            figures.append(figure)
    return figures


if __name__ == "__main__":
    run_alone(__doc__, run)
