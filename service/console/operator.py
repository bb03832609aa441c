"""The operators' pages: outbox by state with attempts, resend, inbox backlog,
partners with endpoint health, keys and rate-limit hits, agreements with their dates.

Reads go through `service.exchange.inbox` like the API's; a resend runs the API's own
`RequeueUnit`, which audits it (`message.requeued`, docs/auditors.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from service.api.deps import NodeDep, read
from service.api.tokens import Principal
from service.console import daily
from service.console import queries as console_queries
from service.console.web import CheckedForm, OperatorPage, Refused, render
from service.exchange import inbox
from service.exchange.outbound import RequeueUnit
from service.protocol.envelope import UUID_RE
from service.protocol.problems import Problem
from service.runtime import Node

router = APIRouter(prefix="/console", include_in_schema=False)

STATES = ("failed", "pending", "delivered")
PAGE_LIMIT = 200
COUNT_CAP = 10_000  # the state tabs count up to this, then say "10000+"
MAX_RESEND = 200
RATE_WINDOW_DAYS = 7
_KID_DATE = re.compile(r"#([0-9]{4})-([0-9]{2})(?:-([0-9]{2}))?$")


@router.get("/outbox")
async def outbox(request: Request, node: NodeDep, who: OperatorPage) -> Response:
    state = request.query_params.get("state", "failed")
    if state not in STATES:
        raise Refused(422, "invalid-parameters", "state")

    def gather(conn: Connection) -> dict[str, Any]:
        return {
            "rows": inbox.outbox_by_state(conn, state, PAGE_LIMIT),
            "counts": console_queries.outbox_counts(conn, STATES, cap=COUNT_CAP),
        }

    data = await read(node, gather)
    return render(
        request,
        "outbox.html",
        {"state": state, "states": STATES, "limit": PAGE_LIMIT, "cap": COUNT_CAP, **data},
        who=who,
    )


@router.get("/outbox/{message_id}")
async def outbox_message(
    request: Request, node: NodeDep, who: OperatorPage, message_id: str
) -> Response:
    if re.fullmatch(UUID_RE, message_id) is None:
        raise Refused(422, "invalid-parameters", "message_id")
    try:
        status = await read(node, lambda conn: inbox.outbound_status(conn, node.party, message_id))
    except Problem as problem:
        raise Refused(problem.status, problem.code, problem.detail) from None
    return render(request, "outbox_message.html", {"m": status}, who=who)


@router.post("/outbox/resend")
async def resend(request: Request, node: NodeDep, who: OperatorPage, form: CheckedForm) -> Response:
    ids = [v for v in form.getlist("id") if isinstance(v, str)]
    if not ids or len(ids) > MAX_RESEND or any(re.fullmatch(UUID_RE, i) is None for i in ids):
        raise Refused(422, "invalid-parameters", "id")
    results = await _resend(node, who, list(dict.fromkeys(ids)))
    return render(request, "resent.html", {"results": results}, who=who)


async def _resend(node: Node, who: Principal, ids: list[str]) -> list[tuple[str, str | None]]:
    """Queue each failed message again; per message, None or the refusal's detail."""
    results: list[tuple[str, str | None]] = []
    for message_id in ids:
        try:
            await node.committer.run(RequeueUnit(node.party, message_id, who.name))
        except Problem as problem:
            results.append((message_id, problem.detail))
        else:
            results.append((message_id, None))
    if node.delivery is not None and any(error is None for _, error in results):
        node.delivery.wake()
    return results


@router.get("/inbox")
async def inbox_backlog(request: Request, node: NodeDep, who: OperatorPage) -> Response:
    rows = await read(node, console_queries.inbox_backlog)
    return render(request, "inbox.html", {"rows": rows, "now": node.clock()}, who=who)


@dataclass(frozen=True)
class KeyView:
    owner: str
    kid: str
    status: str  # active, published, pinned, revoked, retired
    since: date | None
    rotate_by: date | None
    warning: str | None  # None, "soon" or "overdue"


def key_age(
    kid: str, today: date, rotation_days: int, warning_days: int
) -> tuple[date | None, date | None, str | None]:
    """A key's start (from the `#YYYY-MM[-DD]` of its kid), the day it should be rotated
    by, and whether that day is near ("soon") or past ("overdue")."""
    match = _KID_DATE.search(kid)
    if match is None:
        return None, None, None
    year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3) or 1)
    try:
        since = date(year, month, day)
    except ValueError:
        return None, None, None
    rotate_by = since + timedelta(days=rotation_days)
    if today >= rotate_by:
        return since, rotate_by, "overdue"
    if today >= rotate_by - timedelta(days=warning_days):
        return since, rotate_by, "soon"
    return since, rotate_by, None


def key_views(node: Node, today: date) -> list[KeyView]:
    cfg = node.config
    rotation, warning = cfg.console.key_rotation_days, cfg.console.key_warning_days
    published = set(cfg.effective_published_kids)
    views: list[KeyView] = []
    for key in cfg.node.signing_keys:
        if key.kid == cfg.node.active_kid:
            status = "active"
        elif key.kid in published:
            status = "published"
        else:
            status = "retired"
        since, by, warn = key_age(key.kid, today, rotation, warning)
        views.append(
            KeyView(node.party, key.kid, status, since, by, warn if status == "active" else None)
        )
    for partner in node.registry.partners():
        for kid, pkey in partner.keys.items():
            status = "revoked" if pkey.revoked else "pinned"
            since, by, warn = key_age(kid, today, rotation, warning)
            views.append(
                KeyView(partner.party, kid, status, since, by, None if pkey.revoked else warn)
            )
    return views


def agreement_state(in_force: date | None, ends: date | None, today: date) -> str:
    if in_force is None:
        return "pending"
    if today < in_force:
        return "not-yet"
    if ends is not None and today >= ends:
        return "ended"
    return "in-force"


@router.get("/partners")
async def partners(request: Request, node: NodeDep, who: OperatorPage) -> Response:
    now = node.clock()
    today = datetime.fromtimestamp(now, tz=UTC).date()
    since = now - RATE_WINDOW_DAYS * 86400
    # Endpoint health over the same number of days: today and the days before it.
    last_day = int(now // daily.DAY)
    window = list(range(last_day - RATE_WINDOW_DAYS + 1, last_day + 1))

    def gather(conn: Connection) -> dict[str, Any]:
        counts, to_keep = daily.gather(conn, window, now)
        return {
            "health": daily.summarise(counts).health,
            "to_keep": to_keep,
            "hits": {
                p: (n, last) for p, n, last in console_queries.rate_limit_hits(conn, since=since)
            },
        }

    data = await read(node, gather)
    if data["to_keep"]:
        await node.committer.run(daily.KeepDays(data["to_keep"]))
    agreements = [
        (a, agreement_state(a.in_force, a.ends, today))
        for a in sorted(node.registry.agreements.values(), key=lambda a: a.id)
    ]
    return render(
        request,
        "partners.html",
        {
            "partners": node.registry.partners(),
            "health": data["health"],
            "hits": data["hits"],
            "window_days": RATE_WINDOW_DAYS,
            "keys": key_views(node, today),
            "agreements": agreements,
            "rotation_days": node.config.console.key_rotation_days,
        },
        who=who,
    )
