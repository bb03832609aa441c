"""Rule failures found by a model's own checks, reported at the exact failing field.

A model validator that finds several faults raises them together as one pydantic
ValidationError; pydantic then reports each at its location inside the body, next
to the errors of every other field.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

RULE_ERROR_TYPE = "rule"
Location = tuple[str | int, ...]


def rule_error(message: str) -> PydanticCustomError:
    """A pydantic error whose message is `message` exactly (braces are not templates)."""
    return PydanticCustomError(RULE_ERROR_TYPE, "{reason}", {"reason": message})


class RuleFailures:
    """Collects failures of one model's rules, then raises them all at once."""

    def __init__(self) -> None:
        self._details: list[InitErrorDetails] = []

    def __bool__(self) -> bool:
        return bool(self._details)

    def add(self, location: Location, message: str) -> None:
        self._details.append(InitErrorDetails(type=rule_error(message), loc=location, input=None))

    def raise_if_any(self, title: str) -> None:
        if self._details:
            raise ValidationError.from_exception_data(title, self._details)
