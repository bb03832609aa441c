"""Public keys: the node's JWK Set and the audit log's note verifier key."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from service.api import examples as ex
from service.api.deps import NodeDep
from service.api.models import JwkSet
from service.api.openapi import problems
from service.protocol.keys import jwks

router = APIRouter(tags=["keys"])


@router.get(
    "/.well-known/jwks.json",
    summary="The node's public signing keys (RFC 7517 JWK Set)",
    description="Partner operators pin these keys in their configuration; the node never trusts a key a message carries.",
    response_model=JwkSet,
    responses=problems(503),
)
def get_jwks(node: NodeDep) -> JwkSet:
    return JwkSet.model_validate(jwks(node.published))


@router.get(
    "/.well-known/migex-audit-key",
    summary="The audit checkpoint verifier key (C2SP signed-note format)",
    response_class=PlainTextResponse,
    responses={200: ex.text_example(ex.AUDIT_KEY_EXAMPLE), **problems(503)},
)
def get_audit_key(node: NodeDep) -> PlainTextResponse:
    return PlainTextResponse(node.audit_vkey + "\n")
