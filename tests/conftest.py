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

# A suite named here is required when its variable is "1": a skipped test of that marker,
# or none run at all, fails the session.
REQUIRED_SUITES = {
    "postgres": ("PostgreSQL suite", os.environ.get("MIGEX_REQUIRE_PG") == "1"),
    "docker": ("live deployment suite", os.environ.get("MIGEX_REQUIRE_DOCKER") == "1"),
    "browser": ("browser suite", os.environ.get("MIGEX_REQUIRE_BROWSER") == "1"),
}

_outcomes: dict[str, dict[str, int]] = {
    marker: {"passed": 0, "skipped": 0, "failed": 0} for marker in REQUIRED_SUITES
}
_skip_reasons: dict[str, set[str]] = {marker: set() for marker in REQUIRED_SUITES}
# The tests carrying each suite's marker (a keyword match would also count a test whose
# parameter id merely contains the marker's name).
_marked: dict[str, set[str]] = {marker: set() for marker in REQUIRED_SUITES}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker, nodeids in _marked.items():
            if item.get_closest_marker(marker) is not None:
                nodeids.add(item.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for marker, outcomes in _outcomes.items():
        if report.nodeid in _marked[marker] and (report.when == "call" or report.skipped):
            outcomes[report.outcome] = outcomes.get(report.outcome, 0) + 1
            if report.skipped and isinstance(report.longrepr, tuple):
                _skip_reasons[marker].add(str(report.longrepr[2]).removeprefix("Skipped: "))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.option.collectonly:
        return
    for marker, (name, required) in REQUIRED_SUITES.items():
        outcomes = _outcomes[marker]
        ran = outcomes["passed"] + outcomes["failed"]
        if required and (outcomes["skipped"] or not ran):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            print(f"\n{name} required but ran {ran} tests and skipped {outcomes['skipped']}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say plainly when the live deployment suite did not run, and why."""
    outcomes = _outcomes["docker"]
    if outcomes["skipped"] and not outcomes["passed"] + outcomes["failed"]:
        reasons = "; ".join(sorted(_skip_reasons["docker"])) or "skipped"
        terminalreporter.write_sep("=", "live deployment suite SKIPPED", yellow=True, bold=True)
        terminalreporter.write_line(
            f"tests/deploy/live did not run: {reasons}. Start a Docker engine with Compose v2 "
            "to run it (MIGEX_REQUIRE_DOCKER=1 makes a skip fail the run)."
        )


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
