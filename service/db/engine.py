"""Engines for SQLite (WAL) and PostgreSQL (psycopg 3), one code path.

SQLite: the writer engine opens every transaction with BEGIN IMMEDIATE, so writers in
several processes serialize on the database lock; readers use deferred BEGIN and WAL
lets them read while a batch commits. `synchronous=FULL` makes each commit durable.
PostgreSQL: writers serialize on the audit head row (`SELECT ... FOR UPDATE`).
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool


@dataclass(frozen=True)
class Engines:
    """A writer engine (group commit) and a reader engine (queries)."""

    writer: Engine
    reader: Engine
    # SQLite's file lock of the writers, whose descriptors `dispose` closes.
    write_lock: _WriteLock | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.writer.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()
        if self.write_lock is not None:
            self.write_lock.close()


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_engine(url: str, lock: _WriteLock | None) -> Engine:
    """A SQLite engine: a writer's (`BEGIN IMMEDIATE` under `lock`), or a reader's if
    `lock` is None."""
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30.0},
        poolclass=NullPool if ":memory:" in url else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN is ours.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    if lock is None:

        @event.listens_for(engine, "begin")
        def _on_begin_deferred(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        lock.acquire()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            lock.release()
            raise

    # Released once SQLite's COMMIT or ROLLBACK has returned. SQLAlchemy's `commit` and
    # `rollback` events fire before it sends them: released there, the lock let the
    # next writer in while this one was still committing (its fsync), and that writer's
    # BEGIN IMMEDIATE then waited in SQLite's sleeping busy handler after all.
    _release_after(engine.dialect, "do_commit", lock)
    _release_after(engine.dialect, "do_rollback", lock)
    return engine


def _release_after(dialect: Any, method: str, lock: _WriteLock) -> None:
    """Make `dialect.method` (this engine's own dialect object) release `lock` when done."""
    original = getattr(dialect, method)

    def then_release(dbapi_connection: Any) -> None:
        try:
            original(dbapi_connection)
        finally:
            lock.release()

    setattr(dialect, method, then_release)


def _lock_path(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database + "-writelock")


class _WriteLock:
    """Serializes SQLite writers of all processes with a blocking `flock`.

    SQLite's own busy handler waits by sleeping in growing steps, so two processes
    contending for the write lock lose tens of milliseconds per hand-over. A kernel
    file lock wakes the next writer as soon as the lock is released. Each thread
    holds its own open file description (flock locks conflict between descriptions,
    also within one process).
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._local = threading.local()
        # Every thread's descriptor, closed with the engine (`close`); a thread that
        # writes after that opens a new one (its old one is of an earlier generation).
        self._opened: list[int] = []
        self._generation = 0
        self._guard = threading.Lock()

    def _fd(self) -> int | None:
        if self._path is None:
            return None
        fd: int | None = getattr(self._local, "fd", None)
        if fd is None or getattr(self._local, "generation", -1) != self._generation:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            with self._guard:
                self._opened.append(fd)
                self._local.generation = self._generation
            self._local.fd = fd
            self._local.held = False
        return fd

    def close(self) -> None:
        """Close every thread's descriptor (the engine is disposed; nothing writes)."""
        with self._guard:
            opened, self._opened = self._opened, []
            self._generation += 1
        for fd in opened:
            os.close(fd)

    def acquire(self) -> None:
        fd = self._fd()
        if fd is not None and not getattr(self._local, "held", False):
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._local.held = True

    def release(self) -> None:
        if getattr(self._local, "held", False):
            fcntl.flock(self._local.fd, fcntl.LOCK_UN)
            self._local.held = False


def create_engines(url: str) -> Engines:
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        lock = _WriteLock(_lock_path(url))
        return Engines(
            writer=_sqlite_engine(url, lock),
            reader=_sqlite_engine(url, None),
            write_lock=lock,
        )
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=8,
        max_overflow=8,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
    )
    return Engines(writer=engine, reader=engine)
