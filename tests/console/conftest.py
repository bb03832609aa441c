"""Console fixtures: a node with some exchange history, in a TestClient or served live
on a loopback port for the browser tests."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.clock import FixedClock
from service.config import load_config
from service.main import create_app
from service.runtime import Node
from tests.support.nodes import (
    CLIENT_TOKEN,
    Federation,
    envelope_for,
    example_body,
    outbox_statistics,
)
from tests.support.processes import LOOPBACK, free_port, poll

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
JOSE = {"Content-Type": "application/jose"}
CLIENT = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
STATISTICS = "statistics.migration-flows"
GARBAGE = 55  # refusals: more than one page of the log search (50 a page)


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found is not None, "the page has no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, token: str) -> TestClient:
    page = client.get("/console/sign-in")
    resp = client.post(
        "/console/sign-in",
        data={"token": token, "csrf": csrf_of(page.text), "next": ""},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    return client


def node_of(app: Any) -> Node:
    node: Node = app.state.node
    return node


def refusing_partner() -> httpx.MockTransport:
    """A partner that refuses every delivery: each outbound message ends failed."""
    return httpx.MockTransport(
        lambda _request: httpx.Response(
            403, json={"code": "forbidden"}, headers={"Content-Type": "application/problem+json"}
        )
    )


def console_node(federation: Federation, clock: FixedClock) -> FastAPI:
    return create_app(
        load_config(federation.write_config()),
        clock=clock,
        run_delivery=False,
        transport=refusing_partner(),
    )


@dataclass(frozen=True)
class History:
    received: list[str]
    dataset: str
    failed: list[str]


def populate(http: Any, federation: Federation) -> History:
    """Messages received from UZ (one a statistics dataset), refusals, and two outbound
    messages queued; `http` is a TestClient or an httpx.Client on the live server."""
    received = []
    for _ in range(3):
        env = envelope_for(federation.uz)
        assert (
            http.post("/v1/messages", content=federation.uz.sign(env), headers=JOSE).status_code
            == 201
        )
        received.append(env.id)
    stats = envelope_for(
        federation.uz, msg_type=STATISTICS, purpose="statistics", body=example_body(STATISTICS)
    )
    assert (
        http.post("/v1/messages", content=federation.uz.sign(stats), headers=JOSE).status_code
        == 201
    )
    for _ in range(GARBAGE):
        assert http.post("/v1/messages", content=b"garbage", headers=JOSE).status_code == 400
    failed = []
    for _ in range(2):
        resp = http.post("/v1/outbox", json=outbox_statistics(), headers=CLIENT)
        assert resp.status_code == 202, resp.text
        failed.append(resp.json()["id"])
    return History(received, stats.id, failed)


@pytest.fixture
def console_client(federation: Federation, clock: FixedClock) -> Iterator[TestClient]:
    with TestClient(console_node(federation, clock), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def history(console_client: TestClient, federation: Federation) -> History:
    found = populate(console_client, federation)
    delivery = node_of(console_client.app).delivery
    assert delivery is not None
    assert console_client.portal.call(delivery.run_once) == 2  # type: ignore[union-attr]
    return found


class LiveNode:
    """The node's app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host=LOOPBACK, port=self.port, log_level="warning", lifespan="on")
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="console-live", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())

    def __enter__(self) -> LiveNode:
        self.thread.start()
        poll(lambda: self.server.started, timeout=30, what="console live server start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.loop.close()

    @property
    def node(self) -> Node:
        return node_of(self.app)

    def deliver(self) -> int:
        """Run one round of the delivery worker on the server's loop."""
        delivery = self.node.delivery
        assert delivery is not None
        done: int = asyncio.run_coroutine_threadsafe(delivery.run_once(), self.loop).result(30)
        return done
