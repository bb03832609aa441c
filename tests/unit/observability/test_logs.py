"""The JSON log format and the request id."""

from __future__ import annotations

import json
import logging
import sys

from service.logs import REQUEST_ID, JsonFormatter, log_config
from service.observability.requestlog import request_id_from


def record(msg: str = "hello", **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("migex.test", logging.INFO, __file__, 1, msg, None, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_a_line_written_during_a_request_carries_its_request_id() -> None:
    token = REQUEST_ID.set("abc123")
    try:
        line = json.loads(JsonFormatter().format(record()))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "abc123"


def test_only_the_exception_type_is_written_never_its_message() -> None:
    try:
        raise ValueError("061211600012 is not valid")
    except ValueError:
        rec = record("refused", status=422)
        rec.exc_info = sys.exc_info()
    text = JsonFormatter().format(rec)
    assert "061211600012" not in text
    assert json.loads(text)["error"] == "ValueError"


def test_unknown_record_attributes_are_not_written() -> None:
    line = json.loads(JsonFormatter().format(record(body={"iin": "061211600012"}, route="/v1/x")))
    assert set(line) == {"time", "level", "logger", "msg", "route"}


def test_sql_statement_logging_stays_off_at_debug() -> None:
    assert log_config("DEBUG")["loggers"]["sqlalchemy"]["level"] == "WARNING"


def test_an_incoming_request_id_is_kept_only_when_sane() -> None:
    assert request_id_from([(b"X-Request-Id", b"abc-1")]) == "abc-1"
    generated = request_id_from([(b"x-request-id", b"a b")])
    assert generated != "a b"
    assert len(generated) == 32


def test_an_exception_quoted_in_a_message_is_written_as_its_type() -> None:
    """psycopg's warnings quote the error: `error ignored in rollback on %s: %s`."""
    error = ValueError("duplicate key (iin)=(061211600012)")
    rec = logging.LogRecord(
        "psycopg", logging.WARNING, __file__, 1, "error ignored on %s: %s", ("conn", error), None
    )
    line = json.loads(JsonFormatter().format(rec))
    assert line["msg"] == "error ignored on conn: ValueError"


def test_every_other_library_logs_through_the_json_handler() -> None:
    config = log_config()
    assert config["root"]["handlers"] == ["stderr"]
    assert config["loggers"]["psycopg"]["level"] == "WARNING"
    assert config["handlers"]["stderr"]["formatter"] == "json"
