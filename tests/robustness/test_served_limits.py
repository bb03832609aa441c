"""Limits of a running `migex serve` process, over raw sockets.

Oversized bodies are cut off while they arrive (nothing buffered), slow bodies time
out with 408 while other requests go on, and a partner's rate limit holds across two
processes sharing one database.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.robustness.keyforms import leaked
from tests.robustness.served import (
    RawAnswer,
    config_path,
    database,
    fresh,
    node_config,
    raw_request,
    rss_kib,
)
from tests.support.nodes import CLIENT_TOKEN, Federation
from tests.support.processes import NodeProcess, free_port

pytestmark = pytest.mark.slow

LIMIT = 1024 * 1024  # the default limits.max_message_bytes
TIMEOUT = 1.0  # limits.request_timeout_seconds of the node under test
PIECE = 64 * 1024
BODY_TOTAL = 64 * 1024 * 1024  # what a client would push if nobody stopped it
EARLY = 8 * 1024 * 1024  # the refusal must come before this much was sent
RSS_GROWTH_KIB = 6 * 1024
ROUTES = {
    "/v1/messages": "application/jose",
    "/v1/outbox": "application/json",
}


@dataclass
class Served:
    federation: Federation
    process: NodeProcess

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def head(self, path: str, framing: str) -> str:
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: 127.0.0.1:{self.process.port}",
            f"Content-Type: {ROUTES[path]}",
            f"Authorization: Bearer {CLIENT_TOKEN}",
            framing,
        ]
        return "\r\n".join(lines) + "\r\n\r\n"

    def raw(self, path: str, framing: str, body: Iterator[bytes], timeout: float) -> RawAnswer:
        return raw_request(
            "127.0.0.1", self.process.port, self.head(path, framing), body, timeout=timeout
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("served-limits")

    def limits(cfg: dict[str, Any]) -> None:
        cfg["limits"] = {"request_timeout_seconds": TIMEOUT}

    with database("sqlite", tmp) as url:
        federation = node_config(tmp, url, limits)
        with NodeProcess("kz", config_path(federation), log_dir=tmp) as process:
            process.start()
            yield Served(federation, process)


def plain(total: int) -> Iterator[bytes]:
    piece = b"a" * PIECE
    for _ in range(total // PIECE):
        yield piece


def chunked(total: int) -> Iterator[bytes]:
    for piece in plain(total):
        yield b"%x\r\n" % len(piece) + piece + b"\r\n"


def problem_code(answer: RawAnswer) -> str:
    _, _, body = answer.data.partition(b"\r\n\r\n")
    code: str = json.loads(body)["code"]
    return code


@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize("framing", ["declared", "chunked"])
def test_huge_body_is_cut_off_early_without_being_buffered(
    served: Served, path: str, framing: str
) -> None:
    before = rss_kib(served.pid)
    if framing == "declared":
        answer = served.raw(path, f"Content-Length: {1024**3}", plain(BODY_TOTAL), timeout=30)
    else:
        answer = served.raw(path, "Transfer-Encoding: chunked", chunked(BODY_TOTAL), timeout=30)
    grown = rss_kib(served.pid) - before
    assert (answer.status, problem_code(answer)) == (413, "too-large"), answer.data[:300]
    assert answer.sent < EARLY, f"the refusal came after {answer.sent} bytes"
    assert grown < RSS_GROWTH_KIB, f"the process grew by {grown} KiB"


@pytest.mark.parametrize("path", list(ROUTES))
def test_half_sent_body_times_out_without_blocking_others(served: Served, path: str) -> None:
    result: list[RawAnswer] = []
    slow = threading.Thread(
        target=lambda: result.append(
            served.raw(path, "Content-Length: 1000", iter([b"x" * 10]), timeout=TIMEOUT + 10)
        )
    )
    slow.start()
    started = time.monotonic()
    token = served.federation.uz.sign(fresh(served.federation))
    other = httpx.post(
        f"{served.process.url}/v1/messages",
        content=token,
        headers={"Content-Type": "application/jose"},
        timeout=10,
    )
    other_seconds = time.monotonic() - started
    slow.join()
    answer = result[0]
    assert other.status_code == 201, other.text
    assert other_seconds < TIMEOUT, f"another request waited {other_seconds:.2f} s"
    assert (answer.status, problem_code(answer)) == (408, "request-timeout"), answer.data[:300]
    assert TIMEOUT * 0.9 <= answer.seconds < TIMEOUT + 5, answer.seconds


def test_logs_of_a_run_hold_no_key_material(served: Served) -> None:
    federation = served.federation
    url = f"{served.process.url}/v1/messages"
    jose = {"Content-Type": "application/jose"}
    good = federation.uz.sign(fresh(federation))
    head, payload, _ = good.split(b".")
    other = federation.uz.sign(fresh(federation)).split(b".")[2]
    for body in (good, good, b"garbage", head + b"." + payload + b"." + other, b"a.b.c"):
        httpx.post(url, content=body, headers=jose, timeout=10)
    httpx.get(f"{served.process.url}/v1/audit/checkpoint", timeout=10)
    log = served.process.log_path.read_text("utf-8", errors="replace")
    assert log.strip(), "the node wrote no log"
    assert leaked(log, federation) == []


# -- the rate limit across processes ------------------------------------------------

RATE = {"per_second": 0.05, "burst": 6}
RATE_SENDS = 30


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_nodes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Federation, list[NodeProcess]]]:
    if request.param == "postgres":
        request.getfixturevalue("pg_database")  # skips without MIGEX_TEST_PG_URL
    tmp = tmp_path_factory.mktemp("two-nodes")

    def slow_partner(cfg: dict[str, Any]) -> None:
        next(p for p in cfg["partners"] if p["party"] == "UZ:MIA")["rate_limit"] = RATE

    with database(request.param, tmp) as url:
        federation = node_config(tmp, url, slow_partner)
        nodes = [
            NodeProcess(name, config_path(federation), log_dir=tmp, port=free_port())
            for name in ("kz-a", "kz-b")
        ]
        try:
            for node in nodes:
                node.start()
            yield federation, nodes
        finally:
            for node in nodes:
                node.stop()


def test_partner_rate_limit_holds_across_processes(
    two_nodes: tuple[Federation, list[NodeProcess]],
) -> None:
    federation, nodes = two_nodes
    tokens = [federation.uz.sign(fresh(federation)) for _ in range(RATE_SENDS)]
    started = time.monotonic()

    def send(n: int) -> tuple[int, int, str | None]:
        resp = httpx.post(
            f"{nodes[n % 2].url}/v1/messages",
            content=tokens[n],
            headers={"Content-Type": "application/jose"},
            timeout=30,
        )
        return n % 2, resp.status_code, resp.headers.get("Retry-After")

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(RATE_SENDS)))
    elapsed = time.monotonic() - started
    allowed = RATE["burst"] + int(RATE["per_second"] * elapsed)
    accepted = sum(1 for _, status, _ in answers if status == 201)
    limited = Counter(node for node, status, _ in answers if status == 429)
    assert {status for _, status, _ in answers} <= {201, 429}, answers
    assert RATE["burst"] <= accepted <= allowed, f"accepted {accepted} of {RATE_SENDS}"
    assert all(retry and int(retry) >= 1 for _, s, retry in answers if s == 429), answers
    assert set(limited) == {0, 1}, f"429s by process: {dict(limited)}"
