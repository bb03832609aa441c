"""The HTTP server's bounds on connections and request heads, which uvicorn lacks.

`migex serve` runs uvicorn with httptools (`LimitedHttpToolsProtocol`, a subclass of
uvicorn's httptools protocol). uvicorn and httptools bound neither the size nor the
number of header fields of a request head, nor the time it may take to arrive, nor
the number of open connections:

- httptools accumulates a header that never ends without limit (a 256 MiB header
  cost 104 s of CPU and 500 MiB);
- uvicorn's keep-alive timer runs only between requests, so a connection that never
  sends its first request head, or sends it a byte at a time, is kept for ever;
- uvicorn's `limit_concurrency` answers `503` once a request head has arrived, but an
  idle connection holds its file descriptor until then, so 1,100 idle connections
  exhausted the process's descriptors. uvicorn's `h11_max_incomplete_event_size`
  bounds the head only with the (slower) h11 parser, and still not in time.

The protocol adds, per connection (`HttpLimits`, from the node's `limits`):

- **head size**: the bytes received while a request head is incomplete are counted;
  past `max_header_bytes` the request is answered `431` (`headers-too-large`) and the
  connection closed. At most one read of the socket beyond the limit is parsed.
- **header count**: a head with more than `max_headers` fields is answered `431`.
- **head deadline**: a request head not complete `header_timeout` seconds after the
  connection opened, or after its first byte arrived on a kept-alive connection, is
  answered `408` (`request-timeout`) if any of it arrived, and the connection closed.
  Between requests uvicorn's keep-alive timeout applies as before.
- **connections**: a process holds at most `max_connections` connections. One more is
  answered at once with `503` (`unavailable`, `Retry-After: 1`, `Connection: close`),
  without waiting for its request; the node then reads and discards what the client
  sends for at most a second (so the answer is not lost to a reset) and closes.
  Beyond `REFUSING_AT_ONCE` such answers in progress, further connections are closed
  at once. The cap keeps the process below its file descriptor limit
  (`ensure_descriptors`).

Refusals made here happen before the application sees a request: they are not in the
request log or metrics. They are counted and reported by the `migex.http` logger at
most once every `REPORT_SECONDS` per kind, so a flood does not flood the log.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import resource
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar, Final, cast

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from service.protocol.problems import Problem

log = logging.getLogger("migex.http")

# Over-the-cap connections being answered at once; beyond this they are closed at once.
REFUSING_AT_ONCE: Final = 64
# How long an over-the-cap connection is read (and discarded) after its answer.
LINGER_SECONDS: Final = 1.0
# File descriptors a process needs beside its client connections: the listening
# socket, database connections (16 per process on PostgreSQL), delivery connections
# to partners, log and lock files, refusals in progress.
RESERVED_DESCRIPTORS: Final = 256
REPORT_SECONDS: Final = 10.0


@dataclass(frozen=True)
class HttpLimits:
    """What one connection and one request head may take (see the module docstring)."""

    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    max_connections: int = 512


class _Tally:
    """Counts refusals of one kind; logs the count at most once every REPORT_SECONDS."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.count = 0
        self.reported = float("-inf")

    def add(self) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.reported >= REPORT_SECONDS:
            log.warning("%s: %d since the last report", self.what, self.count)
            self.count = 0
            self.reported = now


_TALLIES = {
    "too-large": _Tally("request heads refused: over the size limit"),
    "too-many": _Tally("request heads refused: too many header fields"),
    "timeout": _Tally("connections closed: request head not received in time"),
    "over-cap": _Tally("connections refused: over the connection limit"),
}


def _answer(
    code: str,
    detail: str,
    default_headers: list[tuple[bytes, bytes]],
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    """A complete HTTP/1.1 problem response that closes the connection."""
    problem = Problem(code, detail)
    body = json.dumps(problem.document()).encode()
    status = problem.status
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    headers = [
        *default_headers,
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *extra,
    ]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _Refusal(asyncio.Protocol):
    """An over-the-cap connection: answered at once, read and discarded briefly, closed."""

    at_once: ClassVar[set[_Refusal]] = set()

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # a stream server's (uvloop's) transport
        self.transport = transport
        if len(self.at_once) >= REFUSING_AT_ONCE:
            transport.abort()
            return
        self.at_once.add(self)
        transport.write(self.answer)
        if transport.can_write_eof():
            transport.write_eof()
        self.timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)

    def data_received(self, data: bytes) -> None:
        pass  # the request is not read: it is answered already

    def eof_received(self) -> bool:
        return False  # the client has read the answer and closed: close too

    def connection_lost(self, exc: Exception | None) -> None:
        self.at_once.discard(self)
        if self.timer is not None:
            self.timer.cancel()


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a head that is refused."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of `HttpLimits` (module docstring)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HttpLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        # Whether a request head is due: from the connection's start and from the end
        # of each request's body until that head is complete.
        self._head_pending = True
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refusal: str | None = None
        self._body_pending = False
        self._closing_after_response = False

    # -- connections -----------------------------------------------------------------
    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        if len(self.connections) >= self.limits.max_connections:
            _TALLIES["over-cap"].add()
            detail = (
                f"the node serves at most {self.limits.max_connections} connections "
                "per process; retry shortly"
            )
            answer = _answer(
                "unavailable",
                detail,
                self.server_state.default_headers,
                ((b"retry-after", b"1"),),
            )
            refusal = _Refusal(answer)
            transport.set_protocol(refusal)
            refusal.connection_made(transport)
            return
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    # -- the request head ------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, with the head counted and refusals answered.
        self._unset_keepalive_if_required()
        if self._closing_after_response:
            return  # refused while a response is being produced: nothing more is read
        if self._head_pending:
            self._head_bytes += len(data)
        if self._head_timer is None and (self._head_pending or self._draining):
            self._arm_head_timer()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse_head(self._refusal)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        if self._head_pending and self._head_bytes > self.limits.max_header_bytes:
            self._refuse_head("too-large")

    @property
    def _draining(self) -> bool:
        """Whether the client is still sending a body whose response is complete."""
        return self._body_pending and self.cycle is not None and self.cycle.response_complete

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refusal = "too-many"
            raise _HeadRefused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_pending = False
        self._body_pending = True
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._body_pending = False
        self._cancel_head_timer()  # a body drained after its response is in
        self._head_pending = True  # the next request's head may start now

    def _refuse_head(self, kind: str) -> None:
        _TALLIES[kind].add()
        if kind == "too-many":
            detail = f"the request head has more than {self.limits.max_headers} header fields"
        else:
            detail = f"the request head is over {self.limits.max_header_bytes} bytes"
        self._stop_reading("headers-too-large", detail)

    # -- the head deadline -----------------------------------------------------------
    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._draining:
            self.transport.close()  # its answer is out; the rest of its body is not awaited
            return
        if not self._head_pending:
            return
        _TALLIES["timeout"].add()
        if self._head_bytes:
            detail = f"the request head was not received within {self.limits.header_timeout:g} s"
            self._stop_reading("request-timeout", detail)
        else:
            self._stop_reading(None, "")

    def _stop_reading(self, code: str | None, detail: str) -> None:
        """Answer `code` (none: no answer) and close, or, while a response is still being
        produced, read nothing more and close once it is sent."""
        self._cancel_head_timer()
        self._head_pending = False
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._closing_after_response = True
            self.cycle.keep_alive = False
            return
        if code is not None:
            self.transport.write(_answer(code, detail, self.server_state.default_headers))
        self.transport.close()


def protocol_factory(limits: HttpLimits) -> Any:
    """The `http` argument of uvicorn for these limits: it builds each connection's
    protocol, and can be pickled to reach worker processes."""
    return functools.partial(LimitedHttpToolsProtocol, limits=limits)


def ensure_descriptors(max_connections: int) -> int:
    """Raise this process's open-file limit (inherited by its workers) to what
    `max_connections` needs; returns the limit. Raises ValueError if the hard limit
    is lower."""
    need = max_connections + RESERVED_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise ValueError(
                f"limits.max_connections {max_connections} needs {need} open files per "
                f"process; this process may open at most {hard} (ulimit -Hn): lower "
                "limits.max_connections or raise the limit"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        soft = need
    return int(soft)
