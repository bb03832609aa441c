"""Legal holds on cases (operators): list, place, release. Each change is audited."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import NodeDep, OperatorDep, read
from service.api.models import LegalHoldChanged, LegalHolds
from service.api.openapi import problems
from service.exchange.holds import MAX_REASON, HoldUnit, active_holds

# Operation ids are the functions' names, as in the rest of the local API (local.py).
router = APIRouter(
    prefix="/v1/operator/holds", tags=["local"], generate_unique_id_function=lambda r: r.name
)


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_reference: str = Field(min_length=1, max_length=64, description="The agency's file number")
    reason: str = Field(min_length=1, max_length=MAX_REASON, description="Why the case is held")


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_reference: str = Field(min_length=1, max_length=64)


@router.get(
    "",
    summary="Legal holds in force (operators)",
    response_model=LegalHolds,
    responses=problems(401, 403, 503),
)
async def list_holds(node: NodeDep, who: OperatorDep) -> LegalHolds:
    holds = await read(node, active_holds)
    return LegalHolds.model_validate({"holds": holds})


@router.post(
    "",
    summary="Place a legal hold on a case: its messages are not purged (operators)",
    status_code=201,
    response_model=LegalHoldChanged,
    responses=problems(401, 403, 422, 503),
)
async def place_hold(item: HoldIn, node: NodeDep, who: OperatorDep) -> LegalHoldChanged:
    done = await node.committer.run(HoldUnit(item.case_reference, who.name, item.reason))
    return LegalHoldChanged.model_validate(done)


@router.post(
    "/release",
    summary="Release a legal hold; the case's messages are purged when due (operators)",
    response_model=LegalHoldChanged,
    responses=problems(401, 403, 404, 422, 503),
)
async def release_hold(item: ReleaseIn, node: NodeDep, who: OperatorDep) -> LegalHoldChanged:
    done = await node.committer.run(HoldUnit(item.case_reference, who.name, release=True))
    return LegalHoldChanged.model_validate(done)
