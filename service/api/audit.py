"""The auditors' API (docs/protocol.md section 8). Every call is itself appended to the log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlalchemy import Connection

from service.api import examples as ex
from service.api.deps import AuditorDep, NodeDep, read
from service.api.models import ConsistencyProof, EntriesPage, InclusionProof, SearchPage
from service.api.openapi import problems
from service.api.params import (
    SAFE_INT,
    CursorQuery,
    EventQuery,
    MessageIdQuery,
    OutcomeQuery,
    PartyQuery,
    TypeQuery,
)
from service.audit import queries, store
from service.audit.querylog import record_query
from service.protocol.b64 import b64_encode
from service.protocol.problems import Problem
from service.witness import store as witness_store
from service.witness.status import cosigned_checkpoint

router = APIRouter(prefix="/v1/audit", tags=["audit"])

# A log's origin line as this node accepts it in a query: printable ASCII, no space at
# either end (C2SP tlog-checkpoint).
ORIGIN_RE = r"^[!-~](?:[ -~]*[!-~])?$"

_AUTH = problems(401, 403, 422, 503)


def _size(conn: Connection) -> int:
    return store.read_head(conn).size


@router.get(
    "/checkpoint",
    summary="Latest signed tree head, with its witnesses' cosignatures",
    description=(
        "A C2SP tlog-checkpoint signed note: origin `migex/<party>`, size, base64 root, the "
        "node's signature and every cosignature gathered from its witnesses. `size` asks for "
        "the checkpoint of that size; `witnessed=true` for the newest that meets the node's "
        "witness policy."
    ),
    response_class=PlainTextResponse,
    responses={
        200: {
            "content": {
                "text/plain": {"example": "migex/KZ:MIA\n12\nAbC...=\n\n— migex/KZ:MIA ...\n"}
            }
        },
        **_AUTH,
        **problems(404),
    },
)
async def get_checkpoint(
    node: NodeDep,
    who: AuditorDep,
    size: Annotated[int | None, Query(ge=1, le=SAFE_INT)] = None,
    witnessed: bool = False,
) -> PlainTextResponse:
    await record_query(
        node.committer, who.name, "checkpoint", size=size, witnessed=witnessed or None
    )

    note = await read(
        node,
        lambda conn: cosigned_checkpoint(conn, node.witnessing, size=size, witnessed=witnessed),
    )
    if note is None and size is not None:
        raise Problem("not-found", f"no checkpoint of size {size} has been issued")
    if note is None and witnessed:
        detail = "no checkpoint meets the witness policy yet"
        if node.witnessing is None:
            detail = "this node has no witness policy (witnessed_by)"
        raise Problem("not-found", detail)
    if note is None:
        raise Problem(
            "unavailable", "no checkpoint has been issued yet", headers={"Retry-After": "1"}
        )
    return PlainTextResponse(note)


@router.get(
    "/witnessed",
    summary="As a witness: the latest checkpoint this node cosigned for a log",
    description=(
        "The checkpoint note of the log `origin` (e.g. `migex/UZ:MIA`) as the log submitted "
        "it, with this node's cosignature. An auditor of that log checks its export against "
        "it with `migex audit verify --cosigned`: a log rewritten since cannot match."
    ),
    response_class=PlainTextResponse,
    responses={
        200: {
            "content": {
                "text/plain": {"example": "migex/UZ:MIA\n12\nAbC...=\n\n— migex/UZ:MIA ...\n"}
            }
        },
        **_AUTH,
        **problems(404),
    },
)
async def get_witnessed(
    node: NodeDep,
    who: AuditorDep,
    origin: Annotated[str, Query(pattern=ORIGIN_RE, max_length=255)],
) -> PlainTextResponse:
    await record_query(node.committer, who.name, "witnessed", origin=origin)

    def latest_note(conn: Connection) -> str | None:
        latest = witness_store.read_latest(conn, origin)
        return None if latest is None or not latest.note else latest.note

    note = await read(node, latest_note)
    if note is None:
        raise Problem("not-found", f"this node has cosigned no checkpoint of {origin!r}")
    return PlainTextResponse(note)


@router.get(
    "/entries",
    summary="A page of entries [start, end)",
    description="At most `audit.page_size` entries per call; `leaf_data` is exactly the hashed bytes.",
    response_model=EntriesPage,
    responses=_AUTH,
)
async def get_entries(
    node: NodeDep,
    who: AuditorDep,
    start: Annotated[int, Query(ge=0, le=SAFE_INT)],
    end: Annotated[int, Query(ge=1, le=SAFE_INT)],
) -> EntriesPage:
    await record_query(node.committer, who.name, "entries", start=start, end=end)
    size = await read(node, _size)
    if not start < end <= size:
        raise Problem("invalid-parameters", f"need 0 <= start < end <= {size} (the tree size)")
    stop = min(end, start + node.config.audit.page_size)

    entries = await read(node, lambda conn: queries.page(conn, start, stop))
    return EntriesPage.model_validate({"entries": entries})


@router.get(
    "/proofs/inclusion",
    summary="RFC 9162 inclusion proof",
    description="The audit path of entry `index` in the tree of `size` entries, leaf to root, standard base64.",
    response_model=InclusionProof,
    responses=_AUTH,
)
async def get_inclusion(
    node: NodeDep,
    who: AuditorDep,
    index: Annotated[int, Query(ge=0, le=SAFE_INT)],
    size: Annotated[int, Query(ge=1, le=SAFE_INT)],
) -> InclusionProof:
    await record_query(node.committer, who.name, "proofs/inclusion", index=index, size=size)

    def prove(conn: Connection) -> list[bytes]:
        current = store.read_head(conn).size
        if not index < size <= current:
            raise Problem(
                "invalid-parameters", f"need 0 <= index < size <= {current} (the tree size)"
            )
        return store.inclusion_proof(conn, index, size)

    hashes = await read(node, prove)
    return InclusionProof(index=index, size=size, hashes=[b64_encode(h) for h in hashes])


@router.get(
    "/proofs/consistency",
    summary="RFC 9162 consistency proof",
    description="Proves the tree of `to` entries extends the tree of `from` entries (1 <= from <= to).",
    response_model=ConsistencyProof,
    responses=_AUTH,
)
async def get_consistency(
    node: NodeDep,
    who: AuditorDep,
    from_: Annotated[int, Query(alias="from", ge=1, le=SAFE_INT)],
    to: Annotated[int, Query(ge=1, le=SAFE_INT)],
) -> ConsistencyProof:
    await record_query(node.committer, who.name, "proofs/consistency", **{"from": from_, "to": to})

    def prove(conn: Connection) -> list[bytes]:
        current = store.read_head(conn).size
        if not from_ <= to <= current:
            raise Problem(
                "invalid-parameters", f"need 1 <= from <= to <= {current} (the tree size)"
            )
        return store.consistency_proof(conn, from_, to)

    hashes = await read(node, prove)
    return ConsistencyProof(from_=from_, to=to, hashes=[b64_encode(h) for h in hashes])


@router.get(
    "/search",
    summary="Search entries, newest first",
    description="Filters combine with AND. `since`/`until` are Unix seconds. Pass `next_cursor` as `cursor` for older entries.",
    response_model=SearchPage,
    responses=_AUTH,
)
async def search(
    node: NodeDep,
    who: AuditorDep,
    party: PartyQuery = None,
    type: TypeQuery = None,
    outcome: OutcomeQuery = None,
    event: EventQuery = None,
    message_id: MessageIdQuery = None,
    since: Annotated[float | None, Query(ge=0, le=1e11)] = None,
    until: Annotated[float | None, Query(ge=0, le=1e11)] = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SearchPage:
    flt = queries.SearchFilter(party, type, outcome, event, message_id, since, until)
    await record_query(
        node.committer,
        who.name,
        "search",
        party=party,
        type=type,
        outcome=outcome,
        event=event,
        message_id=message_id,
        since=since,
        until=until,
        cursor=cursor,
    )

    items, next_cursor = await read(
        node, lambda conn: queries.search(conn, flt, limit=limit, before=cursor)
    )
    return SearchPage.model_validate({"entries": items, "next_cursor": next_cursor})


@router.get(
    "/export",
    summary="Export entries [start, end) as JSON Lines",
    description="Streams one entry a line in the format `migex audit verify` reads; `end` defaults to the tree size.",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "JSON Lines",
            "content": {"application/jsonl": {"example": ex.EXPORT_EXAMPLE}},
        },
        **_AUTH,
    },
)
async def export(
    node: NodeDep,
    who: AuditorDep,
    start: Annotated[int, Query(ge=0, le=SAFE_INT)] = 0,
    end: Annotated[int | None, Query(ge=1, le=SAFE_INT)] = None,
) -> StreamingResponse:
    await record_query(node.committer, who.name, "export", start=start, end=end)
    size = await read(node, _size)
    stop = size if end is None else end
    if not start <= stop <= size:
        raise Problem("invalid-parameters", f"need 0 <= start <= end <= {size} (the tree size)")
    return StreamingResponse(
        queries.export_lines(node.engines.reader, start, stop), media_type="application/jsonl"
    )
