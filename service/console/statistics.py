"""Received `statistics.migration-flows` datasets: list, table and chart, SDMX-CSV.

Bodies are read with `service.exchange.inbox.inbox_page`, the API's inbox read. The
datasets are aggregate counts (docs/records.md), shown to auditors and operators alike.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from service.api.deps import NodeDep, read
from service.api.params import MAX_PARTY_LENGTH, SAFE_INT
from service.console import charts, sdmxcsv
from service.console import queries as console_queries
from service.console.web import AnyPage, Refused, render
from service.exchange import inbox
from service.protocol.envelope import PARTY_RE, UUID_RE

router = APIRouter(prefix="/console", include_in_schema=False)

TYPE = "statistics.migration-flows"
PAGE_SIZE = 50


@router.get("/statistics")
async def datasets(request: Request, node: NodeDep, who: AnyPage) -> Response:
    before_text = request.query_params.get("before", "")
    if before_text and (not before_text.isdigit() or int(before_text) > SAFE_INT):
        raise Refused(422, "invalid-parameters", "before")
    before = int(before_text) if before_text else None
    rows = await read(
        node,
        lambda conn: console_queries.received_datasets(
            conn, TYPE, limit=PAGE_SIZE + 1, before=before
        ),
    )
    more = rows[PAGE_SIZE - 1].pk if len(rows) > PAGE_SIZE else None
    return render(request, "statistics.html", {"rows": rows[:PAGE_SIZE], "more": more}, who=who)


async def _dataset(node: Any, sender: str, message_id: str) -> dict[str, Any]:
    if (
        len(sender) > MAX_PARTY_LENGTH
        or re.fullmatch(PARTY_RE, sender) is None
        or re.fullmatch(UUID_RE, message_id) is None
    ):
        raise Refused(422, "invalid-parameters", "dataset")

    def find(conn: Connection) -> dict[str, Any] | None:
        key = console_queries.inbound_key(conn, sender, message_id, TYPE)
        if key is None:
            return None
        items, _ = inbox.inbox_page(
            conn, msg_type=TYPE, unacked=False, after=key - 1, limit=1, bodies=node.bodies
        )
        return items[0] if items else None

    item = await read(node, find)
    if item is None:
        raise Refused(404, "not-found", f"{sender} {message_id}")
    if item["body"] is None:
        raise Refused(410, "purged", message_id)
    found: dict[str, Any] = item
    return found


@router.get("/statistics/{sender}/{message_id}")
async def dataset(
    request: Request, node: NodeDep, who: AnyPage, sender: str, message_id: str
) -> Response:
    item = await _dataset(node, sender, message_id)
    periods, rows, cells = sdmxcsv.indicator_table(item["body"])
    by_row = [(" ".join(r), sum(cells.get((*r, p), 0) for p in periods)) for r in rows]
    return render(
        request,
        "dataset.html",
        {
            "item": item,
            "periods": periods,
            "rows": rows,
            "cells": cells,
            "chart": charts.horizontal(by_row),
        },
        who=who,
    )


@router.get("/statistics/{sender}/{message_id}/sdmx.csv")
async def dataset_csv(
    request: Request, node: NodeDep, who: AnyPage, sender: str, message_id: str
) -> Response:
    item = await _dataset(node, sender, message_id)
    return Response(
        sdmxcsv.sdmx_csv(item["body"]),
        media_type=sdmxcsv.MEDIA_TYPE,
        headers={
            "content-disposition": f'attachment; filename="{message_id}.csv"',
            "cache-control": "no-store",
        },
    )
