"""The request observer logs what routes leave on the request state, and reads no body."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from service.observability.requestlog import RequestObserver


class _Route:
    path = "/v1/messages"


def _app(body: bytes, media_type: bytes, state: dict[str, str]) -> Any:
    async def app(scope: Scope, _receive: Receive, send: Send) -> None:
        scope["route"] = _Route()
        scope["state"].update(state)
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [(b"content-type", media_type)],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def _serve(app: Any) -> None:
    scope: Scope = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": []}

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(_message: Message) -> None:
        return None

    asyncio.run(RequestObserver(app)(scope, receive, send))


def _line(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    [line] = [r for r in caplog.records if r.name == "migex.request"]
    return line


def test_the_code_and_message_come_from_the_request_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="migex.request")
    state = {"problem_code": "forbidden", "message_id": "m-1", "partner": "UZ:MIA"}
    _serve(_app(b"{}", b"application/problem+json", state))
    line = _line(caplog)
    assert (line.code, line.message_id, line.partner) == ("forbidden", "m-1", "UZ:MIA")


def test_a_problem_body_is_never_parsed_for_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="migex.request")
    body = json.dumps({"code": "chosen-by-body", "id": "from-body"}).encode()
    _serve(_app(body, b"application/problem+json", {}))
    line = _line(caplog)
    assert not hasattr(line, "code")
    assert not hasattr(line, "message_id")
