"""Request heads and connections of a running `migex serve` process, over raw sockets.

A head over the size limit or with too many fields is refused with `431` before much
of it is read; a head that does not arrive in time closes its connection; connections
over the per-process cap are answered `503` at once while the process keeps its file
descriptors; and while all of these attacks run together, a partner's request still
completes in under 100 ms.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service.httpserver import REFUSING_AT_ONCE
from tests.robustness.attacks import Attacks, readable
from tests.robustness.served import (
    RawAnswer,
    config_path,
    database,
    fresh,
    node_config,
    raw_request,
    rss_kib,
)
from tests.support.nodes import Federation
from tests.support.processes import LOOPBACK, NodeProcess, poll

pytestmark = pytest.mark.slow

HEAD_LIMIT = 16 * 1024  # the default limits.max_header_bytes
MAX_HEADERS = 100  # the default limits.max_headers
DEADLINE = 1.0  # limits.header_timeout_seconds of the node under test
MAX_CONNECTIONS = 200  # limits.max_connections of the node under test
HUGE_HEADER = 256 * 1024 * 1024  # what the client would push if nobody stopped it
PIECE = 64 * 1024
EARLY = 8 * 1024 * 1024  # as for bodies (test_served_limits.py)
FAST = 0.1  # a normal request's median latency while the attacks run


@dataclass
class Served:
    federation: Federation
    process: NodeProcess

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def connect(self) -> socket.socket:
        return socket.create_connection((LOOPBACK, self.process.port), timeout=10)

    def partner_request(self, client: httpx.Client) -> tuple[int, float]:
        """A partner's message: its status and seconds."""
        token = self.federation.uz.sign(fresh(self.federation))
        started = time.monotonic()
        resp = client.post(
            f"{self.process.url}/v1/messages",
            content=token,
            headers={"Content-Type": "application/jose"},
            timeout=10,
        )
        return resp.status_code, time.monotonic() - started


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("served-heads")
    _enough_descriptors(2000)

    def limits(cfg: dict[str, Any]) -> None:
        cfg["limits"] = {
            "header_timeout_seconds": DEADLINE,
            "max_connections": MAX_CONNECTIONS,
        }

    with database("sqlite", tmp) as url:
        federation = node_config(tmp, url, limits)
        with NodeProcess("kz", config_path(federation), log_dir=tmp) as process:
            process.start()
            yield Served(federation, process)


def _enough_descriptors(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def endless_header() -> Iterator[bytes]:
    piece = b"a" * PIECE
    for _ in range(HUGE_HEADER // PIECE):
        yield piece


def problem_of(answer: RawAnswer | bytes) -> tuple[int | None, str | None]:
    data = answer.data if isinstance(answer, RawAnswer) else answer
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
    _, _, body = data.partition(b"\r\n\r\n")
    return status, json.loads(body)["code"] if body else None


def read_until_closed(sock: socket.socket, timeout: float, started: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes (or `timeout`), and how long after
    `started` it closed."""
    data = b""
    sock.settimeout(timeout)
    try:
        while piece := sock.recv(65536):
            data += piece
    except (TimeoutError, ConnectionResetError):
        pass
    return data, time.monotonic() - started


def read_response(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """One whole response with a `Content-Length` body: a single `recv` may return its
    head alone, and the rest would then be read as the start of the next answer."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return head + b"\r\n\r\n" + body


def huge_header(served: Served) -> RawAnswer:
    head = f"GET /v1/health HTTP/1.1\r\nHost: {LOOPBACK}\r\nX-Padding: "
    return raw_request(LOOPBACK, served.process.port, head, endless_header(), timeout=30)


# -- one attack at a time ---------------------------------------------------------------


def test_a_never_ending_header_is_refused_early_at_little_cost(served: Served) -> None:
    rss, cpu = rss_kib(served.pid), cpu_seconds(served.pid)
    answer = huge_header(served)
    grown, spent = rss_kib(served.pid) - rss, cpu_seconds(served.pid) - cpu
    assert problem_of(answer) == (431, "headers-too-large"), answer.data[:300]
    # What the client pushed, kernel socket buffers included: the node itself read
    # one socket read past the limit (its memory and CPU show it).
    assert answer.sent < EARLY, f"the refusal came after {answer.sent} bytes"
    assert grown < 4 * 1024, f"the process grew by {grown} KiB"
    assert spent < 0.5, f"the process spent {spent:.2f} s of CPU"


def test_a_head_just_under_the_size_limit_is_served(served: Served) -> None:
    padding = "a" * (HEAD_LIMIT - 200)
    resp = httpx.get(f"{served.process.url}/v1/health", headers={"X-Padding": padding})
    assert resp.status_code == 200


def test_head_is_answered_like_get_without_a_body(served: Served) -> None:
    head = f"HEAD /v1/health HTTP/1.1\r\nHost: {LOOPBACK}\r\n\r\n"
    # Read until the timeout: a body, had one been sent, would arrive meanwhile.
    answer = raw_request(LOOPBACK, served.process.port, head, iter(()), timeout=1)
    status_line, _, rest = answer.data.partition(b"\r\n")
    fields, _, body = rest.partition(b"\r\n\r\n")
    get = httpx.get(f"{served.process.url}/v1/health")
    assert status_line == b"HTTP/1.1 200 OK"
    assert f"content-length: {len(get.content)}".encode() in fields.lower()
    assert body == b""


def test_a_head_with_too_many_fields_is_refused(served: Served) -> None:
    fields = "".join(f"X-{n}: 1\r\n" for n in range(MAX_HEADERS + 1))
    head = f"GET /v1/health HTTP/1.1\r\nHost: {LOOPBACK}\r\n{fields}\r\n"
    answer = raw_request(LOOPBACK, served.process.port, head, iter(()), timeout=10)
    assert problem_of(answer) == (431, "headers-too-large"), answer.data[:300]
    allowed = {f"X-{n}": "1" for n in range(MAX_HEADERS - 10)}
    assert httpx.get(f"{served.process.url}/v1/health", headers=allowed).status_code == 200


def _nothing(sock: socket.socket, stop: threading.Event) -> None:
    stop.wait()


def _half_a_head(sock: socket.socket, stop: threading.Event) -> None:
    sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
    stop.wait()


def _a_byte_at_a_time(sock: socket.socket, stop: threading.Event) -> None:
    for byte in b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
        if stop.wait(0.1):
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (_nothing, None),  # closed without an answer: there is no request to answer
        (_half_a_head, (408, "request-timeout")),
        (_a_byte_at_a_time, (408, "request-timeout")),  # arriving bytes do not extend it
    ],
    ids=["idle", "half-a-head", "a-byte-at-a-time"],
)
def test_a_head_not_received_in_time_closes_the_connection(
    served: Served,
    send: Callable[[socket.socket, threading.Event], None],
    expected: tuple[int, str] | None,
) -> None:
    stop = threading.Event()
    started = time.monotonic()  # before the node accepts: its deadline starts then
    with served.connect() as sock:
        sender = threading.Thread(target=send, args=(sock, stop))
        sender.start()
        try:
            data, seconds = read_until_closed(sock, DEADLINE + 10, started)
        finally:
            stop.set()
            sender.join()
    assert DEADLINE * 0.9 <= seconds < DEADLINE + 2, f"closed after {seconds:.2f} s"
    assert (problem_of(data) if data else None) == expected, data[:300]


def test_a_kept_alive_connection_gets_a_deadline_for_its_next_head(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(f"GET /v1/health HTTP/1.1\r\nHost: {LOOPBACK}\r\n\r\n".encode())
        first = read_response(sock)
        assert first.startswith(b"HTTP/1.1 200 "), first[:300]
        started = time.monotonic()  # before the first byte of the next head is sent
        sock.sendall(b"GET /v1/health HTTP/1.1\r\n")
        data, seconds = read_until_closed(sock, DEADLINE + 10, started)
    assert DEADLINE * 0.9 <= seconds < DEADLINE + 2, f"closed after {seconds:.2f} s"
    assert problem_of(data) == (408, "request-timeout")


def test_connections_over_the_cap_are_refused_and_descriptors_stay_bounded(
    served: Served,
) -> None:
    before = open_descriptors(served.pid)
    sockets: list[socket.socket] = []
    try:
        for _ in range(1100):
            sockets.append(served.connect())
        time.sleep(0.3)  # let the process accept them all
        during = open_descriptors(served.pid)
        answers: Counter[str] = Counter()
        for sock in sockets:
            if not readable([sock]):
                answers["held"] += 1
                continue
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            answers["503" if problem_of(data) == (503, "unavailable") else "closed"] += 1
        # The cap is the process's: a probe of /v1/health may hold one more.
        assert MAX_CONNECTIONS - 1 <= answers["held"] <= MAX_CONNECTIONS, answers
        assert answers["503"] >= REFUSING_AT_ONCE // 2, answers
        bound = MAX_CONNECTIONS + REFUSING_AT_ONCE + 50
        assert during - before <= bound, f"{during - before} more descriptors"
        # The held ones time out; then the node serves again.
        time.sleep(DEADLINE + 0.5)
        assert httpx.get(f"{served.process.url}/v1/health", timeout=5).status_code == 200
    finally:
        for sock in sockets:
            sock.close()


def test_the_503_over_the_cap_is_a_problem_with_retry_after(served: Served) -> None:
    sockets = [served.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        resp = httpx.get(f"{served.process.url}/v1/health", timeout=5)
    finally:
        for sock in sockets:
            sock.close()
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert resp.json()["code"] == "unavailable"


# -- all at once, and a partner -----------------------------------------------------------

ATTACK_SECONDS = 30.0  # the attack process stops by then at the latest
SLOW_CONNECTIONS = 60
IDLE_CONNECTIONS = 60
PARTNER_REQUESTS = 15


def test_a_partner_request_stays_fast_while_heads_and_connections_are_attacked(
    served: Served,
) -> None:
    attacks = Attacks(
        served.process.port,
        seconds=ATTACK_SECONDS,
        slow=SLOW_CONNECTIONS,
        idle=IDLE_CONNECTIONS,
    )
    # Every request on a new connection, as it must get through the accept queue.
    client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
    with client, attacks:

        def under_way() -> bool:
            counts = attacks.counts()
            return (
                counts["huge-header 431"] > 0
                and counts["slow closed by the node"] >= SLOW_CONNECTIONS
                and counts["idle closed by the node"] >= IDLE_CONNECTIONS
            )

        # Every attack is running and has been cut off by the node at least once.
        poll(under_way, timeout=ATTACK_SECONDS / 2, what="the attacks under way")
        before = attacks.counts()
        answers = []
        for _ in range(PARTNER_REQUESTS):
            answers.append(served.partner_request(client))
            time.sleep(0.1)
        during = attacks.counts() - before
    elapsed = [seconds for _, seconds in answers]
    median = statistics.median(elapsed)
    assert [status for status, _ in answers] == [201] * PARTNER_REQUESTS, answers
    assert median < FAST, f"median {median * 1000:.0f} ms; all: {elapsed}; {during}"
    # The attacks ran all along, and were refused or cut off, each in its own way.
    assert during["huge-header 431"] >= 10, during
    assert during["slow closed by the node"] >= SLOW_CONNECTIONS, during
    assert during["idle closed by the node"] >= IDLE_CONNECTIONS, during
    assert during["huge-header other"] == 0, during
