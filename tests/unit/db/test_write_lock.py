"""The SQLite writers' file lock is held until the transaction's COMMIT or ROLLBACK has
returned, so that the next writer waits on the lock, not in SQLite's busy handler."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from service.db.engine import create_engines


def _lock_is_free(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


@pytest.mark.parametrize("ending", ["commit", "rollback"])
def test_the_write_lock_is_held_until_the_transaction_has_ended(
    tmp_path: Path, ending: str
) -> None:
    database = tmp_path / "node.db"
    lock = Path(str(database) + "-writelock")
    engines = create_engines(f"sqlite:///{database}")
    seen: list[bool] = []

    @event.listens_for(engines.writer, ending)
    def _as_it_ends(_conn: Any) -> None:
        # SQLAlchemy fires this before it sends COMMIT or ROLLBACK to SQLite.
        seen.append(_lock_is_free(lock))

    try:
        conn = engines.writer.connect()
        tx = conn.begin()
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        assert not _lock_is_free(lock)
        tx.commit() if ending == "commit" else tx.rollback()
        assert seen == [False]
        assert _lock_is_free(lock)
        conn.close()
        # The next transaction takes the lock again and gives it back.
        with engines.writer.begin() as again:
            again.execute(text("SELECT 1"))
            assert not _lock_is_free(lock)
        assert _lock_is_free(lock)
    finally:
        engines.dispose()


def _open_on(path: Path) -> int:
    """How many of this process's descriptors are open on `path`."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            found += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            continue
    return found


def test_disposing_the_engines_closes_every_threads_lock_descriptor(tmp_path: Path) -> None:
    database = tmp_path / "node.db"
    lock = Path(str(database) + "-writelock")
    engines = create_engines(f"sqlite:///{database}")

    def write() -> None:
        with engines.writer.begin() as conn:
            conn.execute(text("SELECT 1"))

    write()
    worker = threading.Thread(target=write)
    worker.start()
    worker.join()
    assert _open_on(lock) == 2  # one per writing thread
    engines.dispose()
    assert _open_on(lock) == 0
    # A writer after that opens its own again (and the next dispose closes it).
    write()
    assert _open_on(lock) == 1
    engines.dispose()
    assert _open_on(lock) == 0
