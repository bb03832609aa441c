"""The data-protection officer's API (role `privacy`): disclosures about a person.

The person's identifiers travel in the request body, never in the URL, so that no
access log or proxy keeps them. Every query is audited (`privacy.query`) with the
keyed digests it looked up, never a value.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.api.deps import NodeDep, PrivacyDep, read
from service.api.models import Disclosures
from service.api.openapi import problems
from service.privacy.queries import NameQuery, SubjectQuery, answer, plan_query
from service.records.identifiers import Scheme

router = APIRouter(prefix="/v1/privacy", tags=["privacy"])

Value = Annotated[str, StringConstraints(min_length=1, max_length=64)]
NamePart = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdentifierIn(_Query):
    scheme: Scheme
    value: Value


class NameIn(_Query):
    surname: NamePart
    given_names: NamePart | None = None
    birth_date: date


class DisclosureQueryIn(_Query):
    """What is known of the person: any of national numbers, document numbers, names."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"identifiers": [{"scheme": "KZ-IIN", "value": "900101300123"}]}
        },
    )

    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=20)
    documents: list[Value] = Field(default_factory=list, max_length=20)
    names: list[NameIn] = Field(default_factory=list, max_length=20)

    def to_query(self) -> SubjectQuery:
        return SubjectQuery(
            identifiers=tuple((i.scheme, i.value) for i in self.identifiers),
            documents=tuple(self.documents),
            names=tuple(
                NameQuery(n.surname, n.given_names, n.birth_date.isoformat()) for n in self.names
            ),
        )


@router.post(
    "/disclosures",
    summary="Which partners received or sent data about a person (data-protection officer)",
    response_model=Disclosures,
    responses=problems(401, 403, 404, 422, 503),
)
async def disclosures(item: DisclosureQueryIn, node: NodeDep, who: PrivacyDep) -> Disclosures:
    digests, unit = plan_query(node.subject_key, item.to_query(), asked_by=who.name)
    index = await node.committer.run(unit)
    found = await read(node, lambda conn: answer(conn, digests, index))
    return Disclosures.model_validate(
        {
            "subjects": found.subjects,
            "disclosures": found.disclosures,
            "truncated": found.truncated,
            "audit_index": found.audit_index,
        }
    )
