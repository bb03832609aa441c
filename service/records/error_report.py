"""Pydantic validation errors turned into field errors a person can act on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from service.records.fieldtypes import PATTERN_HINTS
from service.records.findings import FieldError, body_pointer


def _ctx(error: ErrorDetails, key: str) -> Any:
    return error.get("ctx", {}).get(key)


def _pattern(error: ErrorDetails) -> str:
    pattern = str(_ctx(error, "pattern"))
    return PATTERN_HINTS.get(pattern, f"must match the pattern {pattern}")


def _characters(error: ErrorDetails, bound: str, word: str) -> str:
    count = _ctx(error, bound)
    if bound == "min_length" and count == 1:
        return "must not be empty"
    return f"must have {word} {count} character{'s' if count != 1 else ''}"


def _items(error: ErrorDetails, bound: str, word: str) -> str:
    count = _ctx(error, bound)
    return f"must have {word} {count} item{'s' if count != 1 else ''}"


_FIXED: Final[dict[str, str]] = {
    "missing": "is required",
    "extra_forbidden": "is not a member of this object: remove it",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "string_type": "must be a string",
    "string_unicode": "must be valid Unicode text",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "none_required": "must be null",
}

_BUILT: Final[dict[str, Callable[[ErrorDetails], str]]] = {
    "literal_error": lambda e: f"must be one of {_ctx(e, 'expected')}",
    "string_pattern_mismatch": _pattern,
    "string_too_short": lambda e: _characters(e, "min_length", "at least"),
    "string_too_long": lambda e: _characters(e, "max_length", "at most"),
    "too_short": lambda e: _items(e, "min_length", "at least"),
    "too_long": lambda e: _items(e, "max_length", "at most"),
    "greater_than_equal": lambda e: f"must be {_ctx(e, 'ge')} or more",
    "less_than_equal": lambda e: f"must be {_ctx(e, 'le')} or less",
}


def message(error: ErrorDetails) -> str:
    """A sentence about the failing value, without repeating the value itself."""
    kind = error["type"]
    if kind in _FIXED:
        return _FIXED[kind]
    build = _BUILT.get(kind)
    return build(error) if build is not None else error["msg"]


def field_errors(exc: ValidationError) -> list[FieldError]:
    """One field error per pydantic error, at its JSON pointer inside the body."""
    return [
        FieldError(body_pointer(tuple(error["loc"])), message(error))
        for error in exc.errors(include_url=False, include_input=False)
    ]
