"""The local API for the agency's own systems (client role) and for operators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from service.api import examples as ex
from service.api.deps import ClientDep, NodeDep, OperatorDep, read
from service.api.errors import content_length
from service.api.models import (
    Accepted,
    Acknowledged,
    InboxPage,
    OperatorOutbox,
    OutboundStatus,
    OutboxState,
    Requeued,
)
from service.api.openapi import problems
from service.api.params import (
    MAX_PARTY_LENGTH,
    CursorQuery,
    MessageIdPath,
    PartyPath,
    TypeQuery,
)
from service.exchange import inbox
from service.exchange.inbound import INLINE_LIMIT
from service.exchange.outbound import OutboundRequest, RequeueUnit, queue_outbound
from service.protocol.envelope import (
    AGREEMENT_RE,
    MAX_TYPE_LENGTH,
    PARTY_RE,
    PURPOSE_RE,
    TYPE_RE,
    UUID_RE,
)
from service.protocol.problems import Problem
from service.runtime import Node
from service.witness.intake import proof_text
from service.witness.tlogproof import FILE_EXTENSION
from service.witness.tlogproof import MEDIA_TYPE as TLOG_PROOF_MEDIA_TYPE

# Each operation's id is its function's name (`submit`, `read_inbox`, ...): the names a
# client generated from /openapi.json gives its methods (docs/client-api.md).
router = APIRouter(prefix="/v1", tags=["local"], generate_unique_id_function=lambda r: r.name)


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

    # The envelope's own patterns (docs/protocol.md section 3): a value that could not
    # be signed is refused here, before it reaches the database or the audit log.
    to: str = Field(pattern=PARTY_RE, max_length=MAX_PARTY_LENGTH)
    type: str = Field(pattern=TYPE_RE, max_length=MAX_TYPE_LENGTH)
    agreement: str = Field(pattern=AGREEMENT_RE, max_length=64)
    purpose: str = Field(pattern=PURPOSE_RE, max_length=64)
    body: dict[str, Any]
    reply_to: str | None = Field(default=None, pattern=UUID_RE, max_length=36)


OUTBOX_PATH = "/v1/outbox"


@router.post(
    "/outbox",
    summary="Sign and queue a message to a partner",
    status_code=202,
    response_model=Accepted,
    responses=problems(401, 403, 408, 413, 415, 422, 503),
)
async def submit(
    item: OutboundIn, node: NodeDep, who: ClientDep, request: Request, response: Response
) -> Accepted:
    accepted = await queue_item(item, node, request)
    response.headers["Location"] = accepted.status_url
    return accepted


async def queue_item(item: OutboundIn, node: Node, request: Request) -> Accepted:
    """Sign and queue `item` for a client (its `Location` is the answer's `status_url`).
    Also called past the router, for a request whose every check passed (api/fastlane.py)."""
    req = OutboundRequest(
        item.to, item.type, item.agreement, item.purpose, item.body, item.reply_to
    )
    # A small record is checked and signed at once; a large one (statistics) in a
    # thread, so that it does not hold up other requests.
    declared = content_length(request.scope)
    inline = declared is not None and declared <= INLINE_LIMIT
    store = node.store if item.body.get("attachments") else None
    queued = await queue_outbound(
        node.outbound,
        node.committer,
        req,
        node.clock(),
        inline=inline,
        store=store,
        courier=node.delivery,
    )
    request.state.message_id = queued.message_id
    if node.delivery is not None and not queued.handed:
        # A message handed to the worker is leased to it already: a claim would find nothing.
        node.delivery.wake()
    return Accepted(
        id=queued.message_id,
        status="queued",
        status_url=f"{OUTBOX_PATH}/{queued.message_id}",
        audit_index=queued.audit_index,
        removed_fields=queued.removed,
    )


@router.get(
    "/outbox/{message_id}",
    summary="Status of an outbound message: attempts, the partner's receipt, replies",
    response_model=OutboundStatus,
    responses=problems(401, 403, 404, 422, 503),
)
async def outbound_status(
    message_id: MessageIdPath, node: NodeDep, who: ClientDep
) -> dict[str, Any]:
    return await read(node, lambda conn: inbox.outbound_status(conn, node.party, message_id))


class TlogProofResponse(PlainTextResponse):
    """A C2SP tlog-proof file: its own media type, so /openapi.json names only that one."""

    media_type = TLOG_PROOF_MEDIA_TYPE


@router.get(
    "/outbox/{message_id}/proof",
    summary="The partner's proof that it logged a delivered message (C2SP tlog-proof)",
    response_class=TlogProofResponse,
    responses={
        200: {
            "description": "Success",
            "content": {TLOG_PROOF_MEDIA_TYPE: {"example": ex.PROOF_EXAMPLE}},
        },
        **problems(401, 403, 404, 422, 503),
    },
)
async def outbound_proof(
    message_id: MessageIdPath, node: NodeDep, who: ClientDep
) -> TlogProofResponse:
    def proof(conn: Connection) -> str | None:
        inbox.outbound_status(conn, node.party, message_id)  # 404 for an unknown message
        return proof_text(conn, node.party, message_id)

    text = await read(node, proof)
    if text is None:
        raise Problem("not-found", f"no delivery proof for message {message_id} yet")
    return TlogProofResponse(
        text,
        headers={"Content-Disposition": f'attachment; filename="{message_id}{FILE_EXTENSION}"'},
    )


@router.get(
    "/inbox",
    summary="Accepted inbound messages, oldest first",
    response_model=InboxPage,
    responses=problems(401, 403, 422, 503),
)
async def read_inbox(
    node: NodeDep,
    who: ClientDep,
    type: TypeQuery = None,
    unacked: bool = False,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> InboxPage:
    items, next_cursor = await read(
        node,
        lambda conn: inbox.inbox_page(
            conn, msg_type=type, unacked=unacked, after=cursor, limit=limit, bodies=node.bodies
        ),
    )
    return InboxPage.model_validate({"messages": items, "next_cursor": next_cursor})


@router.post(
    "/inbox/{sender}/{message_id}/ack",
    summary="Acknowledge an inbound message",
    response_model=Acknowledged,
    responses=problems(401, 403, 404, 422, 503),
)
async def acknowledge(
    sender: PartyPath, message_id: MessageIdPath, node: NodeDep, who: ClientDep
) -> Acknowledged:
    changed = await node.committer.run(inbox.AckUnit(sender, message_id, who.name))
    return Acknowledged(id=message_id, sender=sender, acked=True, changed=changed)


@router.get(
    "/operator/outbox",
    summary="Outbound messages by delivery state (operators)",
    response_model=OperatorOutbox,
    responses=problems(401, 403, 422, 503),
)
async def operator_outbox(
    node: NodeDep,
    who: OperatorDep,
    state: Annotated[OutboxState, Query()] = "failed",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> OperatorOutbox:
    rows = await read(node, lambda conn: inbox.outbox_by_state(conn, state, limit))
    return OperatorOutbox.model_validate({"state": state, "messages": rows})


@router.post(
    "/operator/outbox/{message_id}/retry",
    summary="Queue a failed message for delivery again (operators)",
    response_model=Requeued,
    responses=problems(401, 403, 404, 422, 503),
)
async def operator_retry(message_id: MessageIdPath, node: NodeDep, who: OperatorDep) -> Requeued:
    await node.committer.run(RequeueUnit(node.party, message_id, who.name))
    if node.delivery is not None:
        node.delivery.wake()
    return Requeued(id=message_id, status="queued")
