"""One log line and one latency sample a request, under a request id.

`RequestObserver` is a plain ASGI middleware: it passes every message through as it
comes (nothing is buffered or delayed) and keeps only what it logs:

- the request id: a sane incoming `X-Request-Id` (1 to 64 characters of
  `A-Z a-z 0-9 . _ : -`) or a new random one; it is returned in the response's
  `X-Request-Id` header and stamped on every log line written while the request runs;
- the method, the route *template* (`/v1/inbox/{sender}/{id}/ack`, never the raw path
  or query), the status and the duration;
- the message id and partner party, from `request.state.message_id` and
  `request.state.partner`, which the routes set where they know them;
- for refusals: the problem `code` from `request.state.problem_code`, which the one
  place that renders problems (`api/errors.py`) sets; never its `detail` (which may
  quote the request).

Bodies are never logged: they hold personal data.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import REQUEST_ID

log = logging.getLogger("migex.request")

_HEADER_KEY: Final = b"x-request-id"
_SANE_ID: Final = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
# Probes and scrapes are logged at DEBUG, so that they do not drown the exchange.
_QUIET_ROUTES: Final = frozenset({"/v1/health", "/v1/ready", "/metrics"})


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
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", ()),
                    (_HEADER_KEY, request_id.encode("ascii")),
                ]
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            try:
                self._finish(scope, state, status, seconds)
            finally:
                REQUEST_ID.reset(token)

    def _finish(self, scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        route = route_template(scope)
        method = str(scope.get("method", ""))
        node = getattr(getattr(scope.get("app"), "state", None), "node", None)
        metrics = getattr(node, "metrics", None)
        if metrics is not None:
            metrics.observe_request(route, method, status, seconds)
        fields: dict[str, Any] = {
            "request_id": state["request_id"],
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
        }
        for name in ("message_id", "partner", "problem_code"):
            value = state.get(name)
            if isinstance(value, str):
                fields["code" if name == "problem_code" else name] = value
        level = logging.DEBUG if route in _QUIET_ROUTES else logging.INFO
        if status >= 500:
            level = logging.WARNING
        log.log(level, "%s %s %d", method, route or "(no route)", status, extra=fields)
