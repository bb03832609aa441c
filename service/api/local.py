"""The local API for the agency's own systems (client role) and for operators."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from service.api import examples as ex
from service.api.deps import ClientDep, NodeDep, OperatorDep
from service.api.errors import content_length
from service.api.messages import INLINE_LIMIT
from service.api.openapi import problems
from service.db.groupcommit import AuditOnly
from service.db.tables import messages, outbox
from service.exchange import inbox
from service.exchange.outbound import (
    OutboundRequest,
    QueueUnit,
    RequeueUnit,
    prepare,
    refusal_event,
)
from service.protocol.envelope import PARTY_RE
from service.protocol.problems import Problem
from service.witness.intake import proof_text
from service.witness.tlogproof import FILE_EXTENSION
from service.witness.tlogproof import MEDIA_TYPE as TLOG_PROOF_MEDIA_TYPE

router = APIRouter(prefix="/v1", tags=["local"])

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

_SENT = "01935c2e-6c58-70f8-843f-ecca6ffc2c2b"
_REPLY = "01935c31-0a4e-7b21-9d3c-5f0e8a7b6c21"
STATUS_EXAMPLE: dict[str, Any] = {
    "id": _SENT,
    "to": "KG:SRS",
    "type": "citizenship.verification-request",
    "agreement": "cis-1998",
    "purpose": "identity-verification",
    "reply_to": None,
    "status": "delivered",
    "audit_index": 4711,
    "removed_fields": [],
    "attempts": [
        {
            "attempt": 1,
            "at": 1795000000.25,
            "outcome": "delivered",
            "http_status": 201,
            "error": None,
        }
    ],
    "next_attempt_at": None,
    "last_error": None,
    "receipt": {
        "jws": "eyJhbGciOiJFZDI1NTE5Iiwia2lkIjoiS0c6U1JTIzIwMjYtMDEiLCJ0eXAiOiJtaWdleCtqd3MifQ.eyJ...In0.c2ln",
        "payload": {
            "v": 1,
            "id": "01935c2e-7001-7a3c-8e2f-1b2c3d4e5f60",
            "iss": "KG:SRS",
            "aud": "KZ:MIA",
            "iat": 1795000000,
            "type": "receipt",
            "agreement": "cis-1998",
            "purpose": "identity-verification",
            "reply_to": _SENT,
            "body": {
                "status": "accepted",
                "digest": "sha-256:PS2OYWb7X_Et_qcR0F-2Dt4j5ckYUYJc1B9UhmJsB9U",
                "audit_index": 1288,
            },
        },
        "partner_audit_index": 1288,
    },
    "replies": [
        {
            "id": _REPLY,
            "from": "KG:SRS",
            "type": "citizenship.verification-response",
            "audit_index": 4790,
        }
    ],
    "delivery_proof": {"index": 1288, "tree_size": 1300, "stored_at": 1795000003.5},
}
PROOF_EXAMPLE = (
    "c2sp.org/tlog-proof@v1\n"
    "extra eyJhZ3JlZW1lbnQiOiJjaXMtMTk5OCIsImNvZGUiOm51bGwsImRldGFpbCI6e30s...\n"
    "index 1288\n"
    "2tjpnuoVZLT9rb+9lH8hlUZtneeKMda7Qwl/qSdY5g0=\n"
    "\n"
    "migex/KG:SRS\n1300\nJmLtoRdbb10Xgr81CRs6hfSZi+DCDUCrGN4obivZYno=\n\n"
    "\u2014 migex/KG:SRS N2z9P8aW...base64 signature...=\n"
    "\u2014 migex/KZ:MIA/witness NYeFnAAAAABr...base64 cosignature...=\n"
    "\u2014 migex/UZ:MIA/witness VmXqqwAAAABr...base64 cosignature...=\n"
)
INBOX_EXAMPLE: dict[str, Any] = {
    "messages": [
        {
            "id": _REPLY,
            "from": "KG:SRS",
            "type": "citizenship.verification-response",
            "agreement": "cis-1998",
            "purpose": "identity-verification",
            "reply_to": _SENT,
            "received_at": 1795000420.5,
            "audit_index": 4790,
            "acked": False,
            "body": {
                "result": "confirmed",
                "checked_on": "2026-11-20",
                "matched_fields": ["names.latin", "birth_date"],
                "person": {"birth_date": "1991-03-14"},
            },
            "purged": False,
        }
    ],
    "next_cursor": None,
}
ACK_EXAMPLE: dict[str, Any] = {"id": _REPLY, "from": "KG:SRS", "acked": True, "changed": True}
OPERATOR_OUTBOX_EXAMPLE: dict[str, Any] = {
    "state": "failed",
    "messages": [
        {
            "message_id": _SENT,
            "recipient": "TJ:MIA",
            "type": "statistics.migration-flows",
            "status": "failed",
            "attempts": 10,
            "last_error": "transport",
            "created_at": 1795000000.0,
            "next_attempt_at": 1795001843.2,
        }
    ],
}
RETRY_EXAMPLE: dict[str, Any] = {"id": _SENT, "status": "queued"}


class OutboundIn(BaseModel):
    """A record to sign and deliver to a partner."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "to": "UZ:MIA",
                "type": "statistics.migration-flows",
                "agreement": "kz-uz-2019",
                "purpose": "statistics",
                "body": {
                    "...": "the body, valid against schemas/statistics.migration-flows.schema.json"
                },
            }
        },
    )

    to: str = Field(pattern=PARTY_RE)
    type: str = Field(min_length=1, max_length=64)
    agreement: str = Field(min_length=1, max_length=64)
    purpose: str = Field(min_length=1, max_length=64)
    body: dict[str, Any]
    reply_to: str | None = Field(default=None, pattern=UUID_RE)


class Accepted(BaseModel):
    id: str
    status: str
    status_url: str
    audit_index: int
    removed_fields: list[str]


@router.post(
    "/outbox",
    summary="Sign and queue a message to a partner",
    status_code=202,
    response_model=Accepted,
    responses=problems(401, 403, 422, 503),
)
async def submit(
    item: OutboundIn, node: NodeDep, who: ClientDep, request: Request, response: Response
) -> Accepted:
    req = OutboundRequest(
        item.to, item.type, item.agreement, item.purpose, item.body, item.reply_to
    )
    now = node.clock()
    work = functools.partial(
        prepare,
        req,
        node=node.party,
        registry=node.registry,
        key=node.signing_key,
        now=now,
        max_observations=node.config.limits.max_observations,
        max_depth=node.config.limits.max_json_depth,
        max_members=node.config.limits.max_json_members,
    )
    try:
        # A small record is checked and signed at once; a large one (statistics) in a
        # thread, so that it does not hold up other requests.
        declared = content_length(request.scope)
        if declared is None or declared > INLINE_LIMIT:
            prepared = await run_in_threadpool(work)
        else:
            prepared = work()
    except Problem as problem:
        await node.committer.run(AuditOnly([refusal_event(req, node.party, problem)]))
        raise
    queued = await node.committer.run(QueueUnit(req, prepared))
    if node.delivery is not None:
        node.delivery.wake()
    url = f"/v1/outbox/{queued.message_id}"
    response.headers["Location"] = url
    return Accepted(
        id=queued.message_id,
        status="queued",
        status_url=url,
        audit_index=queued.audit_index,
        removed_fields=queued.removed,
    )


@router.get(
    "/outbox/{message_id}",
    summary="Status of an outbound message: attempts, the partner's receipt, replies",
    responses={200: ex.json_example(STATUS_EXAMPLE), **problems(401, 403, 404)},
)
async def outbound_status(message_id: str, node: NodeDep, who: ClientDep) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        with node.engines.reader.connect() as conn:
            return inbox.outbound_status(conn, node.party, message_id)

    return await run_in_threadpool(read)


@router.get(
    "/outbox/{message_id}/proof",
    summary="The partner's proof that it logged a delivered message (C2SP tlog-proof)",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "Success",
            "content": {TLOG_PROOF_MEDIA_TYPE: {"example": PROOF_EXAMPLE}},
        },
        **problems(401, 403, 404),
    },
)
async def outbound_proof(message_id: str, node: NodeDep, who: ClientDep) -> PlainTextResponse:
    def read() -> str | None:
        with node.engines.reader.connect() as conn:
            inbox.outbound_status(conn, node.party, message_id)  # 404 for an unknown message
            return proof_text(conn, node.party, message_id)

    text = await run_in_threadpool(read)
    if text is None:
        raise Problem("not-found", f"no delivery proof for message {message_id} yet")
    return PlainTextResponse(
        text,
        media_type=TLOG_PROOF_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{message_id}{FILE_EXTENSION}"'},
    )


@router.get(
    "/inbox",
    summary="Accepted inbound messages, oldest first",
    responses={200: ex.json_example(INBOX_EXAMPLE), **problems(401, 403, 422)},
)
async def read_inbox(
    node: NodeDep,
    who: ClientDep,
    type: Annotated[str | None, Query(max_length=64)] = None,
    unacked: bool = False,
    cursor: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    def read() -> tuple[list[dict[str, Any]], int | None]:
        with node.engines.reader.connect() as conn:
            return inbox.inbox_page(conn, msg_type=type, unacked=unacked, after=cursor, limit=limit)

    items, next_cursor = await run_in_threadpool(read)
    return {"messages": items, "next_cursor": next_cursor}


@router.post(
    "/inbox/{sender}/{message_id}/ack",
    summary="Acknowledge an inbound message",
    responses={200: ex.json_example(ACK_EXAMPLE), **problems(401, 403, 404)},
)
async def acknowledge(
    sender: str, message_id: str, node: NodeDep, who: ClientDep
) -> dict[str, Any]:
    changed = await node.committer.run(inbox.AckUnit(sender, message_id, who.name))
    return {"id": message_id, "from": sender, "acked": True, "changed": changed}


@router.get(
    "/operator/outbox",
    summary="Outbound messages by delivery state (operators)",
    responses={200: ex.json_example(OPERATOR_OUTBOX_EXAMPLE), **problems(401, 403, 422)},
)
async def operator_outbox(
    node: NodeDep,
    who: OperatorDep,
    state: Annotated[str, Query(pattern="^(pending|delivered|failed)$")] = "failed",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    def read() -> list[dict[str, Any]]:
        m = messages.c
        o = outbox.c
        with node.engines.reader.connect() as conn:
            rows = (
                conn.execute(
                    select(
                        m.message_id,
                        m.recipient,
                        m.type,
                        m.status,
                        o.attempts,
                        o.last_error,
                        o.created_at,
                        o.next_attempt_at,
                    )
                    .join(outbox, o.message_pk == m.pk)
                    .where(o.state == state)
                    .order_by(o.created_at)
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    return {"state": state, "messages": await run_in_threadpool(read)}


@router.post(
    "/operator/outbox/{message_id}/retry",
    summary="Queue a failed message for delivery again (operators)",
    responses={200: ex.json_example(RETRY_EXAMPLE), **problems(401, 403, 404, 422)},
)
async def operator_retry(message_id: str, node: NodeDep, who: OperatorDep) -> dict[str, Any]:
    await node.committer.run(RequeueUnit(node.party, message_id, who.name))
    if node.delivery is not None:
        node.delivery.wake()
    return {"id": message_id, "status": "queued"}
