"""Dependencies: the running node and the caller's credentials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from service.api.tokens import Principal
from service.protocol.problems import Problem
from service.runtime import Node


async def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]

T = TypeVar("T")


async def read(node: Node, query: Callable[[Connection], T]) -> T:
    """Run `query` on a reader connection in the threadpool, never on the event loop."""

    def run() -> T:
        with node.engines.reader.connect() as conn:
            return query(conn)

    return await run_in_threadpool(run)


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None without one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _principal(request: Request, node: Node) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise Problem(
            "unauthorized",
            "send a bearer token: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="migex"'},
        )
    principal = node.tokens.authenticate(token)
    if principal is None:
        raise Problem(
            "unauthorized",
            "the bearer token is not valid",
            headers={"WWW-Authenticate": 'Bearer realm="migex", error="invalid_token"'},
        )
    return principal


def _require(role: str) -> object:
    async def dependency(request: Request, node: NodeDep) -> Principal:
        principal = _principal(request, node)
        if principal.role != role:
            raise Problem("insufficient-role", f"this endpoint needs the {role} role")
        return principal

    return Depends(dependency)


AuditorDep = Annotated[Principal, _require("auditor")]
OperatorDep = Annotated[Principal, _require("operator")]
ClientDep = Annotated[Principal, _require("client")]
PrivacyDep = Annotated[Principal, _require("privacy")]
