"""The witness endpoint (C2SP tlog-witness; docs/protocol.md, "Witnessing").

No credentials: as the spec says, a request is authenticated only by the
checkpoint's signature. 409 answers carry the latest cosigned size as
``text/x.tlog.size``; every other refusal is an RFC 9457 problem.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from service.api.deps import NodeDep
from service.api.openapi import problems
from service.protocol.problems import Problem
from service.witness.checks import Refusal
from service.witness.protocol import SIZE_MEDIA_TYPE, render_size

router = APIRouter(tags=["witness"])

_REQUEST_EXAMPLE = (
    "old 4711\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\n"
    "migex/UZ:MIA\n4712\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    "\u2014 migex/UZ:MIA Ab3xYz...base64 signature...=\n"
)
_ANSWER_EXAMPLE = "\u2014 migex/KZ:MIA/witness jWbPPwAAAABkGFDL...base64 cosignature...==\n"


@router.post(
    "/v1/witness/add-checkpoint",
    summary="Cosign a partner's checkpoint (C2SP tlog-witness add-checkpoint)",
    description=(
        "Body: `old <size>`, at most 63 base64 consistency proof lines, an empty line, and "
        "the signed checkpoint. 200: the cosignature line (C2SP tlog-cosignature, "
        "`cosignature/v1`). 409: the latest cosigned size as `text/x.tlog.size`. Same size "
        "with another root and failed proofs are 422 (tlog-witness after C2SP PR 280)."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/plain": {"schema": {"type": "string"}, "example": _REQUEST_EXAMPLE}},
        }
    },
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"example": _ANSWER_EXAMPLE}}},
        409: {
            "description": "The old size is not the latest cosigned size",
            "content": {SIZE_MEDIA_TYPE: {"example": "4711\n"}},
        },
        **problems(400, 403, 404, 422, 429, 503),
    },
)
async def add_checkpoint(request: Request, node: NodeDep) -> Response:
    body = await request.body()
    cosigner = node.cosigner
    if cosigner is None:
        raise Problem("unknown-log", "this node is not a witness")
    try:
        line = await run_in_threadpool(cosigner.add_checkpoint, body)
    except Refusal as refusal:
        if refusal.status == 409 and refusal.latest_size is not None:
            # The exact media type, without the charset Starlette adds to text/ types.
            size = render_size(refusal.latest_size)
            return Response(size, 409, headers={"content-type": SIZE_MEDIA_TYPE})
        raise Problem(refusal.code, refusal.detail) from None
    return PlainTextResponse(line)


@router.get(
    "/.well-known/migex-witness-key",
    summary="This node's witness verifier key (C2SP tlog-cosignature, type 0x04)",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"example": "migex/KZ:MIA/witness+1a2b3c4d+BA...=\n"}}},
        **problems(404),
    },
)
def get_witness_key(node: NodeDep) -> PlainTextResponse:
    if node.cosigner is None:
        raise Problem("not-found", "this node is not a witness")
    return PlainTextResponse(node.cosigner.settings.vkey + "\n")
