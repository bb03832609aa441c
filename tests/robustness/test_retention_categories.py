"""Retention by category and agreement, and legal holds that suspend the purge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service import cli
from service.clock import FixedClock
from service.config import load_config
from service.config.build import retention_policy_from_config
from service.exchange.retention import DAY, PurgeReport, purge_sync
from service.main import create_app
from tests.robustness import ledger
from tests.robustness.test_retention import Running as RetentionRunning
from tests.support.nodes import NOW, OPERATOR_TOKEN, Federation, envelope_for, example_body

JOSE = {"Content-Type": "application/jose"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
CASE = "KG-SRS/2025/001873"  # the example verification request's case reference
OTHER_CASE = "KZ-MIA/2026/000042"


class Running(RetentionRunning):
    def receive(self, case: str | None = None, **kw: Any) -> str:  # type: ignore[override]
        if case is not None:
            body = example_body("citizenship.verification-request")
            kw["body"] = {**body, "case_reference": case}
        env = envelope_for(self.federation.uz, iat=int(self.clock()), **kw)
        resp = self.client.post("/v1/messages", content=self.federation.uz.sign(env), headers=JOSE)
        assert resp.status_code == 201, resp.text
        return env.id

    def receive_statistics(self) -> str:
        return self.receive(
            msg_type="statistics.migration-flows",
            purpose="statistics",
            body=example_body("statistics.migration-flows"),
        )

    def purge(self, days_later: float) -> PurgeReport:
        policy = retention_policy_from_config(self.node.config)
        return purge_sync(self.node.committer, now=NOW + days_later * DAY, policy=policy)

    def purged(self) -> dict[str, bool]:
        rows = ledger.stored_rows(self.node.engines.reader)
        return {r["message_id"]: r["purged_at"] is not None for r in rows}

    def hold(self, case: str, reason: str = "court order 2-117/2026") -> Any:
        return self.client.post(
            "/v1/operator/holds", json={"case_reference": case, "reason": reason}, headers=OPERATOR
        )

    def release(self, case: str) -> Any:
        return self.client.post(
            "/v1/operator/holds/release", json={"case_reference": case}, headers=OPERATOR
        )


def _start(federation: Federation, clock: FixedClock, retention: dict[str, Any]) -> TestClient:
    def mutate(cfg: dict[str, Any]) -> None:
        cfg["retention"] = retention

    federation.mutate = mutate
    app = create_app(load_config(federation.write_config()), clock=clock, run_delivery=False)
    return TestClient(app, raise_server_exceptions=False)


RETENTION = {"message_body_days": 365, "categories": {"statistics": 30}}


@pytest.fixture
def running(federation: Federation, clock: FixedClock) -> Iterator[Running]:
    with _start(federation, clock, RETENTION) as client:
        yield Running(client, federation, clock)


def test_each_category_is_purged_after_its_own_period_and_reported(running: Running) -> None:
    statistics = running.receive_statistics()
    request = running.receive()

    report = running.purge(100)

    assert running.purged() == {statistics: True, request: False}
    assert report.as_dict()["categories"]["statistics"] == {
        "days": 30,
        "purged": 1,
        "inbound": 1,
        "outbound": 0,
        "held": 0,
    }
    assert report.categories["citizenship-checks"].days == 365
    purges = [
        e["detail"]
        for e in ledger.entries(running.node.engines.reader)
        if e["event"] == "retention.purge"
    ]
    assert [(d["category"], d["count"]) for d in purges] == [("statistics", 1)]
    assert running.purge(400).categories["citizenship-checks"].inbound == 1
    assert running.purged() == {statistics: True, request: True}


def test_an_agreement_period_overrides_the_category_period(
    federation: Federation, clock: FixedClock
) -> None:
    retention = {
        **RETENTION,
        "agreements": [{"agreement": "kz-uz-2019", "categories": {"citizenship-checks": 10}}],
    }
    with _start(federation, clock, retention) as client:
        running = Running(client, federation, clock)
        request = running.receive()
        statistics = running.receive_statistics()
        report = running.purge(20)
        purges = [
            e["detail"]
            for e in ledger.entries(running.node.engines.reader)
            if e["event"] == "retention.purge"
        ]
        purged = running.purged()
    assert purged == {request: True, statistics: False}
    assert report.categories["citizenship-checks"].inbound == 1
    assert [(d["category"], d.get("agreement")) for d in purges] == [
        ("citizenship-checks", "kz-uz-2019")
    ]


def test_a_legal_hold_survives_a_purge_run_until_released(running: Running) -> None:
    held = running.receive(CASE)
    free = running.receive(OTHER_CASE)
    placed = running.hold(CASE)
    assert placed.status_code == 201, placed.text

    report = running.purge(400)

    assert running.purged() == {held: False, free: True}
    assert (report.categories["citizenship-checks"].held, report.held) == (1, 1)
    released = running.release(CASE)
    assert released.status_code == 200, released.text
    again = running.purge(400)
    assert (again.count, again.held) == (1, 0)
    assert running.purged() == {held: True, free: True}


def test_a_message_answering_a_held_message_is_held_too(running: Running) -> None:
    request = running.receive(CASE)
    running.hold(CASE)
    # A UZ message replying to nothing of ours is refused; a later message of the same
    # exchange carrying no case reference is linked through reply_to.
    body = example_body("citizenship.verification-request")
    body = {k: v for k, v in body.items() if k != "case_reference"}
    follow_up = running.receive(body=body, reply_to=request)
    unrelated = running.receive(body=body)

    running.purge(400)

    assert running.purged() == {request: False, follow_up: False, unrelated: True}


def test_placing_and_releasing_a_hold_is_audited_without_the_reference_or_reason(
    running: Running,
) -> None:
    running.hold(CASE, reason="prosecutor's request about Zhaksybekova")
    running.release(CASE)
    entries = [
        e
        for e in ledger.entries(running.node.engines.reader)
        if e["event"].startswith("retention.hold")
    ]
    assert [(e["event"], e["outcome"]) for e in entries] == [
        ("retention.hold-placed", "placed"),
        ("retention.hold-released", "released"),
    ]
    text = json.dumps(entries)
    assert CASE not in text
    assert "Zhaksybekova" not in text
    assert {e["detail"]["operator"] for e in entries} == {"operator-1"}
    assert len({e["detail"]["case_digest"] for e in entries}) == 1


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_holds_are_listed_and_bad_changes_refused(running: Running) -> None:
    assert running.hold(CASE).status_code == 201
    twice = running.hold(CASE)
    no_reason = running.hold(OTHER_CASE, reason=" ")
    two_lines = running.hold("A\nB")
    unknown = running.release(OTHER_CASE)
    listed = running.client.get("/v1/operator/holds", headers=OPERATOR).json()["holds"]
    assert [(r.status_code, r.json()["code"]) for r in (twice, no_reason, two_lines, unknown)] == [
        (422, "invalid-parameters"),
        (422, "invalid-parameters"),
        (422, "invalid-parameters"),
        (404, "not-found"),
    ]
    assert [(h["case_reference"], h["placed_by"]) for h in listed] == [(CASE, "operator-1")]


@SQLITE_ONLY
def test_the_cli_places_lists_and_releases_holds_and_purges_around_them(
    federation: Federation, clock: FixedClock
) -> None:
    # A period of one day: the fixed clock's message is past it by the real clock.
    with _start(federation, clock, {"message_body_days": 1}) as client:
        held = Running(client, federation, clock).receive(CASE)
    config = str(federation.tmp / "kz.yaml")
    runner = CliRunner()

    placed = runner.invoke(
        cli.app, ["retention", "hold", "-c", config, "--case", CASE, "--reason", "court order"]
    )
    listed = runner.invoke(cli.app, ["retention", "holds", "-c", config])
    purged = runner.invoke(cli.app, ["retention", "purge", "-c", config])
    released = runner.invoke(cli.app, ["retention", "release", "-c", config, "--case", CASE])
    again = runner.invoke(cli.app, ["retention", "release", "-c", config, "--case", CASE])

    assert placed.exit_code == 0, placed.output
    assert json.loads(placed.stdout)["active"] is True
    assert [h["case_reference"] for h in json.loads(listed.stdout)["holds"]] == [CASE]
    report = json.loads(purged.stdout)
    assert (report["purged"], report["held"]) == (0, 1), report
    assert report["categories"]["citizenship-checks"]["held"] == 1
    assert released.exit_code == 0, released.output
    assert (again.exit_code, "no active legal hold" in again.output) == (1, True)
    assert held


@SQLITE_ONLY
@pytest.mark.parametrize(
    "text",
    [
        '{"case_reference": "\\ud800", "reason": "court order"}',
        '{"case_reference": "KZ-1", "reason": "court \\udfff order"}',
    ],
)
def test_a_lone_surrogate_in_a_hold_is_refused_as_invalid(running: Running, text: str) -> None:
    resp = running.client.post(
        "/v1/operator/holds",
        content=text,
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    assert (resp.status_code, resp.json()["code"]) == (422, "invalid-parameters")
