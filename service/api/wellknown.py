"""Public keys: the node's JWK Set and the audit log's note verifier key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from service.api.deps import NodeDep
from service.protocol.keys import jwks

router = APIRouter(tags=["keys"])


@router.get(
    "/.well-known/jwks.json",
    summary="The node's public signing keys (RFC 7517 JWK Set)",
    description="Partner operators pin these keys in their configuration; the node never trusts a key a message carries.",
)
def get_jwks(node: NodeDep) -> dict[str, Any]:
    return jwks(node.published)


@router.get(
    "/.well-known/migex-audit-key",
    summary="The audit checkpoint verifier key (C2SP signed-note format)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"example": "migex/KZ:MIA+1a2b3c4d+AaBc...="}}}},
)
def get_audit_key(node: NodeDep) -> PlainTextResponse:
    return PlainTextResponse(node.audit_vkey + "\n")
