"""The overview's daily counts: a day is counted from its rows until it is over, then
once more and kept, and read back from then on (service/console/daily.py)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from service.clock import FixedClock
from service.console import daily
from service.db.tables import console_daily
from tests.console.conftest import GARBAGE, History, node_of, sign_in
from tests.support.nodes import AUDITOR_TOKEN

TOTAL = re.compile(r"Messages in the last 14 days</dt><dd>(\d+)</dd>")


def shown_total(client: TestClient) -> int:
    resp = client.get("/console/overview")
    assert resp.status_code == 200
    found = TOTAL.search(resp.text)
    assert found is not None
    return int(found.group(1))


def kept(client: TestClient) -> list[tuple[int, str, str, int]]:
    with node_of(client.app).engines.reader.connect() as conn:
        rows = conn.execute(select(console_daily).order_by(console_daily.c.metric))
        return [(int(r.day), str(r.metric), str(r.key), int(r.n)) for r in rows]


def test_a_day_is_kept_once_it_is_over_and_read_back_from_then_on(
    console_client: TestClient, history: History, clock: FixedClock
) -> None:
    sign_in(console_client, AUDITOR_TOKEN)
    day = int(clock() // daily.DAY)
    counted = shown_total(console_client)
    assert counted == len(history.received) + 1 + len(history.failed)
    before = kept(console_client)  # the 13 days before, over and empty, are kept
    assert sorted(d for d, _, _, _ in before) == list(range(day - 13, day))
    assert {metric for _, metric, _, _ in before} == {"done"}
    clock.set((day + 1) * daily.DAY + daily.GRACE)
    sign_in(console_client, AUDITOR_TOKEN)  # the session of the day before expired
    assert shown_total(console_client) == counted
    rows = kept(console_client)
    assert (day, "done", "", 0) in rows
    assert sum(n for d, metric, _, n in rows if d == day and metric == "messages") == counted
    assert sum(n for d, metric, _, n in rows if d == day and metric == "latency") == 0
    assert sum(n for d, m, _, n in rows if d == day and m == "refusals") == GARBAGE
    # Both outbound messages failed their one attempt to UZ:MIA (tests/console/conftest.py).
    assert [(m, k) for d, m, k, _ in rows if d == day and m.startswith("last-")] == [
        ("last-failed", "UZ:MIA")
    ]
    with node_of(console_client.app).engines.writer.begin() as conn:
        conn.execute(
            update(console_daily)
            .where(console_daily.c.metric == "messages")
            .values(n=console_daily.c.n + 1000)
        )
    groups = sum(1 for _, metric, _, _ in rows if metric == "messages")
    assert shown_total(console_client) == counted + 1000 * groups


def test_kept_counts_summarise_as_the_counted_ones(
    console_client: TestClient, history: History, clock: FixedClock
) -> None:
    node = node_of(console_client.app)
    day = int(clock() // daily.DAY)
    days = [day - 1, day]
    clock.set((day + 2) * daily.DAY)
    with node.engines.reader.connect() as conn:
        counted, to_keep = daily.gather(conn, days, clock())
    assert sorted(to_keep) == days
    node.committer.run_sync(daily.KeepDays(to_keep))
    with node.engines.reader.connect() as conn:
        read_back, again = daily.gather(conn, days, clock())
    assert again == {}
    assert daily.summarise(read_back) == daily.summarise(counted)
    assert daily.summarise(counted).per_day != []
    assert set(daily.summarise(counted).health) == {"UZ:MIA"}
