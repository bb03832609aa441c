"""Group commit: one writer thread commits many requests' work in one transaction.

A gapless audit index serializes appends. Instead of one transaction (and one fsync)
per message, requests hand their work to this writer as *units*; the writer takes
the audit head lock once, runs each unit inside its own savepoint (so each request
stays all-or-nothing), appends the audit entries, updates the tree, signs a
checkpoint when due, and commits once. A unit that raises `Problem` is rolled back to
its savepoint and its refusal entry is written in the same commit, so a refused
request still leaves its trace. With several processes, each has a writer; they take
turns on the head row lock (PostgreSQL) or the database write lock (SQLite).

The batch's writes are sent together at its end, so a write that fails on one unit's
values (a value the database refuses) fails them all. Only an outage fails the batch:
any other failure runs the batch again in isolation, each unit's work and writes in a
savepoint of their own, so the unit whose data failed is refused alone (its refusal
entry still written) and the others commit. Batches that fail nothing pay nothing for
this.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import psycopg
from sqlalchemy import Connection, Insert, Table, Update, bindparam, insert, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from service.audit import store
from service.audit.entries import AuditEvent
from service.db.engine import Engines
from service.db.failures import is_bad_value, is_outage
from service.db.tables import audit_head, checkpoints
from service.ledger.cache import BatchCache
from service.ledger.ratelimit import RateBuckets
from service.protocol.problems import Problem

log = logging.getLogger("migex.writer")

CheckpointSigner = Callable[[int, bytes], str]
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass
class Tx:
    """What a unit may use: the connection, the audit appender, the batch's time and rate buckets.

    `defer` queues an insert that the writer runs with all others of its table in one
    executemany at the end of the batch, and `defer_update` likewise an update of one
    row by its key; `cache` lets units see rows deferred by earlier units of the same
    batch (a message id already taken, an outbox row's new state). A deferred row
    carries its primary key: `row_key` of the audit entry that created it.
    """

    conn: Connection
    audit: store.Appender
    now: float
    rates: RateBuckets
    deferred: list[tuple[Table, dict[str, Any]]] = field(default_factory=list)
    cache: BatchCache = field(default_factory=BatchCache)
    updates: list[tuple[Table, str, Any, dict[str, Any]]] = field(default_factory=list)

    def defer(self, table: Table, row: dict[str, Any]) -> None:
        self.deferred.append((table, row))

    def defer_update(self, table: Table, key: str, value: Any, values: dict[str, Any]) -> None:
        """Set `values` on the row whose column `key` equals `value`, at the end of the batch."""
        if values:
            self.updates.append((table, key, value, values))

    def mark(self) -> tuple[int, int, int, int, tuple[int, int]]:
        return (
            self.audit.mark(),
            self.rates.mark(),
            len(self.deferred),
            len(self.updates),
            self.cache.mark(),
        )

    def reset(self, mark: tuple[int, int, int, int, tuple[int, int]]) -> None:
        audit, rates, deferred, updates, cache = mark
        self.audit.reset(audit)
        self.rates.reset(rates)
        del self.deferred[deferred:]
        del self.updates[updates:]
        self.cache.reset(cache)

    def flush_deferred(self) -> None:
        """Run the deferred inserts, then the deferred updates. Rows carry their primary
        key (see `row_key`): an insert that had the database generate keys would have to
        read them back, which PostgreSQL's pipeline cannot do mid-batch."""
        if not self.deferred and not self.updates:
            return
        by_table: dict[Table, list[dict[str, Any]]] = {}
        for table, row in self.deferred:
            by_table.setdefault(table, []).append(row)
        for table, rows in by_table.items():
            if "pk" in table.c and "pk" not in rows[0]:
                raise RuntimeError(f"deferred {table.name} rows need a key from row_key")
            self.conn.execute(_insert_statement(table), rows)
        # Updates after inserts (they may touch rows inserted in this batch). The updates
        # of one row are merged in the order they were deferred, which leaves the row as
        # running them one by one would; then one executemany per table and column set.
        merged: dict[tuple[Table, str, Any], dict[str, Any]] = {}
        for table, key, value, values in self.updates:
            merged.setdefault((table, key, value), {}).update(values)
        grouped: dict[tuple[Table, str, tuple[str, ...]], list[dict[str, Any]]] = {}
        for (table, key, value), values in merged.items():
            names = tuple(sorted(values))
            params = {f"v_{name}": values[name] for name in names}
            params["k_"] = value
            grouped.setdefault((table, key, names), []).append(params)
        for (table, key, names), params_list in grouped.items():
            self.conn.execute(_update_statement(table, key, names), params_list)

    def flush_unit(self) -> None:
        """Write what the unit just run deferred, and its audit entries, now (isolation)."""
        self.flush_deferred()
        self.deferred.clear()
        self.updates.clear()
        self.audit.flush_entries(self.conn)


@functools.cache
def _insert_statement(table: Table) -> Insert:
    """One INSERT per table, built once: a new statement object per batch costs its
    construction and cache key every time."""
    return table.insert()


@functools.cache
def _update_statement(table: Table, key: str, names: tuple[str, ...]) -> Update:
    """One prepared UPDATE per table, key and column set (built and compiled once)."""
    return (
        update(table)
        .where(table.c[key] == bindparam("k_"))
        .values({name: bindparam(f"v_{name}") for name in names})
    )


def row_key(audit_index: int) -> int:
    """The primary key of a row created with the audit entry at `audit_index`.

    Every message and delivery attempt is created together with exactly one audit
    entry, whose index no other row shares, so the writer needs no query to key its
    deferred rows (and other rows of the batch can refer to them). One is added so that
    keys start at 1, and so that they stay above any key the database generated
    itself: the row created k-th had an entry at index k - 1 or later.
    """
    return audit_index + 1


class Unit(Protocol[T_co]):
    """Work done inside a batch, whose `run` gives the submitter its `T_co`.

    `needs_savepoint`: whether the unit's work runs in a savepoint of its own. A unit
    that writes only through `tx.defer` (and raises before deferring anything) sets it
    False, which saves two round trips; its rollback is then `tx.reset` alone."""

    needs_savepoint: ClassVar[bool]

    def run(self, tx: Tx) -> T_co:
        """Do the work; raise Problem to refuse (the work is rolled back)."""

    def refused(self, tx: Tx, problem: Problem) -> None:
        """Append the refusal's audit entry after the unit's work was rolled back."""


@dataclass
class AuditOnly:
    """A unit that only appends events (refusals before any work, queries, attempts)."""

    events: list[AuditEvent]
    needs_savepoint: ClassVar[bool] = False

    def run(self, tx: Tx) -> int:
        index = -1
        for event in self.events:
            index = tx.audit.append(event)
        return index

    def refused(self, tx: Tx, problem: Problem) -> None:  # pragma: no cover - run never refuses
        raise problem


def unavailable(detail: str) -> Problem:
    return Problem("unavailable", detail, headers={"Retry-After": "1"})


def _refusal(exc: BaseException) -> Problem:
    """The problem of a unit whose work failed on its own (not an outage)."""
    if isinstance(exc, Problem):
        return exc
    if is_bad_value(exc):
        return Problem(
            "invalid-parameters", "a value of the request cannot be stored; nothing was stored"
        )
    return Problem("internal", "the request could not be processed; nothing was stored")


# Reads what a batch's units will look up into the batch's cache, before they run.
Prefetch = Callable[[Connection, BatchCache, Sequence[Unit[Any]]], None]


@dataclass
class _Pending(Generic[T]):
    unit: Unit[T]
    future: Future[T]


class GroupCommitter:
    def __init__(
        self,
        engines: Engines,
        *,
        node: str,
        clock: Callable[[], float],
        sign_checkpoint: CheckpointSigner,
        checkpoint_interval: float,
        max_batch: int = 256,
        on_commit: Callable[[list[dict[str, Any]]], None] | None = None,
        prefetch: Sequence[Prefetch] = (),
        early_prefetch: Sequence[Prefetch] = (),
        gather_seconds: float = 0.0,
    ) -> None:
        self._engines = engines
        self._node = node
        self._clock = clock
        self._sign = sign_checkpoint
        self._interval = checkpoint_interval
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._prefetch = tuple(prefetch)
        # Lookups that may run before the lock; each is also one of `prefetch`.
        self._early_prefetch = tuple(early_prefetch)
        self._late_prefetch = tuple(p for p in self._prefetch if p not in self._early_prefetch)
        self._gather = gather_seconds
        self._queue: queue.SimpleQueue[_Pending[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.units = 0

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="migex-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    # -- submitting ------------------------------------------------------------
    def submit(self, unit: Unit[T]) -> Future[T]:
        future: Future[T] = Future()
        if self._thread is None:
            future.set_exception(unavailable("the node is shutting down"))
            return future
        self._queue.put(_Pending(unit, future))
        return future

    async def run(self, unit: Unit[T]) -> T:
        return await asyncio.wrap_future(self.submit(unit))

    def run_sync(self, unit: Unit[T], timeout: float = 60.0) -> T:
        return self.submit(unit).result(timeout=timeout)

    # -- the writer thread -----------------------------------------------------
    def _loop(self) -> None:
        tick = self._interval if self._interval > 0 else 1.0
        while True:
            try:
                first = self._queue.get(timeout=tick)
            except queue.Empty:
                self._commit([])  # issue a due checkpoint for appends made since the last one
                continue
            if first is None:
                return
            if self._gather > 0 and self._queue.qsize() < self._max_batch // 4:
                # A moment for requests already on their way to join this batch: one
                # commit for many messages is what keeps the lock short per message.
                time.sleep(self._gather)
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Pending[Any]]) -> None:
        # On PostgreSQL the lookups that are safe to make before the head row is locked
        # (a message id stored meanwhile by another process makes the batch's insert
        # fail on the unique constraint, and the batch then runs again with the lookup
        # under the lock) are made first: one round trip less while the lock is held.
        early = not self._engines.is_sqlite and bool(self._early_prefetch)
        try:
            try:
                written = self._write(batch, early=early)
            except IntegrityError:
                if not early:
                    raise
                log.info("a message of the batch was stored meanwhile; running the batch again")
                written = self._write(batch, early=False)
        except Exception as exc:
            if is_outage(exc):
                self._fail_on(batch, exc)
                return
            # Not an outage: one unit's data, most likely. Run the batch again with each
            # unit isolated, so that unit alone is refused.
            log.warning(
                "batch of %d units not committed (%s); running each unit in isolation",
                len(batch),
                type(exc).__name__,
            )
            try:
                written = self._write(batch, early=False, isolate=True)
            except Exception as again:
                self._fail_on(batch, again)
                return
        if written is None:
            return
        committed, results = written
        if self._on_commit is not None and committed:
            try:
                self._on_commit(committed)
            except Exception:
                log.exception("commit observer failed")
        self.batches += 1
        self.units += len(batch)
        for pending, (ok, value) in zip(batch, results, strict=True):
            if ok:
                pending.future.set_result(value)
            else:
                pending.future.set_exception(value)

    def _fail_on(self, batch: list[_Pending[Any]], exc: Exception) -> None:
        """Fail every unit of a batch that could not be committed."""
        if is_outage(exc):
            log.warning("audit batch not committed: database unavailable: %s", type(exc).__name__)
            self._fail(batch, unavailable("the database is unavailable; retry shortly"))
        elif isinstance(exc, SQLAlchemyError):
            log.exception("audit batch not committed")
            self._fail(
                batch, unavailable(f"the batch could not be committed ({type(exc).__name__})")
            )
        else:
            log.exception("audit batch failed")
            self._fail(batch, exc)

    def _write(
        self, batch: list[_Pending[Any]], *, early: bool, isolate: bool = False
    ) -> tuple[list[dict[str, Any]], list[tuple[bool, Any]]] | None:
        """Run the batch in one transaction and commit it; None if there was nothing to do.

        With `isolate`, each unit's writes are made inside its own savepoint as soon as
        it has run, instead of all together at the end."""
        units = [p.unit for p in batch]
        with self._engines.writer.begin() as conn:
            cache = BatchCache()
            if early:
                for prefetch in self._early_prefetch:
                    prefetch(conn, cache, units)
            head = store.read_head(conn, for_update=True)
            if not batch and head.size == head.checkpoint_size:
                return None
            # Entry times never go backwards, so time order is index order.
            now = max(self._clock(), head.last_time)
            appender = store.Appender(self._node, head.size, head.frontier, now)
            tx = Tx(conn, appender, now, RateBuckets(conn, now), cache=cache)
            for prefetch in self._prefetch if not early else self._late_prefetch:
                prefetch(conn, cache, units)
            run = self._run_isolated if isolate else self._run_unit
            results = [run(tx, unit) for unit in units]
            with self._pipelined(conn):
                tx.flush_deferred()
                appender.flush(conn)
                tx.rates.flush()
            if appender.size > head.checkpoint_size and (
                now - head.checkpoint_at >= self._interval
            ):
                self._checkpoint(conn, appender.size, appender.root(), now)
            return appender.committed_entries(), results

    @contextlib.contextmanager
    def _pipelined(self, conn: Connection) -> Iterator[None]:
        """On PostgreSQL, send the batch's writes without waiting for each answer
        (psycopg's pipeline mode): one round trip instead of one per statement, all
        while the head row is locked. An error surfaces when the pipeline syncs."""
        if self._engines.is_sqlite:
            yield
            return
        driver = conn.connection.driver_connection
        if not isinstance(driver, psycopg.Connection):  # pragma: no cover - psycopg only
            yield
            return
        try:
            with driver.pipeline():
                yield
        except psycopg.Error as exc:
            # As SQLAlchemy would have raised it (IntegrityError, DataError, ...).
            raise DBAPIError.instance("pipelined batch writes", None, exc, psycopg.Error) from exc

    def _run_unit(self, tx: Tx, unit: Unit[Any]) -> tuple[bool, Any]:
        ok, value = self._in_savepoint(tx, unit.run, unit.needs_savepoint)
        if ok:
            return True, value
        problem = (
            value
            if isinstance(value, Problem)
            else Problem("internal", "the request could not be processed; nothing was stored")
        )
        # The unit's work is rolled back; its refusal entry goes into this same commit.
        refused_ok, error = self._in_savepoint(
            tx, lambda t: unit.refused(t, problem), unit.needs_savepoint
        )
        if not refused_ok:
            log.error("refusal could not be recorded: %s", type(error).__name__)
        return False, problem

    def _run_isolated(self, tx: Tx, unit: Unit[Any]) -> tuple[bool, Any]:
        """Run `unit` and write its rows and entries inside its own savepoint: a write
        that fails on the unit's values rolls back this unit alone, which is refused."""

        def run_and_write(work: Callable[[Tx], Any]) -> Callable[[Tx], Any]:
            def both(t: Tx) -> Any:
                value = work(t)
                t.flush_unit()
                return value

            return both

        ok, value = self._in_savepoint(tx, run_and_write(unit.run), isolated=True)
        if ok:
            return True, value
        if not isinstance(value, Problem):
            log.warning(
                "%s refused: its work failed on its own data (%s)",
                type(unit).__name__,
                type(value).__name__,
            )
        problem = _refusal(value)
        refused_ok, error = self._in_savepoint(
            tx, run_and_write(lambda t: unit.refused(t, problem)), isolated=True
        )
        if not refused_ok:
            log.error("refusal could not be recorded: %s", type(error).__name__)
        return False, problem

    @staticmethod
    def _in_savepoint(
        tx: Tx, work: Callable[[Tx], Any], savepoint: bool = True, *, isolated: bool = False
    ) -> tuple[bool, Any]:
        """Run `work`; on failure undo it and return (False, the exception).

        A database error fails the batch (its transaction may be aborted), except in
        isolation, where only an outage does: there the savepoint undoes the rest."""
        mark = tx.mark()
        nested = tx.conn.begin_nested() if savepoint or isolated else None
        try:
            value = work(tx)
        except Exception as exc:
            if is_outage(exc) or (isinstance(exc, DBAPIError) and not isolated):
                raise
            if not isinstance(exc, Problem | DBAPIError) and not is_bad_value(exc):
                log.exception("unit failed; its work is rolled back")
            if nested is not None:
                nested.rollback()
            tx.reset(mark)
            return False, exc
        if nested is not None:
            nested.commit()
        return True, value

    def _checkpoint(self, conn: Connection, size: int, root: bytes, now: float) -> None:
        note = self._sign(size, root)
        conn.execute(insert(checkpoints).values(size=size, root=root, issued_at=now, note=note))
        conn.execute(
            update(audit_head)
            .where(audit_head.c.id == store.HEAD_ID)
            .values(checkpoint_size=size, checkpoint_at=now)
        )

    @staticmethod
    def _fail(batch: list[_Pending[Any]], exc: BaseException) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(exc)
