"""Limits enforced by the node in-process: JSON shape, dataset size, bodies to the local API."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.protocol import jws
from tests.support.nodes import (
    CLIENT_TOKEN,
    Federation,
    envelope_for,
    example_body,
    outbox_statistics,
)

JOSE = {"Content-Type": "application/jose"}
CLIENT = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
STATS = {"msg_type": "statistics.migration-flows", "purpose": "statistics"}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Limits are checked before the database is touched: SQLite only."""
    return sqlite_url


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def code_of(resp: Any) -> tuple[int, str]:
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    return resp.status_code, resp.json()["code"]


def test_payload_nested_past_the_depth_limit_is_malformed(
    client: TestClient, federation: Federation
) -> None:
    body = example_body("citizenship.verification-request")
    body["extra"] = nested(40)  # the default limit is 32 levels
    token = federation.uz.sign(envelope_for(federation.uz, body=body))
    resp = client.post("/v1/messages", content=token, headers=JOSE)
    assert code_of(resp) == (400, "malformed")


def test_payload_past_the_member_limit_is_malformed(
    federation: Federation, client_factory: Callable[..., TestClient]
) -> None:
    client = client_factory(lambda cfg: cfg.setdefault("limits", {}).update(max_json_members=200))
    body = example_body("citizenship.verification-request")
    body["extra"] = list(range(300))
    token = federation.uz.sign(envelope_for(federation.uz, body=body))
    resp = client.post("/v1/messages", content=token, headers=JOSE)
    assert code_of(resp) == (400, "malformed")


def test_hand_written_deep_payload_is_malformed_before_any_recursion(
    client: TestClient, federation: Federation
) -> None:
    payload = b'{"v":1,"body":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    token = jws.sign_compact(federation.uz.key, payload)
    resp = client.post("/v1/messages", content=token, headers=JOSE)
    assert code_of(resp) == (400, "malformed")


def test_dataset_over_max_observations_is_a_schema_problem(
    federation: Federation, client_factory: Callable[..., TestClient]
) -> None:
    client = client_factory(lambda cfg: cfg.setdefault("limits", {}).update(max_observations=2))
    token = federation.uz.sign(envelope_for(federation.uz, **STATS))
    resp = client.post("/v1/messages", content=token, headers=JOSE)
    assert code_of(resp) == (422, "schema")
    assert "at most 2 observations" in json.dumps(resp.json())


def test_outbound_dataset_over_max_observations_is_refused(
    federation: Federation, client_factory: Callable[..., TestClient]
) -> None:
    client = client_factory(lambda cfg: cfg.setdefault("limits", {}).update(max_observations=2))
    resp = client.post(
        "/v1/outbox",
        headers=CLIENT,
        json=outbox_statistics(),
    )
    assert code_of(resp) == (422, "schema")


def test_local_api_body_nested_past_the_parser_is_refused(client: TestClient) -> None:
    deep = b'{"to":"UZ:MIA","body":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    resp = client.post(
        "/v1/outbox", content=deep, headers={**CLIENT, "Content-Type": "application/json"}
    )
    assert code_of(resp)[0] == 422


def test_local_api_body_nested_past_the_depth_limit_is_refused(client: TestClient) -> None:
    resp = client.post(
        "/v1/outbox",
        headers=CLIENT,
        json=outbox_statistics(body={"a": nested(500)}),
    )
    assert code_of(resp)[0] == 422


def _big_json(size: int) -> bytes:
    return b'{"to":"UZ:MIA","pad":"' + b"a" * size + b'"}'


def test_local_api_body_over_the_size_limit_is_too_large(
    federation: Federation, client_factory: Callable[..., TestClient]
) -> None:
    client = client_factory(lambda cfg: cfg.setdefault("limits", {}).update(max_message_bytes=4096))
    resp = client.post(
        "/v1/outbox",
        content=_big_json(8192),
        headers={**CLIENT, "Content-Type": "application/json"},
    )
    assert code_of(resp) == (413, "too-large")


def test_local_api_chunked_body_over_the_size_limit_is_too_large(
    federation: Federation, client_factory: Callable[..., TestClient]
) -> None:
    client = client_factory(lambda cfg: cfg.setdefault("limits", {}).update(max_message_bytes=4096))
    chunks = iter([_big_json(8192)[i : i + 1000] for i in range(0, 8300, 1000)])
    resp = client.post(
        "/v1/outbox", content=chunks, headers={**CLIENT, "Content-Type": "application/json"}
    )
    assert "content-length" not in resp.request.headers
    assert code_of(resp) == (413, "too-large")


def test_large_bodies_are_checked_off_the_event_loop_and_small_ones_on_it(
    federation: Federation, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.api import messages
    from service.exchange import outbound

    assert messages.INLINE_LIMIT == 64 * 1024
    off_loop: list[str] = []
    for module, name in ((messages, "run_in_threadpool"), (outbound, "to_thread")):
        original = getattr(module, name)

        async def recording(func: Any, *args: Any, _orig: Any = original, **kw: Any) -> Any:
            off_loop.append(getattr(func, "__name__", None) or func.func.__name__)
            return await _orig(func, *args, **kw)

        monkeypatch.setattr(module, name, recording)

    small = federation.uz.sign(envelope_for(federation.uz))
    assert client.post("/v1/messages", content=small, headers=JOSE).status_code == 201
    assert client.post("/v1/outbox", headers=CLIENT, json=outbox_statistics()).status_code == 202
    assert off_loop == []

    body = example_body("citizenship.verification-request")
    body["remarks"] = "x" * (messages.INLINE_LIMIT + 1)
    large = federation.uz.sign(envelope_for(federation.uz, body=body))
    assert client.post("/v1/messages", content=large, headers=JOSE).status_code == 422
    big_outbound = outbox_statistics()
    big_outbound["body"]["remarks"] = "x" * (messages.INLINE_LIMIT + 1)
    assert client.post("/v1/outbox", headers=CLIENT, json=big_outbound).status_code == 422
    assert off_loop == ["check_inbound", "prepare"]


def _allow_outbound_verification(cfg: dict[str, Any]) -> None:
    uz = next(p for p in cfg["partners"] if p["party"] == "UZ:MIA")
    uz["rules"].append(
        {
            "id": "uz-out-verification",
            "direction": "outbound",
            "types": ["citizenship.verification-request"],
            "agreements": ["kz-uz-2019"],
            "purposes": ["identity-verification"],
            "fields": ["*"],
        }
    )


def test_a_refused_body_is_described_without_echoing_its_personal_values(
    federation: Federation, client_factory: Callable[..., TestClient]
) -> None:
    client = client_factory(_allow_outbound_verification)
    body = example_body("citizenship.verification-request")
    person = body["person"]
    person["identifiers"][0]["value"] = "910314401231"  # wrong check digit
    person["documents"][0]["number"] = "N07654329"  # disagrees with the MRZ
    person["documents"][0]["mrz"][1] = "N076543217KAZ9103144F2906195910314401230<<67"
    person["names"]["latin"]["surname"] = "ZHAKSYBEKOVA9"
    person["birth_date"] = "1991-02-30"
    personal = [
        "910314401231",
        "N07654329",
        "N076543217KAZ9103144F2906195910314401230<<67",
        "ZHAKSYBEKOVA",
        "Жаксыбекова",
        "Айгерим",
        "1991-02-30",
        "Taraz",
    ]
    token = federation.uz.sign(envelope_for(federation.uz, body=body))
    inbound = client.post("/v1/messages", content=token, headers=JOSE)
    outbound = client.post(
        "/v1/outbox",
        headers=CLIENT,
        json={
            "to": "UZ:MIA",
            "type": "citizenship.verification-request",
            "agreement": "kz-uz-2019",
            "purpose": "identity-verification",
            "body": body,
        },
    )
    for resp in (inbound, outbound):
        assert code_of(resp) == (422, "schema")
        problem = resp.json()
        assert len(problem["errors"]) >= 4  # every failing field is reported...
        shown = resp.text + json.dumps(problem, ensure_ascii=False)
        leaked = [value for value in personal if value in shown]
        assert leaked == []  # ...by its path and the rule, never by its value
