"""GET /metrics after known sequences of exchanges, and the request id and request log."""

from __future__ import annotations

import gc
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.audit import store
from service.clock import FixedClock
from service.config import load_config
from service.logs import JsonFormatter
from service.main import app_from_env, create_app
from service.runtime import Node
from tests.support.nodes import (
    CLIENT_TOKEN,
    NOW,
    Federation,
    envelope_for,
    example_body,
    outbox_statistics,
)

JOSE = {"Content-Type": "application/jose"}
VERIFICATION = "citizenship.verification-request"
STATISTICS = "statistics.migration-flows"
# For behaviour that does not depend on the database: run on SQLite only.
ANY_DATABASE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def queue(client: TestClient, msg_type: str = STATISTICS, purpose: str = "statistics") -> Any:
    return client.post(
        "/v1/outbox",
        json={
            "to": "UZ:MIA",
            "type": msg_type,
            "agreement": "kz-uz-2019",
            "purpose": purpose,
            "body": example_body(msg_type),
        },
        headers={"Authorization": f"Bearer {CLIENT_TOKEN}"},
    )


@pytest.fixture
def quiet_client(federation: Federation, clock: FixedClock) -> Iterator[TestClient]:
    """A node whose delivery worker runs only when a test calls it, against a partner
    that answers 503."""
    transport = httpx.MockTransport(lambda _request: httpx.Response(503))
    app = create_app(
        load_config(federation.write_config()), clock=clock, run_delivery=False, transport=transport
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_inbound_messages_are_counted_by_partner_type_and_outcome(
    client: TestClient, federation: Federation
) -> None:
    env = envelope_for(federation.uz)
    token = federation.uz.sign(env)
    assert client.post("/v1/messages", content=token, headers=JOSE).status_code == 201
    assert client.post("/v1/messages", content=token, headers=JOSE).status_code == 200
    conflicting = federation.uz.sign(envelope_for(federation.uz, msg_id=env.id, iat=NOW + 1))
    assert client.post("/v1/messages", content=conflicting, headers=JOSE).status_code == 409
    samples = scrape(client)
    labels = {"partner": "UZ:MIA", "type": VERIFICATION}
    assert value(samples, "migex_messages_in_total", **labels, outcome="accepted") == 1
    assert value(samples, "migex_messages_in_total", **labels, outcome="duplicate") == 1
    assert value(samples, "migex_messages_in_total", **labels, outcome="refused") == 1


def test_inbound_refusals_are_counted_by_code_and_unauthenticated_ones_apart(
    client: TestClient, federation: Federation
) -> None:
    for _ in range(2):
        assert client.post("/v1/messages", content=b"not a jws", headers=JOSE).status_code == 400
    forbidden = envelope_for(
        federation.uz, msg_type="migration.violation-notice", purpose="illegal-migration-control"
    )
    resp = client.post("/v1/messages", content=federation.uz.sign(forbidden), headers=JOSE)
    assert resp.status_code == 403
    samples = scrape(client)
    refusals = "migex_inbound_refusals_total"
    assert value(samples, refusals, partner="unauthenticated", code="malformed") == 2
    assert value(samples, refusals, partner="UZ:MIA", code="forbidden") == 1
    assert (
        value(
            samples,
            "migex_messages_in_total",
            partner="unauthenticated",
            type="unknown",
            outcome="refused",
        )
        == 2
    )


def test_sends_are_counted_by_outcome_and_refusal_code(quiet_client: TestClient) -> None:
    assert queue(quiet_client).status_code == 202
    assert queue(quiet_client, VERIFICATION, "identity-verification").status_code == 403
    samples = scrape(quiet_client)
    out = "migex_messages_out_total"
    assert value(samples, out, partner="UZ:MIA", type=STATISTICS, outcome="queued") == 1
    assert value(samples, out, partner="UZ:MIA", type=VERIFICATION, outcome="refused") == 1
    assert value(samples, "migex_outbound_refusals_total", partner="UZ:MIA", code="forbidden") == 1


def test_queued_messages_show_as_outbox_depth_and_oldest_age(
    quiet_client: TestClient, clock: FixedClock
) -> None:
    assert queue(quiet_client).status_code == 202
    clock.advance(10)
    assert queue(quiet_client).status_code == 202
    clock.advance(30)
    samples = scrape(quiet_client)
    assert value(samples, "migex_outbox_pending", partner="UZ:MIA") == 2
    assert value(samples, "migex_outbox_oldest_pending_age_seconds", partner="UZ:MIA") == 40
    assert value(samples, "migex_outbox_failed", partner="UZ:MIA") is None


def test_delivery_attempts_are_counted_by_partner_and_outcome(quiet_client: TestClient) -> None:
    for _ in range(2):
        assert queue(quiet_client).status_code == 202
    delivery = node_of(quiet_client).delivery
    assert delivery is not None
    assert quiet_client.portal.call(delivery.run_once) == 2  # type: ignore[union-attr]
    samples = scrape(quiet_client)
    assert value(samples, "migex_delivery_attempts_total", partner="UZ:MIA", outcome="retry") == 2


def test_a_refused_delivery_shows_as_a_failed_outbox_message(
    federation: Federation, clock: FixedClock
) -> None:
    refusing = httpx.MockTransport(
        lambda _request: httpx.Response(
            403,
            json={"code": "forbidden"},
            headers={"Content-Type": "application/problem+json"},
        )
    )
    app = create_app(
        load_config(federation.write_config()), clock=clock, run_delivery=False, transport=refusing
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        assert queue(client).status_code == 202
        delivery = node_of(client).delivery
        assert delivery is not None
        client.portal.call(delivery.run_once)  # type: ignore[union-attr]
        samples = scrape(client)
    assert value(samples, "migex_delivery_attempts_total", partner="UZ:MIA", outcome="refused") == 1
    assert value(samples, "migex_outbox_failed", partner="UZ:MIA") == 1
    assert value(samples, "migex_outbox_pending", partner="UZ:MIA") is None


def test_audit_gauges_report_the_tree_and_the_checkpoint_age(
    client: TestClient, federation: Federation, clock: FixedClock
) -> None:
    token = federation.uz.sign(envelope_for(federation.uz))
    assert client.post("/v1/messages", content=token, headers=JOSE).status_code == 201
    clock.advance(12)
    samples = scrape(client)
    with node_of(client).engines.reader.connect() as conn:
        head = store.read_head(conn)
    assert value(samples, "migex_audit_log_entries") == head.size == 2
    assert value(samples, "migex_audit_checkpoint_size") == head.size
    assert value(samples, "migex_audit_checkpoint_age_seconds") == 12
    assert value(samples, "migex_database_up") == 1


@ANY_DATABASE
def test_request_latency_is_observed_by_route_template_method_and_status(
    client: TestClient, federation: Federation
) -> None:
    token = federation.uz.sign(envelope_for(federation.uz))
    assert client.post("/v1/messages", content=token, headers=JOSE).status_code == 201
    assert client.get("/v1/outbox/0190a6a0-0000-7000-8000-000000000000").status_code == 401
    assert client.get("/no/such/path").status_code == 404
    samples = scrape(client)
    hist = "migex_http_request_duration_seconds"
    accepted = {"route": "/v1/messages", "method": "POST", "status": "201"}
    assert value(samples, f"{hist}_count", **accepted) == 1
    assert value(samples, f"{hist}_bucket", **accepted, le="+Inf") == 1
    assert (value(samples, f"{hist}_sum", **accepted) or 0) > 0
    templated = {"route": "/v1/outbox/{message_id}", "method": "GET", "status": "401"}
    assert value(samples, f"{hist}_count", **templated) == 1
    assert value(samples, f"{hist}_count", route="unmatched", method="GET", status="404") == 1


@ANY_DATABASE
def test_metrics_never_carry_a_claimed_party_that_is_not_a_partner(
    quiet_client: TestClient,
) -> None:
    resp = quiet_client.post(
        "/v1/outbox",
        json=outbox_statistics(to="ZZ:NOBODY"),
        headers={"Authorization": f"Bearer {CLIENT_TOKEN}"},
    )
    assert resp.status_code == 403
    text = quiet_client.get("/metrics").text
    assert "ZZ:NOBODY" not in text
    assert 'migex_outbound_refusals_total{code="forbidden",partner="other"} 1.0' in text


@ANY_DATABASE
def test_a_new_request_id_is_returned_when_none_is_sent(client: TestClient) -> None:
    first = client.get("/v1/health").headers["X-Request-Id"]
    second = client.get("/v1/health").headers["X-Request-Id"]
    assert len(first) == 32
    assert first != second


@ANY_DATABASE
@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("req-42.a:b_c", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("has space", False),
        ("<x>", False),
    ],
)
def test_a_sane_incoming_request_id_is_kept_and_others_replaced(
    client: TestClient, sent: str, kept: bool
) -> None:
    returned = client.get("/v1/health", headers={"X-Request-Id": sent}).headers["X-Request-Id"]
    assert (returned == sent) is kept


def _request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "migex.request"]


@ANY_DATABASE
def test_one_log_line_a_request_names_the_accepted_message_and_partner(
    client: TestClient, federation: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    env = envelope_for(federation.uz)
    caplog.set_level(logging.INFO, logger="migex.request")
    resp = client.post(
        "/v1/messages",
        content=federation.uz.sign(env),
        headers={**JOSE, "X-Request-Id": "trace-1"},
    )
    [line] = _request_lines(caplog)
    assert resp.status_code == 201
    assert {
        k: getattr(line, k, None)
        for k in ("request_id", "method", "route", "status", "message_id", "partner")
    } == {
        "request_id": "trace-1",
        "method": "POST",
        "route": "/v1/messages",
        "status": 201,
        "message_id": env.id,
        "partner": "UZ:MIA",
    }
    assert line.duration_ms >= 0


@ANY_DATABASE
def test_the_log_line_of_a_refusal_carries_its_problem_code(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="migex.request")
    client.post("/v1/messages", content=b"x.y", headers=JOSE)
    [line] = _request_lines(caplog)
    assert (line.status, line.code) == (400, "malformed")


@ANY_DATABASE
def test_probes_are_logged_at_debug_only(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="migex.request")
    client.get("/v1/health")
    [line] = _request_lines(caplog)
    assert line.levelno == logging.DEBUG


@ANY_DATABASE
def test_queued_message_id_is_logged(
    quiet_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="migex.request")
    resp = queue(quiet_client)
    [line] = _request_lines(caplog)
    assert line.message_id == resp.json()["id"]


# -- personal data never reaches the logs ------------------------------------------
IIN = "061211600012"
NAMES = ("ZHAKSYBEKOVA", "AIGERIM", "Жаксыбекова", "Айгерим", "Нурлановна")
PERSONAL = (IIN, *NAMES, "N07654321")


def person_body(**person: Any) -> dict[str, Any]:
    body = example_body(VERIFICATION)
    body["person"]["identifiers"][0]["value"] = IIN
    body["person"].update(person)
    return body


class _Capture(logging.Handler):
    """Keeps every record both as the node writes it (JSON) and in full plain text,
    with exception messages and tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.json = JsonFormatter()
        self.plain = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.json.format(record))
        self.lines.append(self.plain.format(record))
        self.lines.append(repr(record.__dict__))


@contextmanager
def capture_all_logs() -> Iterator[_Capture]:
    capture = _Capture()
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "migex")
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
        lg.addHandler(capture)
    try:
        yield capture
    finally:
        for lg, (level, disabled) in zip(loggers, saved, strict=True):
            lg.removeHandler(capture)
            lg.setLevel(level)
            lg.disabled = disabled


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app under uvicorn (uvloop, httptools, access log on) on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", log_config=None, access_log=True, log_level="debug"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start in time"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def test_no_log_line_holds_personal_data_on_accept_and_refusal_paths(
    federation: Federation, clock: FixedClock
) -> None:
    uz = federation.uz
    accepted = envelope_for(uz, body=person_body())
    paths: list[tuple[bytes, int]] = [
        (uz.sign(accepted), 201),
        (uz.sign(accepted), 200),  # a re-delivery
        (uz.sign(envelope_for(uz, msg_id=accepted.id, iat=NOW + 1, body=person_body())), 409),
        (uz.sign(envelope_for(uz, body=person_body(birth_date=IIN, sex=NAMES[0]))), 422),
        (uz.sign(envelope_for(uz, body=person_body(), purpose="statistics")), 403),
        (uz.sign(envelope_for(uz, body=person_body(), iat=NOW - 3600)), 422),
        (uz.sign(envelope_for(uz, body=person_body(), aud="UZ:MIA")), 422),
        (federation.kg.sign(envelope_for(uz, body=person_body())), 401),
    ]
    transport = httpx.MockTransport(lambda _request: httpx.Response(503))
    with capture_all_logs() as capture:
        app = create_app(load_config(federation.write_config()), clock=clock, transport=transport)
        with serving(app) as url, httpx.Client(base_url=url) as http:
            statuses = [
                http.post("/v1/messages", content=token, headers=JOSE).status_code
                for token, _ in paths
            ]
            local = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
            statuses.append(
                http.post(
                    "/v1/outbox",
                    json={
                        "to": "UZ:MIA",
                        "type": VERIFICATION,
                        "agreement": "kz-uz-2019",
                        "purpose": "identity-verification",
                        "body": person_body(),
                    },
                    headers=local,
                ).status_code
            )
            statuses.append(
                http.post("/v1/outbox", json={"to": IIN, "body": {}}, headers=local).status_code
            )
    assert statuses == [expected for _, expected in paths] + [403, 422]
    assert any('"route": "/v1/messages"' in line for line in capture.lines)
    leaked = [line for line in capture.lines if any(value in line for value in PERSONAL)]
    assert leaked == []


def test_the_served_app_keeps_its_start_up_heap_out_of_the_collector(
    federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Full collections would otherwise walk every module and model on each run,
    holding all requests for tens of milliseconds (the load benchmark's p99)."""
    config = federation.write_config()
    gc.unfreeze()
    # The app built for tests migrates the database and freezes nothing.
    with TestClient(create_app(load_config(config), run_delivery=False)):
        assert gc.get_freeze_count() == 0
    monkeypatch.setenv("MIGEX_CONFIG", str(config))
    try:
        with TestClient(app_from_env()) as client:
            assert client.get("/v1/health").status_code == 200
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
