"""Nodes run as `migex serve` processes: configurations, databases, raw HTTP, memory."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.note import verifier_key
from service.protocol.envelope import Envelope
from tests.robustness.federations import federation_in
from tests.support.databases import PG_URL, fresh_pg_database
from tests.support.nodes import Federation, envelope_for

Mutate = Callable[[dict[str, Any]], None]


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh SQLite file or PostgreSQL database, for fixtures wider than one test."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'node.db'}"
        return
    assert PG_URL, "the postgres parameter is skipped without MIGEX_TEST_PG_URL"
    with fresh_pg_database(PG_URL) as url:
        yield url


def node_config(tmp: Path, database_url: str, mutate: Mutate | None = None) -> Federation:
    """The test federation's KZ node, configured for `database_url`, its file written."""
    federation = federation_in(tmp)
    federation.database_url = database_url
    federation.mutate = mutate
    federation.write_config()
    return federation


def config_path(federation: Federation) -> Path:
    return federation.tmp / "kz.yaml"


def fresh(federation: Federation, **kw: Any) -> Envelope:
    """An envelope from UZ:MIA dated now (a served node runs on the real clock)."""
    return envelope_for(federation.uz, iat=int(time.time()), **kw)


def audit_vkey(federation: Federation) -> str:
    private = federation.kz.key.private
    assert isinstance(private, Ed25519PrivateKey)
    return verifier_key(f"migex/{federation.kz.party}", private.public_key())


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@dataclass
class RawAnswer:
    status: int | None
    data: bytes
    sent: int
    seconds: float  # until the first byte of the answer


def raw_request(
    host: str,
    port: int,
    head: str,
    body: Iterator[bytes],
    *,
    timeout: float,
) -> RawAnswer:
    """Send `head` then body pieces until the server answers, closes, or `timeout` passes.

    Stops sending as soon as an answer is readable, so an early refusal is seen as early.
    """
    started = time.monotonic()
    sent = 0
    data = b""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        deadline = started + timeout
        for piece in body:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable or time.monotonic() > deadline:
                break
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        data, seconds = _read_answer(sock, deadline, started)
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
    return RawAnswer(status, data, sent, seconds)


def _read_answer(sock: socket.socket, deadline: float, started: float) -> tuple[bytes, float]:
    """Read until the head and a Content-Length body are in, the peer closes, or time is up."""
    data = b""
    answered_at: float | None = None
    while True:
        readable, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            break
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            break
        if not piece:
            break
        if answered_at is None:
            answered_at = time.monotonic()
        data += piece
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                None,
            )
            if length is None or len(body) >= length:
                break
    return data, (answered_at or time.monotonic()) - started
