"""Structured JSON logs: one object a line, never personal data or key material.

Every line has `time`, `level`, `logger` and `msg`; the request log and other
records add the fields named in `FIELDS` when they apply. A line written while a
request is being served carries that request's `request_id` (set by the request
observer in `service.observability.requestlog`). An exception is reduced to its type
name: exception messages and tracebacks can quote request data.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from typing import Any

from service.clock import rfc3339

# The id of the request being served in this context, if any.
REQUEST_ID: ContextVar[str | None] = ContextVar("migex_request_id", default=None)

FIELDS = (
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "message_id",
    "partner",
    "code",
    "path",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if "request_id" not in data:
            current = REQUEST_ID.get()
            if current is not None:
                data["request_id"] = current
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages and tracebacks can carry request data.
            data["error"] = record.exc_info[0].__name__
        return json.dumps(data, ensure_ascii=False, default=str)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """The `logging.config.dictConfig` of a served node: JSON lines on standard error.

    SQLAlchemy's loggers are held at WARNING whatever `level` is: at INFO and below
    they would write SQL statements with their parameters, which can hold message bytes.
    """

    def logger(at: str) -> dict[str, Any]:
        return {"handlers": ["stderr"], "level": at, "propagate": False}

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "service.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "migex": logger(level),
            "uvicorn": logger(level),
            "uvicorn.error": logger(level),
            "uvicorn.access": logger(level),
            "sqlalchemy": logger("WARNING"),
        },
    }
