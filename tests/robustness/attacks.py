"""Bounded attacks on a served node's request heads and connections, in a process of
their own (so that the test measuring a partner's latency is not slowed by them).

`Attacks(port)` starts a process running three loops on loopback until stopped or
`seconds` have passed: never-ending headers, slow heads sent a byte at a time
(slowloris), and silent connections, each reopened as the node closes them. Only the
standard library is imported here, so the process starts quickly.
"""

from __future__ import annotations

import multiprocessing
import select
import socket
import threading
import time
from collections import Counter
from multiprocessing.sharedctypes import Synchronized
from typing import Any

LOOPBACK = "127.0.0.1"
KINDS = (
    "huge-header 431",
    "huge-header other",
    "slow opened",
    "slow closed by the node",
    "idle opened",
    "idle closed by the node",
)
PIECE = 64 * 1024
HUGE = 256 * 1024 * 1024


def readable(socks: list[socket.socket], timeout: float = 0) -> list[socket.socket]:
    """The sockets with something to read (or closed), by poll: select stops at fd 1024."""
    poller = select.poll()
    by_fd = {sock.fileno(): sock for sock in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    return [by_fd[fd] for fd, _ in poller.poll(timeout * 1000)]


class _Loops:
    def __init__(self, port: int, counts: list[Synchronized[int]], deadline: float) -> None:
        self.port = port
        self.counts = counts
        self.deadline = deadline
        self.stop = threading.Event()

    def count(self, kind: str) -> None:
        with self.counts[KINDS.index(kind)].get_lock():
            self.counts[KINDS.index(kind)].value += 1

    def running(self) -> bool:
        return not self.stop.is_set() and time.monotonic() < self.deadline

    def connect(self) -> socket.socket:
        return socket.create_connection((LOOPBACK, self.port), timeout=10)

    def huge_headers(self) -> None:
        head = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Padding: "
        piece = b"a" * PIECE
        for _ in range(100_000):
            if not self.running():
                return
            with self.connect() as sock:
                try:
                    sock.sendall(head)
                    for _ in range(HUGE // PIECE):
                        if readable([sock]) or not self.running():
                            break
                        sock.sendall(piece)
                except OSError:
                    pass  # the node closed: its answer may be waiting all the same
                try:
                    answer = sock.recv(65536)
                except OSError as exc:
                    answer = repr(exc).encode()
            self.count(
                "huge-header 431" if answer.startswith(b"HTTP/1.1 431 ") else "huge-header other"
            )

    def slow_heads(self, connections: int) -> None:
        conns: list[socket.socket] = []
        try:
            for _ in range(100_000):
                if not self.running():
                    return
                while len(conns) < connections:
                    sock = self.connect()
                    sock.sendall(b"POST /v1/messages HTTP/1.1\r\n")
                    conns.append(sock)
                    self.count("slow opened")
                for sock in list(conns):
                    try:
                        sock.sendall(b"X")
                    except OSError:
                        conns.remove(sock)
                        sock.close()
                        self.count("slow closed by the node")
                self.stop.wait(0.1)
        finally:
            for sock in conns:
                sock.close()

    def idle_connections(self, connections: int) -> None:
        conns: list[socket.socket] = []
        try:
            for _ in range(100_000):
                if not self.running():
                    return
                while len(conns) < connections:
                    conns.append(self.connect())
                    self.count("idle opened")
                for sock in readable(conns, 0.1):
                    conns.remove(sock)
                    sock.close()
                    self.count("idle closed by the node")
        finally:
            for sock in conns:
                sock.close()


def _run(
    port: int,
    stop: Any,
    counts: list[Synchronized[int]],
    seconds: float,
    slow: int,
    idle: int,
) -> None:
    loops = _Loops(port, counts, time.monotonic() + seconds)
    threads = [
        threading.Thread(target=loops.huge_headers),
        threading.Thread(target=loops.slow_heads, args=(slow,)),
        threading.Thread(target=loops.idle_connections, args=(idle,)),
    ]
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    loops.stop.set()
    for thread in threads:
        thread.join()


class Attacks:
    """The attack process (see the module docstring); `counts()` reads its tallies."""

    def __init__(self, port: int, *, seconds: float, slow: int, idle: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._counts = [ctx.Value("q", 0) for _ in KINDS]
        self._process = ctx.Process(
            target=_run, args=(port, self._stop, self._counts, seconds, slow, idle), daemon=True
        )
        self.seconds = seconds

    def counts(self) -> Counter[str]:
        return Counter({kind: value.value for kind, value in zip(KINDS, self._counts, strict=True)})

    def __enter__(self) -> Attacks:
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
