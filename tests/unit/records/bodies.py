"""Example bodies to start from, and the validation outcome of a body."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from service.protocol.problems import Problem
from service.records.examples import EXAMPLES
from service.records.registry import Validated, validate_body


def example(msg_type: str) -> dict[str, Any]:
    """A fresh deep copy of the published example body of `msg_type`."""
    return copy.deepcopy(EXAMPLES[msg_type])


def refusal(msg_type: str, body: Any, **options: Any) -> list[dict[str, str]]:
    """The errors of the schema problem `body` raises (failing if it is valid)."""
    with pytest.raises(Problem) as caught:
        validate_body(msg_type, body, **options)
    assert caught.value.code == "schema"
    errors: list[dict[str, str]] = caught.value.extra["errors"]
    return errors


def paths(msg_type: str, body: Any, **options: Any) -> list[str]:
    """The JSON pointers of the errors `body` raises."""
    return [error["path"] for error in refusal(msg_type, body, **options)]


def accepted(msg_type: str, body: Any, **options: Any) -> Validated:
    """The validation result of a body that must be valid."""
    return validate_body(msg_type, body, **options)


# An attachment as a body names it (docs/protocol.md, 'Attachments (v1.1)').
PDF_ATTACHMENT: dict[str, Any] = {
    "name": "methodology.pdf",
    "media_type": "application/pdf",
    "size": 48213,
    "digest": "sha-256:TTZAPwRW39w2yAdBHEAYY5xbmmdcL_xO4YMfF248YZI",
}
