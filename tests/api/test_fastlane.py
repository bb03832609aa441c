"""`POST /v1/messages` and a client's well-formed `POST /v1/outbox` are answered past the
router (service/api/fastlane.py), exactly as routed: the same answers and problems, the
same route in the request log, an unexpected error a 500 problem that leaves the next
request whole; every other request (an outbox request the route would refuse among
them, with its body replayed), and those paths with another method or a trailing slash,
still goes through the router."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Router

from service.api import fastlane, messages
from tests.api.test_hostile_input import CLIENT, OPERATOR
from tests.api.test_messages import JOSE, post
from tests.support.nodes import Federation, envelope_for, outbox_statistics


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


def unlaned(monkeypatch: pytest.MonkeyPatch) -> None:
    """The outbox lane off: every outbox request routed, as before the lane."""

    async def routed(self: fastlane.FastLanes, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    monkeypatch.setattr(fastlane.FastLanes, "_outbox", routed)


def _answer(resp: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, the headers that do not vary between requests, and the JSON body without
    the values that do (ids, indexes, URLs)."""
    volatile = {"id", "status_url", "audit_index", "instance", "request_id"}
    doc = resp.json()
    body = {k: v for k, v in doc.items() if k not in volatile}
    varying = {"location", "x-request-id", "content-length", "date"}
    headers = {k: v for k, v in resp.headers.items() if k not in varying}
    return resp.status_code, headers, body


def test_a_clients_outbox_request_is_answered_past_the_router_as_routed(
    client: TestClient, routed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    laned = client.post("/v1/outbox", json=outbox_statistics(), headers=CLIENT)
    assert laned.status_code == 202, laned.text
    assert laned.headers["location"] == laned.json()["status_url"]
    assert client.get(laned.headers["location"], headers=CLIENT).status_code == 200
    assert routed == [f"GET {laned.headers['location']}"]

    unlaned(monkeypatch)
    routed.clear()
    as_routed = client.post("/v1/outbox", json=outbox_statistics(), headers=CLIENT)
    assert routed == ["POST /v1/outbox"]
    assert _answer(laned) == _answer(as_routed)
    assert list(laned.headers) == list(as_routed.headers)
    assert set(laned.json()) == set(as_routed.json())


REFUSED = {
    "no token": ({"json": outbox_statistics()}, {}),
    "an operator": ({"json": outbox_statistics()}, OPERATOR),
    "not JSON": (
        {"content": b"to=UZ:MIA"},
        {**CLIENT, "Content-Type": "application/x-www-form-urlencoded"},
    ),
    "broken JSON": ({"content": b'{"to": '}, {**CLIENT, "Content-Type": "application/json"}),
    "not UTF-8": ({"content": b'{"to": "\xff"}'}, {**CLIENT, "Content-Type": "application/json"}),
    "empty": ({"content": b""}, {**CLIENT, "Content-Type": "application/json"}),
    "nested past the parser": (
        {"content": b'{"body": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"},
        {**CLIENT, "Content-Type": "application/json"},
    ),
    "a field too many": ({"json": outbox_statistics(extra=1)}, CLIENT),
    "a bad party": ({"json": outbox_statistics(to="nobody")}, CLIENT),
    "a refused body": ({"json": outbox_statistics(body={"x": 1})}, CLIENT),
    "too large": (
        {"content": b'{"to": "' + b"x" * 2_000_000 + b'"}'},
        {**CLIENT, "Content-Type": "application/json"},
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_an_outbox_request_the_route_refuses_gets_the_routes_own_answer(
    client: TestClient, routed: list[str], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    kwargs, headers = REFUSED[case]
    laned = client.post("/v1/outbox", headers=headers, **kwargs)
    assert laned.status_code >= 400
    assert laned.headers["content-type"] == "application/problem+json"
    unlaned(monkeypatch)
    as_routed = client.post("/v1/outbox", headers=headers, **kwargs)
    assert _answer(laned) == _answer(as_routed)
    # A request the lane would not take reached the router both times; the body refused
    # by the exchange rules (a client's valid request) is refused past it, and one over
    # the body limit before either.
    expected = {"a refused body": 1, "too large": 0}.get(case, 2)
    assert routed.count("POST /v1/outbox") == expected


def test_an_unexpected_error_in_the_outbox_lane_is_a_500_problem(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(fastlane, "queue_item", broken)
    resp = client.post("/v1/outbox", json=outbox_statistics(), headers=CLIENT)
    assert (resp.status_code, resp.json()["code"]) == (500, "internal")
    monkeypatch.undo()
    assert client.post("/v1/outbox", json=outbox_statistics(), headers=CLIENT).status_code == 202


def test_the_outbox_request_log_names_the_route(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="migex.request"):
        assert (
            client.post("/v1/outbox", json=outbox_statistics(), headers=CLIENT).status_code == 202
        )
    [record] = [r for r in caplog.records if r.name == "migex.request"]
    assert (record.route, record.status) == ("/v1/outbox", 202)  # type: ignore[attr-defined]
