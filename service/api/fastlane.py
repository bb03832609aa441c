"""`POST /v1/messages` and `POST /v1/outbox` straight to their endpoints, past the router.

The first route takes every partner's traffic, the second every message the agency
sends. Routed by FastAPI, each request passes its exception middleware, an exit stack,
the router's match against every route, the solving of its dependencies and the
endpoint's wrapper before the endpoint runs: about a sixth of the node's processor time
a message (benchmarks/README.md). `FastLanes` sits inside the body limit and the request
log and calls the endpoints itself:

- `POST /v1/messages`: `receive_message`, which reads and checks its own body.
- `POST /v1/outbox`: `queue_item`, only for a request that every check of the route
  would pass: a client's bearer token, `Content-Type: application/json` and a body that
  is an `OutboundIn`. Any other request goes on to the router with its body replayed
  (or its body's failure raised again), so that its refusal is the framework's own:
  the same status, problem and order of checks.

An exception is answered with the handler the app registered for it (looked up by the
exception's class, as the framework does), and the scope keys the router would set
are set, so the request log and the metrics name the route as before. Every other
request, these paths with another method and these paths under a root path go on to
the router unchanged; the routes stay registered, so `/openapi.json` is the same.
"""

from __future__ import annotations

import json
from typing import Any, Final

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import local, messages
from service.api.deps import bearer_token
from service.api.local import OUTBOX_PATH, OutboundIn, queue_item, submit
from service.api.messages import MESSAGES_PATH, receive_message
from service.protocol.mediatypes import JSON, essence
from service.runtime import Node

METHOD: Final = "POST"


def _route(router: APIRouter, endpoint: Any) -> APIRoute:
    """The route of `endpoint` as the app has it (it includes both routers with no prefix)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.endpoint is endpoint:
            return route
    raise RuntimeError(f"no route for {endpoint.__name__} in {router}")


class FastLanes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.messages_route = _route(messages.router, receive_message)
        self.outbox_route = _route(local.router, submit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == METHOD and not scope.get("root_path"):
            if scope["path"] == MESSAGES_PATH:
                await self._message(scope, receive, send)
                return
            if scope["path"] == OUTBOX_PATH:
                await self._outbox(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _message(self, scope: Scope, receive: Receive, send: Send) -> None:
        _routed_as(scope, self.messages_route)
        request = Request(scope, receive, send)
        try:
            response = await receive_message(request)
        except Exception as exc:
            response = await _handled(scope["app"], request, exc)
        await response(scope, receive, send)

    async def _outbox(self, scope: Scope, receive: Receive, send: Send) -> None:
        app: FastAPI = scope["app"]
        node: Node = app.state.node
        request = Request(scope, receive, send)
        if essence(request.headers.get("content-type")) != JSON or not _is_client(request, node):
            await self.app(scope, receive, send)
            return
        try:
            body = await request.body()
        except Exception as exc:  # the body limit's refusal, a disconnect
            await self.app(scope, _raising(exc), send)
            return
        item = _outbound(body)
        if item is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        _routed_as(scope, self.outbox_route)
        try:
            accepted = await queue_item(item, node, request)
            # As the route answers: its model as JSON, then the Location it sets.
            response = Response(accepted.model_dump_json(), status_code=202, media_type=JSON)
            response.headers["Location"] = accepted.status_url
        except Exception as exc:
            response = await _handled(app, request, exc)
        await response(scope, receive, send)


def _routed_as(scope: Scope, route: APIRoute) -> None:
    """The scope keys the router sets for `route` (a path without parameters)."""
    scope["route"] = route
    scope["endpoint"] = route.endpoint
    scope["path_params"] = {}


def _is_client(request: Request, node: Node) -> bool:
    token = bearer_token(request)
    principal = node.tokens.authenticate(token) if token is not None else None
    return principal is not None and principal.role == "client"


def _outbound(body: bytes) -> OutboundIn | None:
    """The body as the route would take it (parsed by `json.loads`, then validated), or
    None if the route would refuse it."""
    if not body:
        return None
    try:
        return OutboundIn.model_validate(json.loads(body))
    except Exception:  # broken JSON or UTF-8, nesting past the parser, the model's refusal
        return None


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body already read delivered again first."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _raising(exc: Exception) -> Receive:
    """A `receive` that fails as reading the body failed."""

    async def fail() -> Message:
        raise exc

    return fail


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
