"""The JSON log format and the request id."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

import pytest

from service.clock import rfc3339
from service.logs import REQUEST_ID, JsonFormatter, lean_records, log_config
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


def test_lean_records_skip_the_caller_lookup_and_keep_every_written_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As a fresh interpreter has them (another test may have served an app already).
    monkeypatch.setattr(logging, "_srcfile", logging.addLevelName.__code__.co_filename)
    for name in ("logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, name, True)
    logger = logging.getLogger("migex.test.lean")
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        logger.warning("before")
        lean_records()
        logger.warning("%s %d", "after", 201, extra={"route": "/v1/messages"})
    finally:
        logger.removeHandler(handler)
    before, after = seen
    assert (
        before.funcName == "test_lean_records_skip_the_caller_lookup_and_keep_every_written_field"
    )
    assert after.lineno == 0
    assert after.threadName is None
    assert after.processName is None
    line = json.loads(JsonFormatter().format(after))
    assert line["msg"] == "after 201"
    assert line["route"] == "/v1/messages"
    assert set(line) == {"time", "level", "logger", "msg", "route"}


@pytest.mark.parametrize(
    "ts",
    [0.0, 1764000000.0, 1764000000.0005, 1764000000.9994999, 1764000000.9999996,
     1764000000.4999995, 1764000059.999, 1798761599.9999999, 4102444800.123456],
)  # fmt: skip
def test_rfc3339_formats_as_datetime_does_at_every_edge(ts: float) -> None:
    dt = datetime.fromtimestamp(ts, tz=UTC)
    expected = dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    assert rfc3339(ts) == expected
