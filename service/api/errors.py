"""The one place refusals become RFC 9457 problem documents.

`install` also adds `BodyLimit`, which holds every request body to the node's
`limits.max_message_bytes` and `limits.request_timeout_seconds` while it is read, so
no endpoint buffers an oversized body or waits forever for a slow sender.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.head import allow_with_head
from service.attachments.sealed import AttachmentUnreadable
from service.db.failures import is_outage
from service.privacy.atrest import BodyUnreadable
from service.protocol.problems import Problem

log = logging.getLogger("migex.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_response(problem: Problem, scope: Scope | None = None) -> JSONResponse:
    """The problem document of a refusal. With the request's `scope`, the code is also
    left on the request state, where the request log finds it without reading the body."""
    if scope is not None:
        scope.setdefault("state", {})["problem_code"] = problem.code
    return JSONResponse(
        problem.document(),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers or None,
    )


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)  # noqa: S101 - registered for Problem only
    return problem_response(exc, request.scope)


# Codes for the framework's own refusals. Services raise Problem, never HTTPException.
_HTTP_CODES = {
    404: "not-found",
    405: "method-not-allowed",
    408: "request-timeout",
    413: "too-large",
    415: "unsupported-media-type",
}


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    detail = str(exc.detail) if exc.detail else "request refused"
    if exc.status_code == 400:
        # The framework could not parse a request body (e.g. JSON that is not UTF-8):
        # the same refusal as a JSON syntax error, which FastAPI reports as validation.
        return problem_response(
            Problem(
                "invalid-parameters",
                "the request body could not be parsed",
                extra={"errors": [{"path": "/body", "message": detail}]},
            ),
            request.scope,
        )
    headers = dict(exc.headers or {})
    if "Allow" in headers:
        # The router names the methods of the first route that matched the path; a
        # path may have several (GET and POST declared apart): name them all. Every
        # GET route answers HEAD too (service.api.head).
        headers["Allow"] = allow_with_head(_allowed_methods(request) or headers["Allow"])
    code = _HTTP_CODES.get(exc.status_code, "bad-request")
    return problem_response(Problem(code, detail, headers=headers), request.scope)


_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """The methods some route fully matches on the request's path, in a fixed order
    (asking every route, included routers too, as the router itself would)."""
    allowed = []
    for method in _METHOD_ORDER:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = [
        {"path": "/" + "/".join(str(p) for p in err.get("loc", ())), "message": str(err.get("msg"))}
        for err in exc.errors()
    ]
    return problem_response(
        Problem("invalid-parameters", "request parameters are invalid", extra={"errors": errors}),
        request.scope,
    )


async def _on_database(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)  # noqa: S101
    if not is_outage(exc):
        # Bad data or a bug, not an outage: a retry would fail the same way.
        return await _on_unexpected(request, exc)
    log.warning("database unavailable: %s", type(exc).__name__)
    return problem_response(
        Problem(
            "unavailable",
            "the database is unavailable; retry shortly",
            headers={"Retry-After": "1"},
        ),
        request.scope,
    )


async def _on_unreadable(request: Request, exc: Exception) -> JSONResponse:
    """A body or file sealed at rest that does not open (altered, or its KEK missing):
    the operator's problem, said in the log; the client gets its code, no detail."""
    log.error("stored bytes unreadable: %s", exc)
    return problem_response(
        Problem("stored-unreadable", "stored bytes this answer needs do not open"),
        request.scope,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
    return problem_response(
        Problem("internal", "an internal error occurred; nothing was stored"), request.scope
    )


class BodyRefused(StarletteHTTPException):
    """Raised from `receive` while a body is read (413 or 408). An HTTPException, because
    FastAPI re-raises those as they are while it parses a body (any other error it turns
    into 400); a route that reads its own body turns it into its `problem`."""

    def problem(self) -> Problem:
        return Problem(_HTTP_CODES[self.status_code], str(self.detail))


# Routes that audit their own refusals: an oversized declared body is refused when the
# route reads it, not before, so that the route can record the refusal.
_SELF_AUDITED = frozenset({"/v1/messages"})
# Streams of attachment bytes (protocol v1.1): bounded by the declared or configured
# size of the file and read a block at a time, each within the request timeout.
_STREAMED = re.compile(r"^/v1/(?:files|messages/[^/]+/[^/]+/attachments/[^/]+)$")


def is_stream(scope: Scope) -> bool:
    return scope["method"] in ("PATCH", "POST") and _STREAMED.match(scope["path"]) is not None


class BodyLimit:
    """Refuse a body over the size limit (413) or not received in time (408) while reading.

    A declared `Content-Length` over the limit is refused before any byte is read;
    a chunked body is counted as it arrives and cut off at the limit. The limits are
    the running node's, read at each request. This is the one body limiter: the
    routes read through it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        node = getattr(scope["app"].state, "node", None) if "app" in scope else None
        if scope["type"] != "http" or node is None or is_stream(scope):
            await self.app(scope, receive, send)
            return
        limit: int = node.config.limits.max_message_bytes
        timeout: float = node.config.limits.request_timeout_seconds
        declared = content_length(scope)
        if declared is not None and declared > limit and scope["path"] not in _SELF_AUDITED:
            problem = _too_large(declared, limit).problem()
            await problem_response(problem, scope)(scope, receive, send)
            return
        await self.app(scope, _limited(receive, limit, timeout, declared), send)


def content_length(scope: Scope) -> int | None:
    """The request's declared body length; None when absent or not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


def _too_large(declared: int, limit: int) -> BodyRefused:
    return BodyRefused(413, f"the body is {declared} bytes; the limit is {limit}")


def _limited(receive: Receive, limit: int, timeout: float, declared: int | None) -> Receive:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    state: dict[str, Any] = {"received": 0, "done": False}

    async def limited() -> Message:
        if state["done"]:
            return await receive()  # e.g. waiting for a disconnect while streaming
        if declared is not None and declared > limit:
            raise _too_large(declared, limit)
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise BodyRefused(408, f"the body was not received within {timeout:g} s") from None
        if message["type"] == "http.request":
            state["received"] += len(message.get("body", b""))
            if state["received"] > limit:
                raise BodyRefused(413, f"the body is over the limit of {limit} bytes")
            state["done"] = not message.get("more_body", False)
        else:
            state["done"] = True
        return message

    return limited


def install(app: FastAPI) -> None:
    app.add_middleware(BodyLimit)
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(OperationalError, _on_database)
    app.add_exception_handler(DBAPIError, _on_database)
    app.add_exception_handler(AttachmentUnreadable, _on_unreadable)
    app.add_exception_handler(BodyUnreadable, _on_unreadable)
    app.add_exception_handler(Exception, _on_unexpected)
