"""Structured JSON logs: one object a line, never personal data or key material.

Every line has `time`, `level`, `logger` and `msg`; the request log and other
records add the fields named in `FIELDS` when they apply. A line written while a
request is being served carries that request's `request_id` (set by the request
observer in `service.observability.requestlog`). An exception is reduced to its type
name, also where a message quotes one as an argument (as psycopg's warnings do):
exception messages and tracebacks can quote request data.

Every logger writes through the one JSON handler: the node's and uvicorn's directly,
any other library's (psycopg, asyncio, ...) through the root logger. With
`install_process_hooks`, Python warnings, exceptions escaping a thread and
exceptions ignored in finalizers are written as JSON lines too, so that nothing a
served process writes to standard error breaks the JSON log.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Mapping
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


# One encoder for every line (json.dumps with options builds a new one per call).
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _message(record),
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
        return _ENCODER.encode(data)


def _message(record: logging.LogRecord) -> str:
    """The record's message, with every exception among its arguments as its type name."""
    args = record.args
    if isinstance(args, tuple) and any(isinstance(a, BaseException) for a in args):
        args = tuple(_type_name(a) for a in args)
    elif isinstance(args, Mapping) and any(isinstance(a, BaseException) for a in args.values()):
        args = {k: _type_name(v) for k, v in args.items()}
    msg = str(record.msg)
    return msg % args if args else msg


def _type_name(value: object) -> object:
    return type(value).__name__ if isinstance(value, BaseException) else value


def lean_records() -> None:
    """Stop the logging module from gathering what no JSON line shows: the caller's
    source file and line (a walk up the stack per record), and the thread's and
    process's names (the Python documentation's "Optimization" advice). A served node
    writes a line a request, so this is paid on every request."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


_hooks = logging.getLogger("migex.process")


def install_process_hooks() -> None:
    """Route what Python would print to standard error itself through the JSON log:
    warnings, exceptions escaping a thread, exceptions ignored in finalizers."""
    logging.captureWarnings(True)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "unknown"
        exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        _hooks.error("exception in thread %s", name, exc_info=exc_info)  # type: ignore[arg-type]

    def unraisable_hook(unraisable: Any) -> None:
        exc_info = (unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)
        _hooks.warning("%s", unraisable.err_msg or "Exception ignored", exc_info=exc_info)

    threading.excepthook = thread_hook
    sys.unraisablehook = unraisable_hook


def log_config(level: str = "INFO") -> dict[str, Any]:
    """The `logging.config.dictConfig` of a served node: JSON lines on standard error.

    SQLAlchemy's and psycopg's loggers are held at WARNING whatever `level` is: at
    INFO and below they would write SQL statements with their parameters, which can
    hold message bytes. Every other logger reaches the JSON handler through the root
    logger (at WARNING), never Python's last-resort handler, which writes plain text.
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
            "psycopg": logger("WARNING"),
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
