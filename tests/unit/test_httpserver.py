"""The HTTP server's bounds: their configuration and the process's open-file limit."""

from __future__ import annotations

import pickle
import resource

import pytest

from service.config import LimitsConfig
from service.httpserver import (
    RESERVED_DESCRIPTORS,
    HttpLimits,
    LimitedHttpToolsProtocol,
    ensure_descriptors,
    protocol_factory,
)


def test_the_defaults_are_bounded() -> None:
    limits = LimitsConfig()
    assert limits.max_header_bytes == HttpLimits().max_header_bytes == 16 * 1024
    assert limits.max_headers == HttpLimits().max_headers == 100
    assert limits.header_timeout_seconds == HttpLimits().header_timeout == 10.0
    assert limits.max_connections == HttpLimits().max_connections == 512
    assert limits.keep_alive_seconds == 15


@pytest.mark.parametrize(
    "field",
    [
        {"max_header_bytes": 100},
        {"max_header_bytes": 2 * 1024**2},
        {"max_headers": 0},
        {"header_timeout_seconds": 0},
        {"max_connections": 0},
        {"keep_alive_seconds": 0},
    ],
)
def test_unbounded_or_useless_values_are_refused(field: dict[str, int]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic's ValidationError
        LimitsConfig.model_validate(field)


def test_the_protocol_factory_reaches_worker_processes() -> None:
    """uvicorn pickles its configuration, `http` included, for each worker it spawns."""
    factory = pickle.loads(pickle.dumps(protocol_factory(HttpLimits(max_connections=7))))  # noqa: S301
    assert factory.func is LimitedHttpToolsProtocol
    assert factory.keywords["limits"].max_connections == 7


def test_the_open_file_limit_is_raised_for_the_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_to: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 4096))
    monkeypatch.setattr(resource, "setrlimit", lambda _, value: set_to.append(value))
    assert ensure_descriptors(2000) == 2000 + RESERVED_DESCRIPTORS
    assert set_to == [(2000 + RESERVED_DESCRIPTORS, 4096)]


def test_a_hard_limit_below_the_connections_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1024))
    with pytest.raises(ValueError, match=r"ulimit -Hn"):
        ensure_descriptors(1000)
    assert ensure_descriptors(512) == 1024
