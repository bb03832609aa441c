"""The delivery worker's transport: httpx on the asyncio network backend, against a real
loopback server (plain and TLS), with timeouts, refused connections, connections closed
by the partner, large answers, the connection limits, and HTTP proxies (a forwarding and
CONNECT proxy on loopback, written here)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from service.exchange.netbackend import (
    AsyncioBackend,
    AsyncioStream,
    PartnerTransport,
    _as_httpx_errors,
    _Protocol,
    bypasses_proxy,
)

LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)
TIMEOUT = {"timeout": httpx.Timeout(5.0).as_dict()}
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The transport reads the proxy variables: none of the test machine's apply here."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One HTTP/1.1 message with a Content-Length (or none): its head and its body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return (await read_message(reader))[1]


def answer(body: bytes, status: bytes = b"201 Created", close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 %s\r\nContent-Type: application/jose\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status,
        len(body),
        extra,
        body,
    )


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.port = 0


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    state = Server()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=tls)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        body = await read_request(reader)
        writer.write(answer(b"receipt:" + body))
        await writer.drain()


async def post(transport: httpx.AsyncBaseTransport, url: str, body: bytes) -> httpx.Response:
    request = httpx.Request("POST", url, content=body, extensions=TIMEOUT)
    response = await transport.handle_async_request(request)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


def test_the_transport_runs_on_the_asyncio_backend() -> None:
    transport = PartnerTransport(LIMITS)
    assert isinstance(transport._backend, AsyncioBackend)


def test_requests_are_answered_on_one_kept_alive_connection() -> None:
    async def run() -> None:
        async with serving(echo) as server, PartnerTransport(LIMITS) as transport:
            url = f"http://127.0.0.1:{server.port}/v1/messages"
            for n in range(3):
                response = await post(transport, url, b"jws-%d" % n)
                assert response.status_code == 201
                assert response.content == b"receipt:jws-%d" % n
            assert server.connections == 1

    asyncio.run(run())


def test_a_connection_the_partner_closed_is_not_reused() -> None:
    async def run() -> None:
        closed = asyncio.Event()

        async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            body = await read_request(reader)
            writer.write(answer(b"receipt:" + body))
            await writer.drain()
            # The partner drops the idle connection without saying so.
            writer.close()
            await writer.wait_closed()
            closed.set()

        async with serving(once) as server, PartnerTransport(LIMITS) as transport:
            url = f"http://127.0.0.1:{server.port}/v1/messages"
            assert (await post(transport, url, b"a")).content == b"receipt:a"
            await closed.wait()
            for _ in range(5):
                await asyncio.sleep(0)  # let the loop deliver the partner's FIN
            assert (await post(transport, url, b"b")).content == b"receipt:b"
            assert server.connections == 2

    asyncio.run(run())


def test_a_large_answer_is_read_whole() -> None:
    big = bytes(range(256)) * 8192  # 2 MiB: reading pauses and resumes

    async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(big, status=b"422 Unprocessable Content"))
        await writer.drain()

    async def run() -> None:
        async with serving(large) as server, PartnerTransport(LIMITS) as transport:
            response = await post(transport, f"http://127.0.0.1:{server.port}/", b"x" * 300_000)
            assert response.status_code == 422
            assert response.content == big

    asyncio.run(run())


def test_a_partner_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    async def run() -> None:
        async with serving(silent) as server, PartnerTransport(LIMITS) as transport:
            request = httpx.Request(
                "POST",
                f"http://127.0.0.1:{server.port}/v1/messages",
                content=b"jws",
                extensions={"timeout": httpx.Timeout(5.0, read=0.05).as_dict()},
            )
            with pytest.raises(httpx.ReadTimeout):
                await transport.handle_async_request(request)

    asyncio.run(run())


def test_a_partner_that_is_down_is_a_connect_error() -> None:
    async def run() -> None:
        async with serving(echo) as server:
            port = server.port
        async with PartnerTransport(LIMITS) as transport:
            with pytest.raises(httpx.ConnectError):
                await post(transport, f"http://127.0.0.1:{port}/v1/messages", b"jws")

    asyncio.run(run())


def test_a_partner_that_closes_mid_answer_is_a_transport_error() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"x" * 1000)[:-500])
        await writer.drain()

    async def run() -> None:
        async with serving(cut) as server, PartnerTransport(LIMITS) as transport:
            with pytest.raises(httpx.TransportError):
                await post(transport, f"http://127.0.0.1:{server.port}/", b"jws")

    asyncio.run(run())


def _certificate(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: the server's context and a client
    context that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "partner.test")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def test_tls_to_a_trusted_partner_works_and_an_untrusted_one_is_refused(tmp_path: Path) -> None:
    server_tls, client_tls = _certificate(tmp_path)

    async def run() -> None:
        async with serving(echo, tls=server_tls) as server:
            url = f"https://127.0.0.1:{server.port}/v1/messages"
            async with PartnerTransport(LIMITS, ssl_context=client_tls) as transport:
                for n in range(2):
                    response = await post(transport, url, b"jws-%d" % n)
                    assert response.content == b"receipt:jws-%d" % n
                assert server.connections == 1
            # The default context trusts the usual CAs only, not this certificate.
            async with PartnerTransport(LIMITS) as transport:
                with pytest.raises(httpx.ConnectError):
                    await post(transport, url, b"jws")

    asyncio.run(run())


class RecordingTransport:
    """Stands in for an asyncio transport: records each write (each is one send)."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sends.append(bytes(data))

    def is_closing(self) -> bool:
        return False


def test_a_request_head_and_body_leave_in_one_send() -> None:
    async def run() -> None:
        protocol = _Protocol()
        transport = RecordingTransport()
        protocol.transport = transport  # type: ignore[assignment]
        stream = AsyncioStream(protocol)
        await stream.write(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n")
        await stream.write(b"jws")
        assert transport.sends == []
        protocol.data_received(b"HTTP/1.1 201 Created\r\n")
        assert await stream.read(1024) == b"HTTP/1.1 201 Created\r\n"
        assert transport.sends == [b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\njws"]
        # A large body is not held back.
        await stream.write(b"x" * 100_000)
        assert len(transport.sends) == 2

    asyncio.run(run())


def test_requests_past_the_limit_wait_for_a_connection_and_reuse_it() -> None:
    async def run() -> None:
        async with serving(echo) as server:
            limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
            async with PartnerTransport(limits) as transport:
                url = f"http://127.0.0.1:{server.port}/v1/messages"
                answers = await asyncio.gather(*(post(transport, url, b"%d" % n) for n in range(8)))
                assert [a.content for a in answers] == [b"receipt:%d" % n for n in range(8)]
                assert server.connections == 2

    asyncio.run(run())


def test_a_request_that_finds_no_free_connection_in_time_is_a_pool_timeout() -> None:
    async def run() -> None:
        held = asyncio.Event()

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            held.set()
            await asyncio.sleep(30)

        async with serving(hold) as server:
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            async with PartnerTransport(limits) as transport:
                url = f"http://127.0.0.1:{server.port}/v1/messages"
                first = asyncio.create_task(post(transport, url, b"a"))
                await held.wait()
                request = httpx.Request(
                    "POST",
                    url,
                    content=b"b",
                    extensions={"timeout": httpx.Timeout(5.0, pool=0.01).as_dict()},
                )
                with pytest.raises(httpx.PoolTimeout):
                    await transport.handle_async_request(request)
                first.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await first

    asyncio.run(run())


# -- exceptions ------------------------------------------------------------------------
# httpcore exceptions that httpx has no class of the same name for, and what they become.
NO_COUNTERPART: dict[str, type[httpx.TransportError]] = {
    "ConnectionNotAvailable": httpx.ConnectError,
}


def httpcore_exceptions() -> list[type[Exception]]:
    """Every exception class httpcore exports, so that a new one is tested too."""
    found = {
        obj
        for obj in vars(httpcore).values()
        if isinstance(obj, type) and issubclass(obj, Exception)
    }
    return sorted(found, key=lambda cls: cls.__name__)


def test_the_exception_classes_of_httpcore_are_found() -> None:
    names = {cls.__name__ for cls in httpcore_exceptions()}
    assert {"ReadTimeout", "ProxyError", "ConnectionNotAvailable", "ProtocolError"} <= names


@pytest.mark.parametrize("core", httpcore_exceptions(), ids=lambda cls: cls.__name__)
def test_every_httpcore_exception_is_raised_as_its_httpx_counterpart(
    core: type[Exception],
) -> None:
    expected = NO_COUNTERPART.get(core.__name__) or getattr(httpx, core.__name__, None)
    if expected is None:
        pytest.fail(f"httpcore.{core.__name__} is new: map it in netbackend._EXCEPTIONS")
    original = core("the partner went away")
    with pytest.raises(httpx.TransportError) as caught, _as_httpx_errors():
        raise original
    assert type(caught.value) is expected
    assert caught.value.__cause__ is original


# -- connection limits -----------------------------------------------------------------
class Closes:
    """Counts the connections a loopback server saw closed by the client."""

    def __init__(self, wanted: int) -> None:
        self.count = 0
        self.wanted = wanted
        self.reached = asyncio.Event()

    async def echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await echo(reader, writer)
        finally:
            self.count += 1
            if self.count >= self.wanted:
                self.reached.set()

    async def wait(self) -> None:
        async with asyncio.timeout(5):
            await self.reached.wait()


def test_idle_connections_past_the_keepalive_cap_are_closed() -> None:
    async def run() -> None:
        closes = Closes(wanted=2)
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=1)
        async with serving(closes.echo) as server, PartnerTransport(limits) as transport:
            url = f"http://127.0.0.1:{server.port}/v1/messages"
            answers = await asyncio.gather(*(post(transport, url, b"%d" % n) for n in range(3)))
            assert [a.content for a in answers] == [b"receipt:%d" % n for n in range(3)]
            assert server.connections == 3
            await closes.wait()  # two of the three are not kept
            assert closes.count == 2
            assert (await post(transport, url, b"again")).content == b"receipt:again"
            assert server.connections == 3  # the one kept was reused

    asyncio.run(run())


def test_an_idle_connection_is_closed_to_open_one_to_another_partner_at_the_limit() -> None:
    async def run() -> None:
        closes = Closes(wanted=1)
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
        async with (
            serving(closes.echo) as first,
            serving(echo) as second,
            PartnerTransport(limits) as transport,
        ):
            url = f"http://127.0.0.1:{first.port}/v1/messages"
            await asyncio.gather(post(transport, url, b"a"), post(transport, url, b"b"))
            assert first.connections == 2
            other = f"http://127.0.0.1:{second.port}/v1/messages"
            assert (await post(transport, other, b"c")).content == b"receipt:c"
            await closes.wait()  # two open connections is the limit

    asyncio.run(run())


# -- proxies ---------------------------------------------------------------------------
async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    finally:
        sink.close()


class Proxy:
    """An HTTP proxy on loopback: forwards absolute-form requests and tunnels CONNECT
    (or refuses it with 403 when `refuse_connect`); records every request head."""

    def __init__(self, refuse_connect: bool = False) -> None:
        self.heads: list[bytes] = []
        self.refuse_connect = refuse_connect

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, body = await read_message(reader)
            self.heads.append(head)
            method, target, _ = head.split(b"\r\n", 1)[0].split(b" ")
            if method == b"CONNECT":
                await self._tunnel(target, reader, writer)
                return
            url = httpx.URL(target.decode())
            up_reader, up_writer = await asyncio.open_connection(url.host, url.port)
            lines = head.split(b"\r\n")
            kept = [ln for ln in lines[1:] if not ln.lower().startswith(b"proxy-")]
            request_line = b"%s %s HTTP/1.1" % (method, url.raw_path)
            up_writer.write(b"\r\n".join([request_line, *kept]) + body)
            answer_head, answer_body = await read_message(up_reader)
            up_writer.close()
            writer.write(answer_head + answer_body)
            await writer.drain()

    async def _tunnel(
        self, target: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.refuse_connect:
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        host, _, port = target.rpartition(b":")
        up_reader, up_writer = await asyncio.open_connection(host.decode(), int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.mark.parametrize("proxy_url", ["http://node:s3cret@127.0.0.1:{port}", "127.0.0.1:{port}"])
def test_a_partner_is_reached_through_the_http_proxy_of_the_environment(
    proxy_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = Proxy()

    async def run() -> None:
        async with serving(echo) as partner, serving(proxy.handle) as proxy_server:
            monkeypatch.setenv("HTTP_PROXY", proxy_url.format(port=proxy_server.port))
            async with PartnerTransport(LIMITS) as transport:
                url = f"http://127.0.0.1:{partner.port}/v1/messages"
                for n in range(2):
                    assert (
                        await post(transport, url, b"jws-%d" % n)
                    ).content == b"receipt:jws-%d" % n
            assert proxy_server.connections == 1  # kept alive to the proxy
        assert [h.split(b"\r\n", 1)[0] for h in proxy.heads] == [
            b"POST http://127.0.0.1:%d/v1/messages HTTP/1.1" % partner.port
        ] * 2
        # user:password of the proxy URL, as Basic credentials to the proxy
        credentials = b"Proxy-Authorization: Basic bm9kZTpzM2NyZXQ="
        assert (credentials in proxy.heads[0]) is ("s3cret" in proxy_url)

    asyncio.run(run())


def test_a_tls_partner_is_reached_through_a_connect_tunnel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_tls, client_tls = _certificate(tmp_path)
    proxy = Proxy()

    async def run() -> None:
        async with (
            serving(echo, tls=server_tls) as partner,
            serving(proxy.handle) as proxy_server,
        ):
            monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy_server.port}")
            async with PartnerTransport(LIMITS, ssl_context=client_tls) as transport:
                url = f"https://127.0.0.1:{partner.port}/v1/messages"
                for n in range(2):
                    assert (
                        await post(transport, url, b"jws-%d" % n)
                    ).content == b"receipt:jws-%d" % n
            assert partner.connections == 1
        # One tunnel, and the partner's certificate checked through it end to end.
        assert [h.split(b"\r\n", 1)[0] for h in proxy.heads] == [
            b"CONNECT 127.0.0.1:%d HTTP/1.1" % partner.port
        ]

    asyncio.run(run())


def test_a_proxy_that_refuses_the_tunnel_is_a_proxy_error(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = Proxy(refuse_connect=True)

    async def run() -> None:
        async with serving(proxy.handle) as proxy_server:
            monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy_server.port}")
            async with PartnerTransport(LIMITS) as transport:
                with pytest.raises(httpx.ProxyError):
                    await post(transport, "https://127.0.0.1:9/v1/messages", b"jws")

    asyncio.run(run())


def test_no_proxy_sends_a_partner_past_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = Proxy()

    async def run() -> None:
        async with serving(echo) as partner, serving(proxy.handle) as proxy_server:
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_server.port}")
            monkeypatch.setenv("NO_PROXY", "localhost, 127.0.0.1")
            async with PartnerTransport(LIMITS) as transport:
                url = f"http://127.0.0.1:{partner.port}/v1/messages"
                assert (await post(transport, url, b"jws")).content == b"receipt:jws"
            assert proxy_server.connections == 0
            assert partner.connections == 1

    asyncio.run(run())


def test_an_https_proxy_url_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.example:3128")
    with pytest.raises(ValueError, match="only http:// proxies"):
        PartnerTransport(LIMITS)


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypassed"),
    [
        ("partner.example", 443, "", False),
        ("partner.example", 443, "*", True),
        ("partner.example", 443, "partner.example", True),
        ("node.partner.example", 443, "partner.example", True),
        ("node.partner.example", 443, ".partner.example", True),
        ("node.partner.example", 443, "*.partner.example", True),
        ("otherpartner.example", 443, "partner.example", False),
        ("partner.example", 443, "other.example, PARTNER.example", True),
        ("partner.example", 443, "partner.example:443", True),
        ("partner.example", 8443, "partner.example:443", False),
        ("10.0.0.1", 443, "10.0.0.1", True),
        ("110.0.0.1", 443, "10.0.0.1", False),
        ("::1", 443, "[::1]:443", True),
        ("::1", 443, "::1", True),
        ("::1", 8443, "[::1]:443", False),
    ],
)
def test_no_proxy_entries_match_hosts_domains_and_ports(
    host: str, port: int, no_proxy: str, bypassed: bool
) -> None:
    assert bypasses_proxy(host, port, no_proxy) is bypassed
