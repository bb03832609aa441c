"""The partner's side of an attachment transfer (docs/protocol.md, 'Attachments (v1.1)'):
the answer to a message awaiting its files, and the resumable uploads of tus 1.0 core
(`HEAD` for the held offset, `PATCH` for the rest)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection
from starlette.requests import ClientDisconnect

from service.api.deps import NodeDep, bearer_token, read
from service.api.openapi import problems
from service.api.params import MessageIdPath, PartyPath
from service.attachments.limits import Declared, upload_key
from service.attachments.uploads import Context, append_stream, finish
from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.exchange.awaiting import (
    Awaiting,
    AwaitingUnit,
    Pending,
    StoredThenAccepted,
    incomplete,
    pending_row,
    read_pending,
    upload_token_matches,
    window_closed,
)
from service.exchange.inbound import INLINE_LIMIT, Checked, Refused, Stored, check_inbound
from service.exchange.transfer import RETURN_RECEIPT
from service.ledger.committer import AuditOnly
from service.protocol.mediatypes import JOSE, essence
from service.protocol.problems import Problem
from service.runtime import Node

router = APIRouter(tags=["exchange"])

EXAMPLE_DIGEST = "sha-256:TTZAPwRW39w2yAdBHEAYY5xbmmdcL_xO4YMfF248YZI"
EXAMPLE_URL = (
    "/v1/messages/UZ:MIA/0193a4c1-7d2e-7a55-9b1e-2f0c6d8e4a17/attachments/" + EXAMPLE_DIGEST
)


class UploadOffer(BaseModel):
    """Where to send one attachment and how much of it the node holds."""

    digest: str = Field(description="the attachment's digest, as the body names it")
    url: str = Field(description="its upload URL, relative to the node")
    offset: int = Field(description="the bytes the node holds durably")


class AwaitingAttachments(BaseModel):
    """202 to a message naming attachments: it is verified and waits for its files."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "status": "awaiting-attachments",
                "upload_token": "Q2hhbmdlIG1lOiB0aGlzIGlzIGFuIGV4YW1wbGUgdG9r",
                "attachments": [{"digest": EXAMPLE_DIGEST, "url": EXAMPLE_URL, "offset": 0}],
            }
        }
    )

    status: Literal["awaiting-attachments"]
    upload_token: str = Field(description="the bearer token of this message's uploads")
    attachments: list[UploadOffer]


TUS_VERSION = "1.0.0"
OFFSET_STREAM = "application/offset+octet-stream"
UPLOAD_PATH = "/v1/messages/{sender}/{message_id}/attachments/{digest}"


def offset_of(node: Node, sender: str, message_id: str, item: Declared) -> int:
    """What the node holds of one attachment: all of it once stored, else the staged bytes."""
    if node.store.exists(item.digest):
        return item.size
    return node.store.offset(upload_key(sender, message_id, item.digest))


async def awaiting_answer(node: Node, sender: str, message_id: str, awaiting: Awaiting) -> Response:
    """202: the message waits for its files; where to send each and what is held."""
    base = f"/v1/messages/{sender}/{message_id}/attachments"
    items = [
        {
            "digest": d.digest,
            "url": f"{base}/{d.digest}",
            "offset": await asyncio.to_thread(offset_of, node, sender, message_id, d),
        }
        for d in awaiting.declared
    ]
    answer = AwaitingAttachments(
        status="awaiting-attachments",
        upload_token=awaiting.upload_token,
        attachments=[UploadOffer(**item) for item in items],
    )
    return JSONResponse(answer.model_dump(), status_code=202)


def _tus_headers(offset: int, size: int) -> dict[str, str]:
    return {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Offset": str(offset),
        "Upload-Length": str(size),
        "Cache-Control": "no-store",
    }


async def _pending(
    request: Request, node: Node, sender: str, message_id: str, digest: str
) -> tuple[Pending, Declared]:
    """The pending message and the attachment an upload request is for, or a refusal."""

    def query(conn: Connection) -> Any:
        return pending_row(conn, sender, message_id)

    row = await read(node, query)
    if row is None:
        raise Problem("not-found", f"no message {message_id} from {sender} awaits attachments")
    if not upload_token_matches(bearer_token(request), str(row.upload_token)):
        raise Problem(
            "unauthorized",
            "send the message's upload token: Authorization: Bearer <upload_token>",
            headers={"WWW-Authenticate": 'Bearer realm="migex-upload"'},
        )
    # Before the body is opened: an expired row keeps none.
    if window_closed(row, node.clock()):
        raise incomplete(sender, message_id)
    pending = read_pending(row, node.bodies)  # BodyUnreadable: a stored-unreadable problem
    for item in pending.declared:
        if item.digest == digest:
            return pending, item
    raise Problem("not-found", f"message {message_id} names no attachment {digest}")


@router.get(
    UPLOAD_PATH,
    summary="How much of an attachment the node holds (tus 1.0; ask with HEAD)",
    status_code=200,
    response_class=Response,
    responses={
        200: {
            "description": "The held offset in `Upload-Offset`, the size in `Upload-Length`",
            "headers": {
                "Upload-Offset": {"schema": {"type": "integer"}, "example": 1048576},
                "Upload-Length": {"schema": {"type": "integer"}, "example": 48213000},
            },
        },
        **problems(401, 404, 410, 422),
    },
)
async def upload_offset(
    sender: PartyPath, message_id: MessageIdPath, digest: str, request: Request, node: NodeDep
) -> Response:
    _, item = await _pending(request, node, sender, message_id, _digest(digest))
    offset = await asyncio.to_thread(offset_of, node, sender, message_id, item)
    return Response(status_code=200, headers=_tus_headers(offset, item.size))


def _digest(value: str) -> str:
    if len(value) != 51 or not value.startswith("sha-256:"):
        raise Problem("not-found", "not an attachment digest")
    return value


def _declared_offset(request: Request) -> int:
    value = request.headers.get("upload-offset", "")
    if not value.isdigit() or len(value) > 16:
        raise Problem("bad-request", "send Upload-Offset: the number of bytes held")
    return int(value)


@router.patch(
    UPLOAD_PATH,
    summary="Send the rest of an attachment from the held offset (tus 1.0)",
    status_code=204,
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                OFFSET_STREAM: {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "the bytes of the file from Upload-Offset on",
                }
            },
        }
    },
    responses={
        200: {
            "description": (
                "The upload stored the message's last missing file and the sender asked "
                "`Prefer: return=representation`: the message is accepted and this is its "
                "signed receipt (protocol v1.1, 'The transfer', step 4)"
            ),
            "content": {JOSE: {"schema": {"type": "string"}}},
        },
        204: {"description": "The bytes are held; the new offset in `Upload-Offset`"},
        **problems(400, 401, 404, 409, 410, 413, 415, 422),
    },
)
async def upload_rest(
    sender: PartyPath, message_id: MessageIdPath, digest: str, request: Request, node: NodeDep
) -> Response:
    pending, item = await _pending(request, node, sender, message_id, _digest(digest))
    if essence(request.headers.get("content-type")) != OFFSET_STREAM:
        raise Problem("unsupported-media-type", f"send the bytes as {OFFSET_STREAM}")
    offset = _declared_offset(request)
    if node.store.exists(item.digest):
        if offset != item.size:
            raise Problem(
                "upload-offset",
                f"the node holds all {item.size} bytes",
                headers={"Upload-Offset": str(item.size)},
            )
        return Response(status_code=204, headers=_tus_headers(item.size, item.size))
    key = upload_key(sender, message_id, item.digest)
    try:
        held = await append_stream(
            node.store,
            key,
            offset,
            request.stream(),
            item.size,
            idle=node.config.limits.request_timeout_seconds,
        )
    except ClientDisconnect:
        # What arrived is kept; the sender asks for the offset and sends the rest.
        raise Problem("bad-request", "the connection closed before the bytes ended") from None
    if held == item.size:
        accepted = await _complete(
            node, sender, message_id, pending, item, key, accept=_wants_receipt(request)
        )
        if accepted is not None:
            return Response(
                content=accepted.receipt,
                status_code=200,
                media_type=JOSE,
                headers={**_tus_headers(held, item.size), "Preference-Applied": RETURN_RECEIPT},
            )
    return Response(status_code=204, headers=_tus_headers(held, item.size))


def awaiting_unit(
    node: Node, checked: Checked, *, stale: Problem | None, token: str | None
) -> AwaitingUnit:
    """The unit that takes a message naming attachments on `node`: a post of it, or the
    upload that stores its last missing file."""
    return AwaitingUnit(
        checked,
        node.signer,
        store=node.store,
        bodies=node.bodies,
        upload_window=node.config.attachments.upload_window_seconds,
        stale=stale,
        token=token,
    )


def _wants_receipt(request: Request) -> bool:
    """Whether the sender asked for the receipt (`Prefer: return=representation`)."""
    for value in request.headers.getlist("prefer"):
        for preference in value.split(","):
            if preference.split(";", 1)[0].strip().lower() == RETURN_RECEIPT:
                return True
    return False


async def _complete(
    node: Node,
    sender: str,
    message_id: str,
    pending: Pending,
    item: Declared,
    key: str,
    *,
    accept: bool = False,
) -> Stored | None:
    """Check the complete file and store it; audit the outcome either way. With
    `accept`, when this was the message's last missing file, the message is accepted in
    the same commit as the file's entry: its receipt, or None if it was not accepted
    (its completion post then answers)."""
    partner = node.registry.partner(sender)
    limits = partner.attachments if partner is not None else None
    env = pending.envelope()
    ctx = Context(
        msg_type=env.type,
        body=env.body,
        allowed=limits.media_types if limits is not None else frozenset(),
        max_observations=node.policy.max_observations,
        max_depth=node.policy.max_depth,
        max_members=node.policy.max_members,
    )

    def event(name: str, outcome: str, code: str | None, **detail: Any) -> AuditEvent:
        return AuditEvent(
            name,
            outcome,
            party=sender,
            sender=sender,
            recipient=node.party,
            message_id=message_id,
            type=env.type,
            agreement=env.agreement,
            purpose=env.purpose,
            code=code,
            digest=pending.digest,
            detail={"attachment": item.digest, **detail},
        )

    try:
        await asyncio.to_thread(finish, node.store, key, item, ctx)
    except Problem as problem:
        refused = event(ev.ATTACHMENT_REFUSED, "refused", problem.code, status=problem.status)
        await node.committer.run(AuditOnly([refused]))
        raise
    stored = event(ev.ATTACHMENT_STORED, "stored", None, size=item.size, media_type=item.media_type)
    if accept and await _all_stored(node, pending):
        completing = await _completion_checked(node, pending.jws)
        if completing is not None:
            checked, stale = completing
            unit = awaiting_unit(node, checked, stale=stale, token=pending.upload_token)
            try:
                answer = await node.committer.run(StoredThenAccepted(stored, unit))
            except Problem as problem:
                if problem.code == "unavailable":
                    raise  # nothing was committed, as for the file's entry alone
                # The message was refused and the file's entry written: the completion
                # post answers.
                return None
            return answer if isinstance(answer, Stored) else None
    await node.committer.run(AuditOnly([stored]))
    return None


async def _all_stored(node: Node, pending: Pending) -> bool:
    def every() -> bool:
        return all(node.store.exists(d.digest) for d in pending.declared)

    return await asyncio.to_thread(every)


async def _completion_checked(node: Node, raw: bytes) -> tuple[Checked, Problem | None] | None:
    """The checks of section 6 a completion post of `raw` would run, but the body's
    validation (its bytes were validated when first posted; the unit takes them only if
    the pending row holds exactly these): as of now, or as of the message's own `iat`
    once it is outside the clock skew (with the stale problem, which the unit raises
    only if the message does not await its files, as for a post). None if they fail:
    the message is not taken here, and the sender's completion post gets the refusal."""

    def check() -> tuple[Checked, Problem | None] | None:
        try:
            checked = check_inbound(node.policy, raw, node.clock(), validate=False)
            stale = checked.stale_problem
            if stale is None:
                return checked, None
            return check_inbound(node.policy, raw, float(checked.env.iat), validate=False), stale
        except Refused:
            return None

    if len(raw) > INLINE_LIMIT:
        return await asyncio.to_thread(check)
    return check()
