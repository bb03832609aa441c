"""Database errors as problems: an outage is 503 with Retry-After, anything else is 500."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError

from service.api import errors

ORIGINAL = Exception("server closed the connection: secret row 42")


def app_raising(exc: Exception) -> TestClient:
    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("SELECT 1", {}, ORIGINAL),
        InterfaceError("SELECT 1", {}, ORIGINAL),
        DataError("SELECT 1", {}, ORIGINAL, connection_invalidated=True),
    ],
    ids=["operational", "interface", "invalidated"],
)
def test_lost_database_is_503_with_retry_after(exc: Exception) -> None:
    resp = app_raising(exc).get("/boom")
    assert (resp.status_code, resp.json()["code"], resp.headers.get("Retry-After")) == (
        503,
        "unavailable",
        "1",
    )


@pytest.mark.parametrize(
    "exc",
    [DataError("SELECT 1", {}, ORIGINAL), IntegrityError("INSERT", {}, ORIGINAL)],
    ids=["data", "integrity"],
)
def test_bad_data_is_not_reported_as_an_outage(exc: Exception) -> None:
    resp = app_raising(exc).get("/boom")
    assert (resp.status_code, resp.json()["code"], "Retry-After" in resp.headers) == (
        500,
        "internal",
        False,
    )


def test_database_error_text_never_reaches_the_client() -> None:
    resp = app_raising(OperationalError("SELECT secret", {}, ORIGINAL)).get("/boom")
    assert "secret" not in resp.text
    assert "Traceback" not in resp.text
