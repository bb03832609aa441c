"""Every operation of the node's own OpenAPI document, driven by schemathesis in-process,
against a node on SQLite and a node on PostgreSQL.

No generated request may cause a 5xx; every response must conform to the documented
status codes, media types and schemas; every 4xx must be an RFC 9457 problem
document with type, title, status, detail and code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, settings
from schemathesis import checks

from service.clock import FixedClock
from service.config import load_config
from service.main import create_app
from service.protocol.problems import KINDS, PROBLEM_TYPE_PREFIX
from tests.robustness.federations import module_federation
from tests.support.databases import PG_URL, fresh_pg_database
from tests.support.nodes import AUDITOR_TOKEN, CLIENT_TOKEN, NOW, OPERATOR_TOKEN, PRIVACY_TOKEN

MAX_EXAMPLES = 50
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "code"}


def token_for(path: str) -> str | None:
    """The bearer token of the role an operation needs."""
    if path.startswith("/v1/audit"):
        return AUDITOR_TOKEN
    if path.startswith("/v1/operator"):
        return OPERATOR_TOKEN
    if path.startswith(("/v1/outbox", "/v1/inbox")):
        return CLIENT_TOKEN
    if path.startswith("/v1/privacy"):
        return PRIVACY_TOKEN
    return None


# Integer query parameters are bounded by the operations themselves (2**53 - 1 for
# audit indices, which audit entries record, and for the inbox cursor, a message key);
# generated cases keep to the JSON-safe range, and the tests below pin the bounds.
MAX_SAFE_INTEGER = 2**53 - 1


@schemathesis.serializer("application/jose")
def _jose(_ctx: Any, value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else str(value).encode()


@schemathesis.serializer("application/offset+octet-stream", "*/*")
def _octets(_ctx: Any, value: Any) -> bytes:
    """Attachment bytes (protocol v1.1): whatever was generated, as bytes."""
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else str(value).encode()


FEDERATION = module_federation()
# A subject key, so that disclosure queries are answered and their bodies exercised.
(FEDERATION.tmp / "subject.key").write_bytes(bytes(range(32)))
(FEDERATION.tmp / "subject.key").chmod(0o600)
FEDERATION.overrides = {"privacy": {"subject_key_file": str(FEDERATION.tmp / "subject.key")}}
CONFIG = load_config(FEDERATION.write_config())
# The document is what the app publishes at /openapi.json; building it needs no lifespan.
schema = schemathesis.openapi.from_dict(create_app(CONFIG).openapi())


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def api(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    with ExitStack() as stack:
        config = CONFIG
        if request.param == "postgres":
            if not PG_URL:
                pytest.skip("set MIGEX_TEST_PG_URL to run the PostgreSQL suite")
            url = stack.enter_context(fresh_pg_database(PG_URL))
            config = config.model_copy(update={"database_url": url})
        app = create_app(config, clock=FixedClock(float(NOW)), run_delivery=False)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_operation_conforms_to_the_published_document(case: Any, api: TestClient) -> None:
    if case.query:
        assume(
            all(not isinstance(v, int) or abs(v) <= MAX_SAFE_INTEGER for v in case.query.values())
        )
    token = token_for(case.path)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    response = api.request(**_httpx_kwargs(kwargs))
    case.validate_response(response, checks=CHECKS)
    if 400 <= response.status_code < 500:
        assert response.headers["content-type"].startswith("application/problem+json")
        doc = response.json()
        assert PROBLEM_MEMBERS <= doc.keys(), doc
        assert doc["code"] in KINDS
        assert (doc["type"], doc["status"]) == (
            PROBLEM_TYPE_PREFIX + doc["code"],
            response.status_code,
        )


def _httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """requests-style keyword arguments as the httpx-based test client takes them."""
    out = {k: v for k, v in kwargs.items() if k in ("method", "url", "params")}
    out["headers"] = dict(kwargs.get("headers") or {})
    if kwargs.get("cookies"):
        out["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
    if "json" in kwargs:
        out["json"] = kwargs["json"]
    if "data" in kwargs:
        data = kwargs["data"]
        out["content" if isinstance(data, bytes | str) else "data"] = data
    return out


@pytest.mark.parametrize(
    "query",
    [
        "/v1/audit/export?start=0&end=9007199254740993",
        "/v1/audit/proofs/inclusion?index=9007199254740993&size=1",
        "/v1/audit/proofs/consistency?from=9007199254740993&to=1",
    ],
)
def test_audit_index_past_the_json_range_is_refused(api: TestClient, query: str) -> None:
    resp = api.get(query, headers={"Authorization": f"Bearer {AUDITOR_TOKEN}"})
    assert resp.status_code == 422, resp.text


def test_body_that_is_not_utf8_is_invalid_parameters(api: TestClient) -> None:
    resp = api.post(
        "/v1/outbox",
        content=b"\xff\xfe{}",
        headers={"Authorization": f"Bearer {CLIENT_TOKEN}", "Content-Type": "application/json"},
    )
    assert (resp.status_code, resp.json()["code"]) == (422, "invalid-parameters")


def test_inbox_cursor_past_the_database_range_is_refused(api: TestClient) -> None:
    resp = api.get(
        "/v1/inbox?cursor=22255325185023348736",
        headers={"Authorization": f"Bearer {CLIENT_TOKEN}"},
    )
    assert resp.status_code == 422, resp.text
