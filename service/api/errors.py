"""The one place refusals become RFC 9457 problem documents."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.protocol.problems import Problem

log = logging.getLogger("migex.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        problem.document(),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers or None,
    )


async def _on_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)  # noqa: S101 - registered for Problem only
    return problem_response(exc)


async def _on_http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "bad-request")
    detail = str(exc.detail) if exc.detail else "request refused"
    return problem_response(Problem(code, detail))


async def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = [
        {"path": "/" + "/".join(str(p) for p in err.get("loc", ())), "message": str(err.get("msg"))}
        for err in exc.errors()
    ]
    return problem_response(
        Problem("invalid-parameters", "request parameters are invalid", extra={"errors": errors})
    )


async def _on_database(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc).__name__)
    return problem_response(
        Problem(
            "unavailable",
            "the database is unavailable; retry shortly",
            headers={"Retry-After": "1"},
        )
    )


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
    return problem_response(Problem("internal", "an internal error occurred; nothing was stored"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(OperationalError, _on_database)
    app.add_exception_handler(DBAPIError, _on_database)
    app.add_exception_handler(Exception, _on_unexpected)
