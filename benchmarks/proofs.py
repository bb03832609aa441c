"""Proofs and search over a large audit log (1,000,000 entries; 100,000 with --quick).

Times random inclusion and consistency proofs (`service.audit.store`) and searches by
party and time range (`service.audit.queries.search`, first page of 100), each call on
a connection checked out of the node's reader engine for that call alone. Every
proof is checked against the roots afterwards. The SQLite log is built once and kept
in benchmarks/out/; the PostgreSQL run copies it into a fresh database.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg

from benchmarks import auditlog, nodes
from benchmarks.figures import Figure, below, print_figure, run_alone
from service.audit import merkle, store
from service.audit.queries import SearchFilter, search
from service.db import migrate
from service.db.engine import Engines, create_engines
from service.db.tables import audit_entries

NAME = "proofs"
PROOFS = 200
SEARCHES_PER_WIDTH = 20
# Each series stops early once it has taken this long (slow stores still finish).
SERIES_SECONDS = 15.0
WIDTHS = {"1 hour": 3600.0, "1 day": 86400.0, "7 days": 7 * 86400.0}
WARMUP = 10


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.fmean(samples) * 1000, p99 * 1000


def _timed(engines: Engines, calls: list[Callable[[Any], Any]]) -> tuple[list[float], list[Any]]:
    """Time each call on its own connection; stop after SERIES_SECONDS (at least 10 calls)."""
    times: list[float] = []
    results: list[Any] = []
    deadline = time.perf_counter() + SERIES_SECONDS
    for call in calls:
        started = time.perf_counter()
        with engines.reader.connect() as conn:
            results.append(call(conn))
        times.append(time.perf_counter() - started)
        if len(times) >= 10 and started > deadline:
            break
    return times, results


def measure(label: str, url: str, log: auditlog.BuiltLog, command: str) -> list[Figure]:
    rng = random.Random(20260101)
    engines = create_engines(url)
    figures: list[Figure] = []
    try:
        with engines.reader.connect() as conn:
            size = store.read_head(conn).size
            root = store.root_at(conn, size)

        def inclusion(index: int) -> Callable[[Any], list[bytes]]:
            return lambda conn: store.inclusion_proof(conn, index, size)

        def consistency(old: int, new: int) -> Callable[[Any], list[bytes]]:
            return lambda conn: store.consistency_proof(conn, old, new)

        _timed(engines, [inclusion(rng.randrange(size)) for _ in range(WARMUP)])
        indices = [rng.randrange(size) for _ in range(PROOFS)]
        times, proofs = _timed(engines, [inclusion(i) for i in indices])
        with engines.reader.connect() as conn:
            for index, proof in zip(indices, proofs, strict=False):
                leaf = conn.execute(
                    audit_entries.select()
                    .with_only_columns(audit_entries.c.leaf_data)
                    .where(audit_entries.c.idx == index)
                ).scalar_one()
                merkle.verify_inclusion(index, size, merkle.leaf_hash(bytes(leaf)), proof, root)
        mean, p99 = _ms(times)
        figures += [
            Figure(
                NAME,
                f"{label}: inclusion proof p99",
                p99,
                "ms",
                command,
                below(10),
                f"mean {mean:.2f} ms over {len(times)}; all verified",
            ),
            Figure(NAME, f"{label}: inclusion proof mean", mean, "ms", command),
        ]

        pairs = []
        for _ in range(PROOFS + WARMUP):
            old = rng.randrange(1, size)
            pairs.append((old, rng.randrange(old + 1, size + 1) if old < size else size))
        _timed(engines, [consistency(a, b) for a, b in pairs[:WARMUP]])
        times, proofs = _timed(engines, [consistency(a, b) for a, b in pairs[WARMUP:]])
        with engines.reader.connect() as conn:
            for (old, new), proof in zip(pairs[WARMUP:], proofs, strict=False):
                merkle.verify_consistency(
                    old, new, store.root_at(conn, old), store.root_at(conn, new), proof
                )
        mean, p99 = _ms(times)
        figures += [
            Figure(
                NAME,
                f"{label}: consistency proof p99",
                p99,
                "ms",
                command,
                below(10),
                f"mean {mean:.2f} ms over {len(times)}; all verified",
            ),
            Figure(NAME, f"{label}: consistency proof mean", mean, "ms", command),
        ]

        span = auditlog.SPAN_DAYS * 86400.0
        queries: list[tuple[str, SearchFilter]] = []
        for _ in range(SEARCHES_PER_WIDTH):
            for name, width in WIDTHS.items():
                since = auditlog.START + rng.random() * (span - width)
                party = rng.choice(auditlog.PARTIES)
                queries.append((name, SearchFilter(party=party, since=since, until=since + width)))

        def searching(flt: SearchFilter) -> Callable[[Any], int]:
            return lambda conn: len(search(conn, flt, limit=100, before=None)[0])

        _timed(engines, [searching(q) for _, q in queries[:WARMUP]])
        times, counts = _timed(engines, [searching(q) for _, q in queries])
        mean, p99 = _ms(times)
        per_width = []
        for name in WIDTHS:
            part = [t for (n, _), t in zip(queries, times, strict=False) if n == name]
            per_width.append(f"{name}: mean {_ms(part)[0]:.1f} / max {max(part) * 1000:.1f} ms")
        note = (
            f"{len(times)} searches, {statistics.fmean(counts):.0f} results each on average; "
            + "; ".join(per_width)
        )
        figures += [
            Figure(
                NAME, f"{label}: search by party and time p99", p99, "ms", command, below(50), note
            ),
            Figure(NAME, f"{label}: search by party and time mean", mean, "ms", command),
        ]
    finally:
        engines.dispose()
    return figures


def copy_to_postgres(log: auditlog.BuiltLog, url: str) -> None:
    """Copy the built log, row for row, into the (empty, migrated) PostgreSQL database."""
    engines = create_engines(url)
    try:
        migrate.upgrade(engines.writer)
    finally:
        engines.dispose()
    source = sqlite3.connect(log.directory / "node.db")
    try:
        with psycopg.connect(nodes.pg_dsn(url)) as target:
            with target.cursor() as cur:
                columns = "idx, time, event, party, message_id, type, outcome, code, leaf_data"
                with cur.copy(f"COPY audit_entries ({columns}) FROM STDIN") as copy:
                    for row in source.execute(f"SELECT {columns} FROM audit_entries ORDER BY idx"):  # noqa: S608
                        copy.write_row(row)
                with cur.copy("COPY audit_nodes (level, k, hash) FROM STDIN") as copy:
                    for row in source.execute("SELECT level, k, hash FROM audit_nodes"):
                        copy.write_row(row)
                for row in source.execute("SELECT size, root, issued_at, note FROM checkpoints"):
                    cur.execute(
                        "INSERT INTO checkpoints (size, root, issued_at, note) VALUES (%s, %s, %s, %s)",
                        row,
                    )
                # With the frontier and last time, so a node can append to the copy.
                head = source.execute(
                    "SELECT size, root, checkpoint_size, checkpoint_at, frontier, last_time "
                    "FROM audit_head WHERE id = 1"
                ).fetchone()
                cur.execute(
                    "UPDATE audit_head SET size = %s, root = %s, checkpoint_size = %s, "
                    "checkpoint_at = %s, frontier = %s, last_time = %s WHERE id = 1",
                    head,
                )
        with psycopg.connect(nodes.pg_dsn(url), autocommit=True) as target:
            target.execute("VACUUM ANALYZE")
    finally:
        source.close()


def run(quick: bool = False) -> list[Figure]:
    size = 100_000 if quick else 1_000_000
    command = "bash benchmarks/run --only proofs" + (" --quick" if quick else "")
    log = auditlog.ensure_log(size)
    figures: list[Figure] = []
    label = f"SQLite {size // 1000:,}k"
    for figure in measure(label, log.url, log, command):
        print_figure(figure)
        figures.append(figure)
    label = f"PostgreSQL {size // 1000:,}k"
    if not nodes.pg_available():
        figure = Figure(
            NAME,
            f"{label}: inclusion proof p99",
            None,
            "ms",
            command,
            below(10),
            "PostgreSQL not reachable",
        )
        print_figure(figure)
        return [*figures, figure]
    with nodes.pg_database("proofs") as url:
        started = time.monotonic()
        copy_to_postgres(log, url)
        print(
            f"    copied the log into PostgreSQL in {time.monotonic() - started:.0f} s", flush=True
        )
        for figure in measure(label, url, log, command):
            print_figure(figure)
            figures.append(figure)
    return figures


if __name__ == "__main__":
    run_alone(__doc__, run)
