"""An outage is told from a statement that failed on its own values."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service.db.failures import is_bad_value, is_outage


def wrapped(orig: Exception) -> DBAPIError:
    """The error as SQLAlchemy raises it for the driver's `orig`."""
    return DBAPIError.instance("INSERT ...", None, orig, psycopg.Error)


@pytest.mark.parametrize(
    "exc",
    [
        wrapped(psycopg.OperationalError("server closed the connection unexpectedly")),
        wrapped(psycopg.errors.AdminShutdown("terminating connection")),
        wrapped(psycopg.errors.QueryCanceled("canceling statement due to statement timeout")),
        wrapped(psycopg.InterfaceError("the connection is closed")),
        DataError("SELECT 1", {}, Exception("lost"), connection_invalidated=True),
        psycopg.OperationalError("consuming input failed"),
        PoolTimeout("QueuePool limit reached"),
    ],
    ids=["closed", "shutdown", "timeout", "interface", "invalidated", "raw", "pool"],
)
def test_a_lost_or_timed_out_database_is_an_outage(exc: Exception) -> None:
    assert is_outage(exc)
    assert not is_bad_value(exc)


@pytest.mark.parametrize(
    "exc",
    [
        wrapped(psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")),
        wrapped(psycopg.errors.NumericValueOutOfRange("integer out of range")),
        wrapped(psycopg.errors.StringDataRightTruncation("value too long")),
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
        OverflowError("Python int too large to convert to SQLite INTEGER"),
    ],
    ids=["nul", "range", "length", "raw", "sqlite-overflow"],
)
def test_a_value_the_database_refuses_is_not_an_outage(exc: Exception) -> None:
    assert is_bad_value(exc)
    assert not is_outage(exc)


def test_a_broken_constraint_is_neither() -> None:
    exc = wrapped(psycopg.errors.UniqueViolation("duplicate key"))
    assert isinstance(exc, IntegrityError)
    assert not is_outage(exc)
    assert not is_bad_value(exc)


def test_the_pipeline_keeps_the_driver_error_class() -> None:
    assert isinstance(wrapped(psycopg.OperationalError("gone")), OperationalError)
    assert isinstance(wrapped(psycopg.errors.NumericValueOutOfRange("range")), DataError)
