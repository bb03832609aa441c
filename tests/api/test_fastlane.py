"""`POST /v1/messages` is answered past the router (service/api/fastlane.py), exactly as
routed: the same answers and problems, the same route in the request log, an
unexpected error a 500 problem that leaves the next request whole; every other request,
and that path with another method or a trailing slash, still goes through the router."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Router

from service.api import messages
from tests.api.test_messages import JOSE, post
from tests.support.nodes import Federation, envelope_for


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that reached the router."""
    paths: list[str] = []
    original = Router.__call__

    async def counting(self: Router, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            paths.append(f"{scope['method']} {scope['path']}")
        await original(self, scope, receive, send)

    monkeypatch.setattr(Router, "__call__", counting)
    return paths


def test_a_partners_message_is_answered_past_the_router(
    client: TestClient, federation: Federation, routed: list[str]
) -> None:
    token = federation.uz.sign(envelope_for(federation.uz))
    assert post(client, token).status_code == 201
    assert post(client, token).status_code == 200  # the original receipt again
    assert post(client, b"not a JWS").json()["code"] == "malformed"
    resp = post(client, token, {"Content-Type": "application/json"})
    assert (resp.status_code, resp.json()["code"]) == (415, "unsupported-media-type")
    assert routed == []
    assert client.get("/v1/health").status_code == 200
    assert routed == ["GET /v1/health"]


def test_the_same_path_with_another_method_or_a_slash_is_routed_as_before(
    client: TestClient, routed: list[str]
) -> None:
    resp = client.get("/v1/messages")
    assert (resp.status_code, resp.json()["code"]) == (405, "method-not-allowed")
    resp = client.post("/v1/messages/", content=b"x", headers=JOSE, follow_redirects=False)
    assert resp.status_code == 307  # the router's redirect to the path without the slash
    assert routed == ["GET /v1/messages", "POST /v1/messages/"]


def test_the_request_log_names_the_route(
    client: TestClient, federation: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="migex.request"):
        assert post(client, federation.uz.sign(envelope_for(federation.uz))).status_code == 201
    [record] = [r for r in caplog.records if r.name == "migex.request"]
    assert (record.route, record.status) == ("/v1/messages", 201)  # type: ignore[attr-defined]


def test_an_unexpected_error_is_a_500_problem_and_the_next_message_is_taken(
    client: TestClient, federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(messages, "check_inbound", broken)
    resp = post(client, federation.uz.sign(envelope_for(federation.uz)))
    assert (resp.status_code, resp.json()["code"]) == (500, "internal")
    assert resp.headers["content-type"] == "application/problem+json"
    monkeypatch.undo()
    assert post(client, federation.uz.sign(envelope_for(federation.uz))).status_code == 201
