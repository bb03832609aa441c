"""The delivery worker's connections to partners: httpx's transport interface over
httpcore's HTTP/1.1 connections, with an asyncio network backend and a pool of its own.

HTTP/1.1 itself (httpcore with h11) and TLS (httpx's default context) are used
unchanged. Two parts are replaced, because profiles of the sending node showed them
to dominate a delivery's cost:

- the socket layer: httpcore's default backend goes through anyio, which costs a
  cancel scope and a task lookup per read and write and a `select` call per pooled
  connection per request; this backend reads from an asyncio protocol's buffer;
- the pool: httpcore's scans every connection on every request, so its cost grows
  with the delivery concurrency; this one keeps a stack of idle connections per
  partner and bounds the requests in flight with a semaphore.

A partner reached through an HTTP proxy (HTTPS_PROXY / HTTP_PROXY, NO_PROXY) goes
through httpcore's own proxy pool (a CONNECT tunnel for https, forwarding for http) on
the same socket layer. The delivery benchmark compares this transport with httpx's
(`benchmarks/README.md`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import urllib.request
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from typing import Any, cast

import httpcore
import httpx

# Stop reading from a socket while this much is buffered and unread.
_HIGH_WATER = 256 * 1024
# Writes up to this size in all wait for the next read and go out together.
_COALESCE = 64 * 1024


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        # At most one waiter each for "readable" (data, EOF or loss) and "drained".
        self._waiters: dict[str, asyncio.Future[None]] = {}

    # -- asyncio callbacks -----------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self._notify("readable")

    def eof_received(self) -> bool:
        self.eof = True
        self._notify("readable")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._notify("readable")
        self._notify("drained")

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._notify("drained")

    # -- used by the stream ----------------------------------------------------
    def _notify(self, what: str) -> None:
        waiter = self._waiters.get(what)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, what: str, timeout: float | None) -> None:
        """Until `_notify(what)`; TimeoutError after `timeout` seconds."""
        waiter = self._waiters[what] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await waiter
        finally:
            del self._waiters[what]


class AsyncioStream(httpcore.AsyncNetworkStream):
    """Small writes are held until the next read (or a large write), so a request's
    head and body leave in one send: one packet for the partner to parse, not two."""

    def __init__(self, protocol: _Protocol) -> None:
        self._p = protocol
        self._pending = bytearray()

    def _transport(self) -> asyncio.Transport:
        if self._p.transport is None:  # pragma: no cover - set before the stream exists
            raise httpcore.ConnectError("not connected")
        return self._p.transport

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        p = self._p
        if self._pending:
            await self._send(b"", timeout)
        if not p.buffer and not p.eof:
            try:
                await p.wait("readable", timeout)
            except TimeoutError:
                raise httpcore.ReadTimeout("timed out reading from the partner") from None
        if p.buffer:
            data = bytes(p.buffer[:max_bytes])
            del p.buffer[:max_bytes]
            if p.reading_paused and len(p.buffer) <= _HIGH_WATER // 4:
                p.reading_paused = False
                self._transport().resume_reading()
            return data
        if p.error is not None:
            raise httpcore.ReadError(str(p.error) or type(p.error).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if len(self._pending) + len(buffer) <= _COALESCE:
            self._pending += buffer
            return
        await self._send(buffer, timeout)

    async def _send(self, buffer: bytes, timeout: float | None) -> None:
        transport = self._transport()
        if transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        if self._pending:
            buffer = bytes(self._pending) + buffer
            self._pending.clear()
        transport.write(buffer)
        if self._p.writing_paused:
            try:
                await self._p.wait("drained", timeout)
            except TimeoutError:
                raise httpcore.WriteTimeout("timed out writing to the partner") from None
            if self._p.error is not None:
                raise httpcore.WriteError(str(self._p.error))

    async def aclose(self) -> None:
        self._transport().close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                tls = await loop.start_tls(
                    self._transport(), self._p, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport().close()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, ssl.SSLError) as exc:
            self._transport().close()
            raise httpcore.ConnectError(str(exc)) from exc
        if tls is None:  # pragma: no cover - only when the connection closed meanwhile
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._p.transport = tls
        return self

    def get_extra_info(self, info: str) -> Any:
        transport = self._transport()
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        if info == "is_readable":
            # An idle kept-alive connection with data or EOF waiting was closed (or
            # broken) by the partner: the pool drops it instead of reusing it.
            return bool(self._p.buffer) or self._p.eof
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("partners are reached over TCP")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# httpcore's exceptions as httpx raises them (subclasses before their bases). A new
# exception in httpcore fails tests/unit/exchange/test_netbackend.py until it is added.
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProxyError, httpx.ProxyError),
    # Only a kept-alive connection is retried on this; a new one raising it could not
    # be used at all, which is a connection failure to the caller.
    (httpcore.ConnectionNotAvailable, httpx.ConnectError),
)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core, mapped in _EXCEPTIONS:
            if isinstance(exc, core):
                raise mapped(str(exc) or type(exc).__name__) from exc
        raise


def proxies_from_environment() -> dict[str, str]:
    """The proxy variables as urllib reads them: `http`, `https` and `no` from
    HTTP_PROXY, HTTPS_PROXY and NO_PROXY (the lower-case names take precedence)."""
    return urllib.request.getproxies_environment()


def bypasses_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Whether NO_PROXY exempts `host`: a comma list of `*` (every host), host names
    and IP addresses, and domains (`example.org` and `.example.org` both match the
    domain and every name under it), each optionally with `:port` (IPv6 in brackets)."""
    host = host.lower().strip("[]")
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        if entry.startswith("["):
            name, _, rest = entry[1:].partition("]")
            wanted = rest.removeprefix(":")
        elif entry.count(":") == 1:
            name, _, wanted = entry.partition(":")
        else:
            name, wanted = entry, ""
        name = name.removeprefix("*").lstrip(".")
        if not name or (wanted and wanted != str(port)):
            continue
        if host == name or host.endswith("." + name):
            return True
    return False


class PartnerTransport(httpx.AsyncBaseTransport):
    """httpx's transport interface over httpcore's HTTP/1.1 connections on the asyncio
    backend, with a pool of its own: per partner origin, a stack of kept-alive idle
    connections, the most recently used first. Taking and returning a connection is
    constant work, where httpcore's pool scans every connection on every request (a
    cost that grows with the delivery concurrency). TLS is verified as httpx verifies it
    by default: certifi's CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR when set.

    `limits` bound the requests in flight and the open connections
    (`max_connections`), the idle connections kept for reuse, over all partners
    (`max_keepalive_connections`), and how long one is kept (`keepalive_expiry`).
    `proxies` maps `http` / `https` to a proxy URL (`[http://][user:password@]host:port`)
    and `no` to the NO_PROXY list; by default they come from the environment."""

    def __init__(
        self,
        limits: httpx.Limits,
        *,
        ssl_context: ssl.SSLContext | None = None,
        proxies: Mapping[str, str] | None = None,
    ):
        self._ssl = ssl_context or httpx.create_ssl_context()
        self._backend = AsyncioBackend()
        self._max = limits.max_connections or 100
        cap = limits.max_keepalive_connections
        self._keepalive_cap = self._max if cap is None else min(cap, self._max)
        self._keepalive = limits.keepalive_expiry
        self._slots = asyncio.Semaphore(self._max)
        self._active = 0  # direct connections lent out to a request
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTPConnection]] = {}
        self._idle_count = 0
        self._proxy_env = dict(proxies_from_environment() if proxies is None else proxies)
        self._proxy_pools = {
            scheme: self._proxy_pool(self._proxy_env[scheme])
            for scheme in ("http", "https")
            if self._proxy_env.get(scheme)
        }
        self._proxy_for: dict[tuple[bytes, bytes, int], httpcore.AsyncHTTPProxy | None] = {}

    def _proxy_pool(self, url: str) -> httpcore.AsyncHTTPProxy:
        # `host:port` alone is an http:// proxy, as curl and urllib take it.
        proxy = httpx.Proxy(url if "://" in url else f"http://{url}")
        if proxy.url.scheme != "http":
            raise ValueError(
                f"proxy {proxy.url.copy_with(username=None, password=None)}: only http:// "
                "proxies are supported (https partners are reached through a CONNECT tunnel)"
            )
        return httpcore.AsyncHTTPProxy(
            proxy_url=httpcore.URL(
                scheme=proxy.url.raw_scheme,
                host=proxy.url.raw_host,
                port=proxy.url.port,
                target=proxy.url.raw_path,
            ),
            proxy_auth=proxy.raw_auth,
            ssl_context=self._ssl,
            max_connections=self._max,
            max_keepalive_connections=self._keepalive_cap,
            keepalive_expiry=self._keepalive,
            network_backend=self._backend,
        )

    def _proxy(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPProxy | None:
        key = _key(origin)
        if key not in self._proxy_for:
            pool = self._proxy_pools.get(origin.scheme.decode("ascii"))
            no_proxy = self._proxy_env.get("no", "")
            if pool is not None and bypasses_proxy(
                origin.host.decode("ascii"), origin.port, no_proxy
            ):
                pool = None
            self._proxy_for[key] = pool
        return self._proxy_for[key]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        origin = httpcore.Origin(url.raw_scheme, url.raw_host, port)
        if not isinstance(request.stream, httpx.AsyncByteStream):  # pragma: no cover
            raise httpx.LocalProtocolError("a synchronous request body cannot be sent")
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        timeouts = request.extensions.get("timeout", {})
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no connection to the partner came free in time") from None
        try:
            proxy = self._proxy(origin)
            if proxy is not None:
                with _as_httpx_errors():
                    response = await proxy.handle_async_request(core_request)
                on_close: Callable[[], Awaitable[None]] = self._release_slot
            else:
                connection, response = await self._send_direct(origin, core_request)

                async def on_close() -> None:
                    await self._release(origin, connection)

        except BaseException:
            self._slots.release()
            raise
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response, on_close),
            extensions=response.extensions,
        )

    async def _send_direct(
        self, origin: httpcore.Origin, request: httpcore.Request
    ) -> tuple[httpcore.AsyncHTTPConnection, httpcore.Response]:
        """Send on a kept-alive connection to `origin`, or on a new one."""
        self._active += 1
        try:
            with _as_httpx_errors():
                while True:
                    connection = await self._idle_connection(origin)
                    reused = connection is not None
                    if connection is None:
                        await self._make_room()
                        connection = httpcore.AsyncHTTPConnection(
                            origin=origin,
                            ssl_context=self._ssl,
                            keepalive_expiry=self._keepalive,
                            network_backend=self._backend,
                        )
                    try:
                        return connection, await connection.handle_async_request(request)
                    except httpcore.ConnectionNotAvailable:
                        await connection.aclose()
                        if not reused:
                            raise
                    except BaseException:
                        await connection.aclose()
                        raise
        except BaseException:
            self._active -= 1
            raise

    async def _idle_connection(
        self, origin: httpcore.Origin
    ) -> httpcore.AsyncHTTPConnection | None:
        idle = self._idle.get(_key(origin))
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if connection.is_available() and not connection.has_expired():
                return connection
            await connection.aclose()  # expired, or closed by the partner
        return None

    async def _make_room(self) -> None:
        """Close idle connections to other partners while the open ones are at the limit."""
        for idle in self._idle.values():
            while idle and self._active + self._idle_count > self._max:
                self._idle_count -= 1
                await idle.pop(0).aclose()  # the longest unused

    async def _release(
        self, origin: httpcore.Origin, connection: httpcore.AsyncHTTPConnection
    ) -> None:
        self._active -= 1
        try:
            if connection.is_available() and self._idle_count < self._keepalive_cap:
                self._idle.setdefault(_key(origin), []).append(connection)
                self._idle_count += 1
            else:
                await connection.aclose()
        finally:
            self._slots.release()

    async def _release_slot(self) -> None:
        self._slots.release()

    async def aclose(self) -> None:
        idle, self._idle, self._idle_count = self._idle, {}, 0
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()
        for pool in self._proxy_pools.values():
            with _as_httpx_errors():
                await pool.aclose()


def _key(origin: httpcore.Origin) -> tuple[bytes, bytes, int]:
    return (origin.scheme, origin.host, origin.port)


class _ResponseStream(httpx.AsyncByteStream):
    """The answer's body; closing it hands the connection back (`on_close`)."""

    def __init__(
        self, response: httpcore.Response, on_close: Callable[[], Awaitable[None]]
    ) -> None:
        self._response = response
        self._on_close = on_close
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stream = self._response.stream
        if not isinstance(stream, AsyncIterable):  # pragma: no cover - httpcore's async API
            raise httpx.LocalProtocolError("httpcore returned a synchronous stream")
        with _as_httpx_errors():
            async for chunk in stream:
                yield chunk

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            with _as_httpx_errors():
                await self._response.aclose()
        finally:
            await self._on_close()
