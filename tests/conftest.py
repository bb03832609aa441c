"""Shared fixtures: databases (SQLite and PostgreSQL), a test federation, a running app."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.clock import FixedClock
from service.config import load_config
from service.main import create_app
from tests.support.databases import PG_URL, fresh_pg_database
from tests.support.nodes import NOW, Federation, make_party

# A suite that is required fails the run when any of its tests is skipped or none ran:
# the marker, the variable that requires it, and its name in the message.
REQUIRED_SUITES = {
    "postgres": (os.environ.get("MIGEX_REQUIRE_PG") == "1", "PostgreSQL"),
    "browser": (os.environ.get("MIGEX_REQUIRE_BROWSER") == "1", "Browser"),
}

_outcomes: dict[str, dict[str, int]] = {
    marker: {"passed": 0, "skipped": 0, "failed": 0} for marker in REQUIRED_SUITES
}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for marker, counts in _outcomes.items():
        if marker in report.keywords and (report.when == "call" or report.skipped):
            counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.option.collectonly:
        return
    for marker, (required, name) in REQUIRED_SUITES.items():
        counts = _outcomes[marker]
        ran = counts["passed"] + counts["failed"]
        if required and (counts["skipped"] or not ran):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            print(f"\n{name} suite required but ran {ran} tests and skipped {counts['skipped']}")


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    if not PG_URL:
        pytest.skip("set MIGEX_TEST_PG_URL to run the PostgreSQL suite")
    with fresh_pg_database(PG_URL) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'node.db'}"
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'node.db'}"


@pytest.fixture
def federation(tmp_path: Path, database_url: str) -> Federation:
    keys = tmp_path / "keys"
    keys.mkdir()
    return Federation(
        tmp=tmp_path,
        database_url=database_url,
        kz=make_party(keys, "KZ:MIA"),
        uz=make_party(keys, "UZ:MIA"),
        kg=make_party(keys, "KG:SRS", kind="p256"),
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(float(NOW))


@pytest.fixture
def client(federation: Federation, clock: FixedClock) -> Iterator[TestClient]:
    config = load_config(federation.write_config())
    with TestClient(create_app(config, clock=clock), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def client_factory(
    federation: Federation, clock: FixedClock
) -> Iterator[Callable[[Callable[[dict[str, Any]], None]], TestClient]]:
    """Start the app with a configuration changed by `mutate`."""
    stack = ExitStack()

    def start(mutate: Callable[[dict[str, Any]], None]) -> TestClient:
        federation.mutate = mutate
        config = load_config(federation.write_config())
        return stack.enter_context(
            TestClient(create_app(config, clock=clock), raise_server_exceptions=False)
        )

    with stack:
        yield start
