"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.api.deps import NodeDep
from service.api.models import Health, Ready
from service.api.openapi import problems
from service.db import migrate
from service.protocol.problems import Problem

router = APIRouter(prefix="/v1", tags=["health"])


@router.get(
    "/health",
    summary="The process is up",
    response_model=Health,
    responses=problems(503),
)
async def health() -> Health:
    # Answered on the event loop: a liveness probe should not need a worker thread.
    return Health(status="ok")


@router.get(
    "/ready",
    summary="Database reachable, keys loaded, migrations current",
    response_model=Ready,
    responses=problems(503),
)
def ready(node: NodeDep) -> Ready:
    try:
        with node.engines.reader.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = migrate.is_current(node.engines.reader)
    except SQLAlchemyError as exc:
        raise Problem(
            "unavailable", "the database is unreachable", headers={"Retry-After": "5"}
        ) from exc
    if not current:
        raise Problem(
            "unavailable", "database migrations are not current", headers={"Retry-After": "5"}
        )
    if not node.signing_keys:
        raise Problem("unavailable", "no signing key is loaded", headers={"Retry-After": "5"})
    return Ready(status="ready", party=node.party, keys=sorted(node.signing_keys))
