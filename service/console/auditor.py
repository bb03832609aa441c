"""The auditors' pages: overview, log search, entry with its proof, checkpoints, export.

Each page reads through the audit package's own queries and records the same
`audit.query` entry as the API call it stands for (docs/auditors.md), with
`via: console`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import Connection

from service.api.deps import NodeDep, read
from service.api.params import (
    EVENT_RE,
    MAX_EVENT_LENGTH,
    MAX_OUTCOME_LENGTH,
    MAX_PARTY_LENGTH,
    OUTCOME_RE,
    SAFE_INT,
)
from service.audit import merkle, queries, store
from service.audit.querylog import record_query
from service.console import charts, daily
from service.console import queries as console_queries
from service.console.web import AuditorPage, Refused, render
from service.protocol.b64 import b64_encode
from service.protocol.envelope import MAX_TYPE_LENGTH, PARTY_RE, TYPE_RE, UUID_RE
from service.witness import store as witness_store
from service.witness.status import Witnessing, newest_met, unwitnessed_since

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 50
OVERVIEW_DAYS = 14
DAY = 86400

# The search filters, each with the API's own pattern and length (service/api/params.py).
FILTERS: dict[str, tuple[str, int]] = {
    "party": (PARTY_RE, MAX_PARTY_LENGTH),
    "type": (TYPE_RE, MAX_TYPE_LENGTH),
    "outcome": (OUTCOME_RE, MAX_OUTCOME_LENGTH),
    "event": (EVENT_RE, MAX_EVENT_LENGTH),
    "message_id": (UUID_RE, 36),
}


def _via(**params: Any) -> dict[str, Any]:
    return {"via": "console", **params}


@router.get("/overview")
async def overview(request: Request, node: NodeDep, who: AuditorPage) -> Response:
    await record_query(node.committer, who.name, "console/overview", **_via())
    now = node.clock()
    first_day = int(now // DAY) - OVERVIEW_DAYS + 1
    window = [first_day + i for i in range(OVERVIEW_DAYS)]

    def gather(conn: Connection) -> dict[str, Any]:
        counts, to_keep = daily.gather(conn, window, now)
        return {
            "summary": daily.summarise(counts),
            "to_keep": to_keep,
            "head": store.read_head(conn),
            "checkpoint": console_queries.latest_checkpoint(conn),
            "witness": witness_state(conn, node.witnessing),
        }

    data = await read(node, gather)
    if data["to_keep"]:
        await node.committer.run(daily.KeepDays(data["to_keep"]))
    summary: daily.Summary = data["summary"]
    days = [_day(first_day + i) for i in range(OVERVIEW_DAYS)]
    series = sorted({f"{r['partner']} {_arrow(r['direction'])}" for r in summary.per_day})
    values: dict[tuple[str, str], int] = {}
    for r in summary.per_day:
        key = (_day(r["day"]), f"{r['partner']} {_arrow(r['direction'])}")
        values[key] = values.get(key, 0) + r["count"]
    return render(
        request,
        "overview.html",
        {
            "days": OVERVIEW_DAYS,
            "per_day": charts.stacked_columns(days, series, values),
            "by_type": charts.horizontal(summary.by_type),
            "refusals": charts.horizontal(summary.refusals),
            "latency": charts.horizontal(summary.latency),
            "head": data["head"],
            "checkpoint": data["checkpoint"],
            "total_messages": sum(values.values()),
            "witness": data["witness"],
            "now": now,
        },
        who=who,
    )


def witness_state(conn: Connection, witnessing: Witnessing | None) -> dict[str, Any]:
    """The witnessing of this node's log (its policy, the newest checkpoint meeting it,
    each witness's last cosignature and failures) and the logs this node witnesses."""
    state: dict[str, Any] = {
        "policy": witnessing is not None,
        "logs": witness_store.log_states(conn),
    }
    if witnessing is None:
        return state
    found = newest_met(conn, witnessing)
    met = None if found is None else found[0]
    state["met"] = met
    state["waiting_since"] = unwitnessed_since(conn, met)
    state["peers"] = [
        (witnessing.names[ident], peer)
        for ident, peer in sorted(witness_store.read_peers(conn).items())
        if ident in witnessing.names
    ]
    return state


def _day(day: int) -> str:
    return datetime.fromtimestamp(day * DAY, tz=UTC).strftime("%Y-%m-%d")


def _arrow(direction: str) -> str:
    return "→" if direction == "out" else "←"


def _time_param(value: str) -> float | None:
    """A date or date-time from the form (UTC) as Unix seconds; ValueError if malformed."""
    if not value:
        return None
    if len(value) > 32:
        raise ValueError(value)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    seconds = parsed.timestamp()
    if not 0 <= seconds <= 1e11:
        raise ValueError(value)
    return seconds


def search_filter(params: dict[str, str]) -> tuple[queries.SearchFilter, list[str]]:
    """The filter of the log search form; names of the fields that are malformed."""
    bad: list[str] = []
    values: dict[str, Any] = {}
    for name, (pattern, length) in FILTERS.items():
        value = params.get(name, "").strip()
        if value and (len(value) > length or re.fullmatch(pattern, value) is None):
            bad.append(name)
        values[name] = value or None
    for name in ("since", "until"):
        try:
            values[name] = _time_param(params.get(name, "").strip())
        except ValueError:
            bad.append(name)
            values[name] = None
    return queries.SearchFilter(**values), bad


def _cursor(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) > SAFE_INT:
        raise Refused(422, "invalid-parameters", "cursor")
    return int(value)


@router.get("/log")
async def log(request: Request, node: NodeDep, who: AuditorPage) -> Response:
    params = {k: v for k, v in request.query_params.items() if k in (*FILTERS, "since", "until")}
    flt, bad = search_filter(params)
    cursor = _cursor(request.query_params.get("cursor"))
    items: list[dict[str, Any]] = []
    next_cursor = None
    if not bad:
        await record_query(
            node.committer,
            who.name,
            "search",
            **_via(**{k: v for k, v in vars(flt).items() if v is not None}, cursor=cursor),
        )
        items, next_cursor = await read(
            node, lambda conn: queries.search(conn, flt, limit=PAGE_SIZE, before=cursor)
        )
    return render(
        request,
        "log.html",
        {
            "params": params,
            "bad": bad,
            "items": items,
            "next_cursor": next_cursor,
            "cursor": cursor,
        },
        status=422 if bad else 200,
        who=who,
    )


@router.get("/log/{index}")
async def entry(request: Request, node: NodeDep, who: AuditorPage, index: int) -> Response:
    if not 0 <= index <= SAFE_INT:
        raise Refused(422, "invalid-parameters", "index")
    await record_query(node.committer, who.name, "entries", **_via(start=index, end=index + 1))

    def gather(conn: Connection) -> dict[str, Any]:
        found = queries.page(conn, index, index + 1)
        checkpoint = console_queries.latest_checkpoint(conn)
        proof = None
        if found and checkpoint is not None and index < checkpoint.size:
            proof = store.inclusion_proof(conn, index, checkpoint.size)
        return {"found": found, "checkpoint": checkpoint, "proof": proof}

    data = await read(node, gather)
    if not data["found"]:
        raise Refused(404, "not-found", str(index))
    checkpoint = data["checkpoint"]
    if data["proof"] is not None:
        await record_query(
            node.committer, who.name, "proofs/inclusion", **_via(index=index, size=checkpoint.size)
        )
    item = data["found"][0]
    return render(
        request,
        "entry.html",
        {
            "item": item,
            "checkpoint": checkpoint,
            "root": None if checkpoint is None else b64_encode(checkpoint.root),
            "proof": None if data["proof"] is None else [b64_encode(h) for h in data["proof"]],
            "vkey": node.audit_vkey,
        },
        who=who,
    )


@router.get("/checkpoints")
async def checkpoints(request: Request, node: NodeDep, who: AuditorPage) -> Response:
    before = _cursor(request.query_params.get("before"))
    await record_query(node.committer, who.name, "console/checkpoints", **_via(before=before))
    rows = await read(
        node,
        lambda conn: console_queries.checkpoint_history(conn, limit=PAGE_SIZE + 1, before=before),
    )
    check = None
    old_text = request.query_params.get("from", "")
    new_text = request.query_params.get("to", "")
    if old_text or new_text:
        check = await _consistency(node, who, old_text, new_text)
    return render(
        request,
        "checkpoints.html",
        {
            "rows": rows[:PAGE_SIZE],
            "more": rows[PAGE_SIZE].size + 1 if len(rows) > PAGE_SIZE else None,
            "check": check,
            "from": old_text,
            "to": new_text,
            "b64": b64_encode,
        },
        who=who,
    )


async def _consistency(node: Any, who: Any, old_text: str, new_text: str) -> dict[str, Any]:
    """Whether the checkpoint of `to` entries extends the checkpoint of `from` entries."""
    if not (old_text.isdigit() and new_text.isdigit()):
        return {"ok": False, "reason": "sizes"}
    old, new = int(old_text), int(new_text)
    if not 1 <= old <= new <= SAFE_INT:
        return {"ok": False, "reason": "sizes"}
    await record_query(
        node.committer, who.name, "proofs/consistency", **_via(**{"from": old, "to": new})
    )

    def gather(conn: Connection) -> tuple[Any, Any, list[bytes] | None]:
        a = console_queries.checkpoint_at(conn, old)
        b = console_queries.checkpoint_at(conn, new)
        proof = None if a is None or b is None else store.consistency_proof(conn, old, new)
        return a, b, proof

    a, b, proof = await read(node, gather)
    if a is None or b is None or proof is None:
        return {"ok": False, "reason": "unknown", "old": old, "new": new}
    try:
        merkle.verify_consistency(old, new, a.root, b.root, proof)
    except merkle.ProofError as exc:
        return {"ok": False, "reason": "proof", "detail": str(exc), "old": old, "new": new}
    return {"ok": True, "old": old, "new": new, "hashes": len(proof)}


@router.get("/export")
async def export(request: Request, node: NodeDep, who: AuditorPage) -> Response:
    start = _cursor(request.query_params.get("start")) or 0
    end = _cursor(request.query_params.get("end"))
    await record_query(node.committer, who.name, "export", **_via(start=start, end=end))
    size = await read(node, lambda conn: store.read_head(conn).size)
    stop = size if end is None else end
    if not start <= stop <= size:
        raise Refused(422, "invalid-parameters", f"0 <= start <= end <= {size}")
    return StreamingResponse(
        queries.export_lines(node.engines.reader, start, stop),
        media_type="application/jsonl",
        headers={
            "content-disposition": f'attachment; filename="audit-{start}-{stop}.jsonl"',
            "cache-control": "no-store",
        },
    )
