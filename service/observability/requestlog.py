"""One log line and one latency sample a request, under a request id.

`RequestObserver` is a plain ASGI middleware: it passes every message through as it
comes (nothing is buffered or delayed) and keeps only what it logs:

- the request id: a sane incoming `X-Request-Id` (1 to 64 characters of
  `A-Z a-z 0-9 . _ : -`) or a new random one; it is returned in the response's
  `X-Request-Id` header and stamped on every log line written while the request runs;
- the method, the route *template* (`/v1/inbox/{sender}/{id}/ack`, never the raw path
  or query), the status and the duration;
- for messages: the message id and partner party, from `request.state.message_id` and
  `request.state.partner` when a route sets them, or else read from the signed receipt
  of an accepted message (`reply_to` and `aud`) or the `id` of a queued one;
- for refusals: the problem `code`, never its `detail` (which may quote the request).

Bodies are never logged: they hold personal data.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import REQUEST_ID
from service.protocol.b64 import b64url_decode

log = logging.getLogger("migex.request")

HEADER: Final = "X-Request-Id"
_HEADER_KEY: Final = b"x-request-id"
_SANE_ID: Final = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
# Probes and scrapes are logged at DEBUG, so that they do not drown the exchange.
_QUIET_ROUTES: Final = frozenset({"/v1/health", "/v1/ready", "/metrics"})
# Responses whose body is read for the log line; anything larger is not kept.
_KEEP_LIMIT: Final = 16 * 1024
_RECEIPT_ROUTE: Final = "/v1/messages"
_QUEUE_ROUTE: Final = "/v1/outbox"


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's `X-Request-Id` if it is sane, else a new random id."""
    for name, value in headers:
        if name.lower() == _HEADER_KEY and _SANE_ID.fullmatch(value):
            return value.decode("ascii")
    return os.urandom(16).hex()


def route_template(scope: Scope) -> str | None:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


class _Response:
    """What the observer keeps of a response: status, media type, and a small body."""

    def __init__(self) -> None:
        self.status = 500
        self.media_type = ""
        self.keep = False
        self.body = bytearray()

    def started(self, message: Message, route: str | None) -> None:
        self.status = int(message["status"])
        for name, value in message.get("headers", ()):
            if name.lower() == b"content-type":
                self.media_type = value.decode("latin-1").split(";", 1)[0].strip().lower()
        # Only bodies that carry a problem code or a message id are read.
        self.keep = (
            self.media_type == "application/problem+json"
            or (route == _RECEIPT_ROUTE and self.media_type == "application/jose")
            or (route == _QUEUE_ROUTE and self.media_type == "application/json")
        )

    def chunk(self, message: Message) -> None:
        if self.keep:
            self.body += message.get("body", b"")
            if len(self.body) > _KEEP_LIMIT:
                self.keep = False
                self.body.clear()


class RequestObserver:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope.get("headers", []))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        response = _Response()

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", ()),
                    (_HEADER_KEY, request_id.encode("ascii")),
                ]
                response.started(message, route_template(scope))
            elif message["type"] == "http.response.body":
                response.chunk(message)
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            try:
                self._finish(scope, state, response, seconds)
            finally:
                REQUEST_ID.reset(token)

    def _finish(
        self, scope: Scope, state: dict[str, Any], response: _Response, seconds: float
    ) -> None:
        route = route_template(scope)
        method = str(scope.get("method", ""))
        node = getattr(getattr(scope.get("app"), "state", None), "node", None)
        metrics = getattr(node, "metrics", None)
        if metrics is not None:
            metrics.observe_request(route, method, response.status, seconds)
        fields: dict[str, Any] = {
            "request_id": state["request_id"],
            "method": method,
            "route": route,
            "status": response.status,
            "duration_ms": round(seconds * 1000, 3),
        }
        fields.update(_message_fields(route, state, response))
        level = logging.DEBUG if route in _QUIET_ROUTES else logging.INFO
        if response.status >= 500:
            level = logging.WARNING
        log.log(level, "%s %s %d", method, route or "(no route)", response.status, extra=fields)


def _message_fields(
    route: str | None, state: dict[str, Any], response: _Response
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    body = bytes(response.body) if response.keep else b""
    if response.media_type == "application/problem+json":
        code = _json_member(body, "code")
        if code is not None:
            fields["code"] = code
    elif route == _RECEIPT_ROUTE and response.status in (200, 201) and "message_id" not in state:
        fields.update(_receipt_fields(body))
    elif route == _QUEUE_ROUTE and response.status == 202:
        queued = _json_member(body, "id")
        if queued is not None:
            fields["message_id"] = queued
    for name in ("message_id", "partner"):
        value = state.get(name)
        if isinstance(value, str):
            fields[name] = value
    return fields


def _json_member(body: bytes, name: str) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    value = doc.get(name) if isinstance(doc, dict) else None
    return value[:64] if isinstance(value, str) else None


def _receipt_fields(token: bytes) -> dict[str, str]:
    """Message id and partner from this node's own receipt (`reply_to`, `aud`)."""
    parts = token.split(b".")
    if len(parts) != 3:
        return {}
    try:
        payload = json.loads(b64url_decode(parts[1]))
    except ValueError:
        return {}
    if not isinstance(payload, dict):
        return {}
    found = {"message_id": payload.get("reply_to"), "partner": payload.get("aud")}
    return {k: v for k, v in found.items() if isinstance(v, str)}
