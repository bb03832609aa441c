"""Which body model each message type has, and validation of a body against it.

    validated = validate_body("citizenship.verification-request", body)
    validated.model      # the typed body
    validated.warnings   # findings that do not refuse the message

A body that fails raises `Problem("schema")` whose `errors` list every failing
field as `{"path": "/body/...", "message": "..."}`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from service.protocol.problems import Problem
from service.records.cautions import body_cautions
from service.records.error_report import field_errors
from service.records.experience import (
    ENVELOPE_AGREEMENT_KEY,
    ENVELOPE_PURPOSE_KEY,
    ExperienceDocument,
)
from service.records.findings import FieldError
from service.records.inclusion_proofs import InclusionProofs
from service.records.readmission import ReadmissionRequest, ReadmissionResponse
from service.records.receipt import Receipt
from service.records.statistics import (
    DEFAULT_MAX_OBSERVATIONS,
    MAX_OBSERVATIONS_KEY,
    MigrationFlows,
)
from service.records.verification import VerificationRequest, VerificationResponse
from service.records.violation import ViolationNotice

__all__ = [
    "BODY_MODELS",
    "MESSAGE_TYPES",
    "SCHEMA_DIALECT",
    "FieldError",
    "Validated",
    "body_json_schema",
    "schema_id",
    "validate_body",
]

BODY_MODELS: Final[dict[str, type[BaseModel]]] = {
    "statistics.migration-flows": MigrationFlows,
    "citizenship.verification-request": VerificationRequest,
    "citizenship.verification-response": VerificationResponse,
    "migration.violation-notice": ViolationNotice,
    "readmission.request": ReadmissionRequest,
    "readmission.response": ReadmissionResponse,
    "experience.document": ExperienceDocument,
    "receipt": Receipt,
    "audit.inclusion-proofs": InclusionProofs,
}
MESSAGE_TYPES: Final[tuple[str, ...]] = tuple(BODY_MODELS)

SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
# A refusal lists at most this many errors, so that a large invalid dataset cannot
# turn its refusal into a larger response than the message itself.
MAX_LISTED_ERRORS: Final = 1000


@dataclass(frozen=True)
class Validated:
    """A valid body: its typed model and the warnings that did not refuse it."""

    model: BaseModel
    warnings: list[FieldError]


def _model_for(msg_type: str) -> type[BaseModel]:
    model = BODY_MODELS.get(msg_type)
    if model is None:
        known = ", ".join(MESSAGE_TYPES)
        raise Problem(
            "schema",
            f"no body schema for message type {msg_type!r}",
            extra={"errors": [{"path": "/type", "message": f"must be one of {known}"}]},
        )
    return model


def _refusal(msg_type: str, errors: list[FieldError]) -> Problem:
    count = len(errors)
    extra: dict[str, Any] = {"errors": [e.as_dict() for e in errors[:MAX_LISTED_ERRORS]]}
    if count > MAX_LISTED_ERRORS:
        extra["errors_omitted"] = count - MAX_LISTED_ERRORS
    noun = "error" if count == 1 else "errors"
    return Problem("schema", f"body invalid for {msg_type}: {count} {noun}", extra=extra)


def validate_body(
    msg_type: str,
    body: dict[str, Any],
    *,
    max_observations: int = DEFAULT_MAX_OBSERVATIONS,
    agreement: str | None = None,
    purpose: str | None = None,
) -> Validated:
    """Validate `body` as the body of `msg_type`; raise Problem("schema") if it is not.

    `agreement` and `purpose` are the envelope's, for the bodies that name them again
    (`experience.document`); a body checked on its own passes None."""
    model_class = _model_for(msg_type)
    context = {
        MAX_OBSERVATIONS_KEY: max_observations,
        ENVELOPE_AGREEMENT_KEY: agreement,
        ENVELOPE_PURPOSE_KEY: purpose,
    }
    try:
        model = model_class.model_validate(body, context=context)
    except ValidationError as exc:
        raise _refusal(msg_type, field_errors(exc)) from None
    return Validated(model, body_cautions(model))


def schema_id(name: str) -> str:
    """The `$id` of a published schema: `urn:migex:schema:<type>`."""
    return f"urn:migex:schema:{name}"


@cache
def _body_schema(msg_type: str) -> dict[str, Any]:
    model = _model_for(msg_type)
    schema = model.model_json_schema(mode="validation")
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": schema_id(msg_type),
        **schema,
        "title": msg_type,
        "description": (model.__doc__ or msg_type).strip().splitlines()[0],
    }


def body_json_schema(msg_type: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the body of `msg_type`; a fresh copy each call."""
    return copy.deepcopy(_body_schema(msg_type))
