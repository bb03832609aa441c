"""HEAD for every GET route (RFC 9110, section 9.3.2), and `Allow` saying so.

FastAPI routes a HEAD request only to routes that list HEAD, and none of the node's
do, so `HEAD /v1/health` was `405`. `HeadAsGet` routes a HEAD request as the GET it
mirrors and sends the same status and headers (`Content-Length` included) without the
body. The schema is unchanged: HEAD is implied for every GET operation.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# What the router adds to the scope of the request it routed, for the layers outside
# (the request log reads the route template).
_ROUTED: Final = ("route", "endpoint", "path_params")


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # A copy: the server reads the method of its own scope to send no body.
        routed: Scope = {**scope, "method": "GET"}

        async def headless(message: Message) -> None:
            if message["type"] == "http.response.start":
                _carry(routed, scope)
            elif message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(routed, receive, headless)
        finally:
            _carry(routed, scope)


def _carry(routed: Scope, scope: Scope) -> None:
    for key in _ROUTED:
        if key in routed:
            scope[key] = routed[key]


def allow_with_head(allow: str) -> str:
    """An `Allow` header value with HEAD added wherever GET is allowed."""
    methods = [m.strip() for m in allow.split(",") if m.strip()]
    if "GET" in methods and "HEAD" not in methods:
        methods.insert(methods.index("GET") + 1, "HEAD")
    return ", ".join(methods)
