"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.api import examples as ex
from service.api.deps import NodeDep
from service.api.openapi import problems
from service.db import migrate
from service.protocol.problems import Problem

router = APIRouter(prefix="/v1", tags=["health"])


@router.get(
    "/health",
    summary="The process is up",
    responses={200: ex.json_example(ex.HEALTH_EXAMPLE), **problems(503)},
)
async def health() -> dict[str, str]:
    # Answered on the event loop: a liveness probe should not need a worker thread.
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Database reachable, keys loaded, migrations current",
    responses={200: ex.json_example(ex.READY_EXAMPLE), **problems(503)},
)
def ready(node: NodeDep) -> dict[str, Any]:
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
    return {"status": "ready", "party": node.party, "keys": sorted(node.signing_keys)}
