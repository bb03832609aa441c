"""Telling a database outage from a statement that failed on its own data.

An outage (the server gone, the connection lost, a lock or statement timeout) may pass
with a retry, so it is answered 503 with `Retry-After`. A statement that fails on the
values it was given (a NUL byte in text, a number past its column's range, text longer
than its column) fails the same way every time: it is the request's fault, not the
node's, and must never cost other requests their answer.
"""

from __future__ import annotations

import psycopg
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


def is_outage(exc: BaseException) -> bool:
    """Whether the database could not be reached, dropped the connection or timed out."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return isinstance(exc, PoolTimeout | psycopg.OperationalError | psycopg.InterfaceError)


def is_bad_value(exc: BaseException) -> bool:
    """Whether a statement failed on a value it was given (the database's data exception
    class, SQLSTATE 22, or a number the driver cannot bind)."""
    return not is_outage(exc) and isinstance(exc, DataError | psycopg.DataError | OverflowError)
