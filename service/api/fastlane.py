"""`POST /v1/messages` straight to its endpoint, past the router.

That route takes every partner's traffic. Routed by FastAPI, each request passes its
exception middleware, an exit stack, the router's match against every route and the
endpoint's wrapper before `receive_message` runs: about a sixth of the node's processor
time a message (benchmarks/README.md). `MessagesLane` sits inside the body limit and the
request log and calls the same endpoint itself, answers an exception with the handler
the app registered for it (looked up by the exception's class, as the framework does),
and sets the scope keys the router would set, so the request log and the metrics name
the route as before. Every other request, and this path under a root path, goes on to
the router unchanged; the route stays registered, so `/openapi.json` is the same.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.messages import MESSAGES_PATH, receive_message, router

METHOD: Final = "POST"


def _route() -> APIRoute:
    """The route as declared (the app includes it with no prefix)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.endpoint is receive_message:
            return route
    raise RuntimeError(f"no route {METHOD} {MESSAGES_PATH} in service/api/messages.py")


class MessagesLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = _route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != MESSAGES_PATH
            or scope["method"] != METHOD
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        app: FastAPI = scope["app"]
        scope["route"] = self.route
        scope["endpoint"] = receive_message
        scope["path_params"] = {}
        request = Request(scope, receive, send)
        try:
            response = await receive_message(request)
        except Exception as exc:
            response = await _handled(app, request, exc)
        await response(scope, receive, send)


async def _handled(app: FastAPI, request: Request, exc: Exception) -> Response:
    """The response of the handler the app registered for `exc`'s class (the nearest
    in its method resolution order); the exception again if there is none."""
    handlers: dict[Any, Any] = app.exception_handlers
    for cls in type(exc).__mro__:
        handler = handlers.get(cls)
        if handler is not None:
            response: Response = await handler(request, exc)
            return response
    raise exc
