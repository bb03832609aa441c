"""JSON pointers and messages of field errors."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_core import ErrorDetails

from service.records.error_report import message
from service.records.findings import FieldError, body_pointer, escape_token


@pytest.mark.parametrize(
    ("token", "escaped"),
    [("a/b", "a~1b"), ("m~n", "m~0n"), ("~/", "~0~1"), (3, "3"), ("", "")],
)
def test_tokens_are_escaped_as_rfc_6901_says(token: str | int, escaped: str) -> None:
    assert escape_token(token) == escaped


def test_pointer_starts_at_body() -> None:
    assert body_pointer(()) == "/body"
    assert body_pointer(("person", "identifiers", 0, "value")) == "/body/person/identifiers/0/value"


def test_field_error_renders_as_path_and_message() -> None:
    assert FieldError("/body/x", "is required").as_dict() == {
        "path": "/body/x",
        "message": "is required",
    }


def _error(kind: str, **ctx: Any) -> ErrorDetails:
    return ErrorDetails(type=kind, loc=("x",), msg="pydantic's own words", input=None, ctx=ctx)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_error("missing"), "is required"),
        (_error("string_too_short", min_length=1), "must not be empty"),
        (_error("string_too_long", max_length=64), "must have at most 64 characters"),
        (_error("too_short", min_length=2), "must have at least 2 items"),
        (_error("too_long", max_length=1), "must have at most 1 item"),
        (_error("greater_than_equal", ge=0), "must be 0 or more"),
        (_error("literal_error", expected="'A' or 'B'"), "must be one of 'A' or 'B'"),
        (_error("string_pattern_mismatch", pattern="^q$"), "must match the pattern ^q$"),
        (_error("something_new"), "pydantic's own words"),
    ],
)
def test_messages_speak_to_the_sender(error: ErrorDetails, expected: str) -> None:
    assert message(error) == expected
