"""POST /v1/messages: receive a signed message from a partner node."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from service.api.deps import bearer_token
from service.api.errors import BodyRefused
from service.api.openapi import problems
from service.api.uploads import AwaitingAttachments, awaiting_answer, awaiting_unit
from service.attachments.limits import MEMBER as ATTACHMENTS
from service.exchange.awaiting import Awaiting, Unvalidated
from service.exchange.inbound import (
    INLINE_LIMIT,
    AcceptUnit,
    Checked,
    Facts,
    Refused,
    check_inbound,
    validate_checked,
)
from service.exchange.refusals import refusal_unit
from service.protocol.mediatypes import JOSE, essence
from service.protocol.problems import Problem
from service.runtime import Node

router = APIRouter(tags=["exchange"])
MESSAGES_PATH = "/v1/messages"


async def read_body(request: Request) -> bytes:
    """The whole body, read through the node's one body limiter (`api.errors.BodyLimit`),
    whose refusal becomes this route's problem so that it can be audited."""
    try:
        return await request.body()
    except BodyRefused as refused:
        raise refused.problem() from None


async def _record_refusal(request: Request, node: Node, facts: Facts, problem: Problem) -> None:
    """Record a refusal under its source's logging rate (docs/protocol.md, clarification 3)."""
    client = request.client
    source = node.sources.source(
        client.host if client else None, request.headers.getlist("x-forwarded-for")
    )
    if await node.committer.run(refusal_unit(facts, problem, source, node.refusal_limits)) is None:
        node.metrics.observe_unlogged_refusal(problem.code)


@router.post(
    MESSAGES_PATH,
    summary="Receive a signed message",
    description=(
        "A JWS in compact serialization (docs/protocol.md section 2) with "
        "`Content-Type: application/jose`. Answers 201 with a signed receipt, 200 with the "
        "original receipt for a re-delivery of the same bytes, or a problem document. "
        "A message naming attachments is answered 202 until its files are stored; its "
        "completion post may carry `Authorization: Bearer <upload_token>` (protocol v1.1, "
        "'The transfer', step 5)."
    ),
    status_code=201,
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JOSE: {
                    "schema": {
                        "type": "string",
                        "pattern": r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
                    },
                    "example": "eyJhbGciOiJFZDI1NTE5Iiwia2lkIjoiVVo6TUlBIzIwMjYtMDEiLCJ0eXAiOiJtaWdleCtqd3MifQ.eyJ2IjoxfQ.c2ln",
                }
            },
        }
    },
    responses={
        201: {
            "description": "Accepted: the signed receipt",
            "content": {JOSE: {"schema": {"type": "string"}}},
        },
        200: {
            "description": "Already received: the original receipt",
            "content": {JOSE: {"schema": {"type": "string"}}},
        },
        202: {
            "description": "Verified; awaiting its attachments (protocol v1.1)",
            "model": AwaitingAttachments,
        },
        **problems(400, 401, 403, 409, 410, 413, 415, 422, 429, 503),
    },
)
async def receive_message(request: Request) -> Response:
    # The node is taken from the app's state, not through a dependency: this route
    # takes every partner's traffic, and resolving a dependency costs it about 5 %.
    node: Node = request.app.state.node
    try:
        raw = await read_body(request)
        if essence(request.headers.get("content-type")) != JOSE:
            raise Problem("unsupported-media-type", f"send the JWS as {JOSE}")
    except Problem as problem:
        await _record_refusal(request, node, Facts(digest=None), problem)
        raise
    now = node.clock()
    # A completion post (it carries an upload token) is validated only if its bytes turn
    # out not to be those awaiting: they were validated when first posted.
    # (`Authorization: Bearer <upload_token>`, docs/protocol.md 'The transfer', step 5)
    token = bearer_token(request)
    try:
        if len(raw) > INLINE_LIMIT:
            checked = await run_in_threadpool(
                functools.partial(check_inbound, validate=token is None), node.policy, raw, now
            )
        else:
            checked = check_inbound(node.policy, raw, now, validate=token is None)
    except Refused as refused:
        if refused.facts.authentic and refused.facts.env is not None:
            request.state.message_id = refused.facts.env.id
            request.state.partner = refused.facts.env.iss
        await _record_refusal(request, node, refused.facts, refused.problem)
        raise refused.problem from None
    request.state.message_id = checked.env.id
    request.state.partner = checked.env.iss
    if checked.env.body.get(ATTACHMENTS):
        answer = await _with_attachments(node, checked, raw, token)
        if isinstance(answer, Response):
            return answer
        checked = answer
    if not checked.validated and checked.stale_problem is None:
        checked = await _validated(node, checked)
    stored = await node.committer.run(AcceptUnit(checked, node.signer))
    return Response(
        content=stored.receipt,
        status_code=201 if stored.created else 200,
        media_type=JOSE,
    )


async def _validated(node: Node, checked: Checked) -> Checked:
    """`checked` with its body validated (a large body off the event loop)."""
    if len(checked.raw) > INLINE_LIMIT:
        return await run_in_threadpool(validate_checked, node.policy, checked)
    return validate_checked(node.policy, checked)


async def _with_attachments(
    node: Node, checked: Checked, raw: bytes, token: str | None
) -> Response | Checked:
    """A message naming attachments (protocol v1.1): 202 until its files are stored,
    then accepted as any other (docs/protocol.md, 'The transfer'). A Checked: answer it
    as any message (a schema refusal, or a stale message whose checks fail at its `iat`).

    Uploading large files may take longer than the clock skew, so a message that was
    verified within the skew and awaits its files is not refused as stale when its
    bytes come back: its checks are run as of its own `iat`, and the unit refuses it as
    stale only if it is not awaiting.

    A post with an upload `token` comes unvalidated: the unit takes it as it is if its
    pending row holds these bytes under that token, and otherwise (`Unvalidated`) it is
    validated and the unit runs again."""
    stale = checked.stale_problem
    original = checked
    if stale is not None:
        try:
            checked = await run_in_threadpool(
                functools.partial(check_inbound, validate=token is None),
                node.policy,
                raw,
                float(checked.env.iat),
            )
        except Refused:
            return original
    if checked.schema_problem is not None:
        # Stale and failing the schema: refused as stale, the check that comes first
        # (such bytes never awaited their files: their first post was refused).
        return original if stale is not None else checked

    answer = await node.committer.run(awaiting_unit(node, checked, stale=stale, token=token))
    if isinstance(answer, Unvalidated):
        checked = await _validated(node, checked)
        if checked.schema_problem is not None:
            return original if stale is not None else checked
        answer = await node.committer.run(awaiting_unit(node, checked, stale=stale, token=token))
    if isinstance(answer, Unvalidated):  # pragma: no cover - a validated post is taken
        raise RuntimeError("the unit asked to validate a validated message")
    if isinstance(answer, Awaiting):
        return await awaiting_answer(node, checked.env.iss, checked.env.id, answer)
    return Response(
        content=answer.receipt, status_code=201 if answer.created else 200, media_type=JOSE
    )
