"""Four nodes (KZ, KG, UZ, TJ) as separate `migex serve` processes on loopback, each with
its own database and keys, configured with the docker/config files: the exchanges
the federation exists for, a partner outage, and the audit logs verified offline."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from service.audit.checkpoint import verify_checkpoint
from service.audit.offline import verify_export
from service.protocol import envelope, jws
from service.protocol.keys import public_key_from_jwk
from tests.e2e.federation import (
    NODES,
    PARTY,
    Agency,
    changed_lines,
    init_keys,
    local_config,
    node_env,
    only_addresses_and_timing_changed,
    running,
)
from tests.support.nodes import example_body
from tests.support.processes import NodeProcess, free_ports, poll

pytestmark = pytest.mark.slow

STATISTICS = "statistics.migration-flows"
EXPERIENCE = "experience.document"
RESPONSE_FIELDS = {"result", "checked_on", "matched_fields", "needed_fields", "person"}


@dataclass
class Nodes:
    tmp: Path
    processes: dict[str, NodeProcess]
    configs: dict[str, str]

    def __getitem__(self, name: str) -> Agency:
        return Agency(name, self.processes[name].url)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    tmp = tmp_path_factory.mktemp("federation")
    init_keys(tmp / "secrets", tmp / "public")
    ports = dict(zip(NODES, free_ports(len(NODES)), strict=True))
    processes: dict[str, NodeProcess] = {}
    configs: dict[str, str] = {}
    for name in NODES:
        configs[name] = local_config(name, ports, tmp / f"{name}.db")
        path = tmp / f"{name}.yaml"
        path.write_text(configs[name], "utf-8")
        processes[name] = NodeProcess(
            name, path, port=ports[name], env=node_env(tmp, name), log_dir=tmp / "logs"
        )
    with running(processes):
        yield Nodes(tmp, processes, configs)


def test_nodes_run_the_docker_configuration_with_only_addresses_and_timing_changed(
    nodes: Nodes,
) -> None:
    for name in NODES:
        assert only_addresses_and_timing_changed(name, nodes.configs[name])
        endpoints = [a for a, _ in changed_lines(name, nodes.configs[name]) if "endpoint:" in a]
        assert len(endpoints) == 3


def test_quarterly_statistics_reach_every_partner(nodes: Nodes) -> None:
    kz = nodes["kz"]
    body = example_body(STATISTICS)
    assert {o["FREQ"] for o in body["observations"]} == {"Q"}
    agreements = {"kg": "cis-1998", "uz": "kz-uz-2019", "tj": "kz-tj-2018"}
    sent = {
        name: kz.queue(
            to=PARTY[name], type=STATISTICS, agreement=agreement, purpose="statistics", body=body
        )["id"]
        for name, agreement in agreements.items()
    }
    for name, message_id in sent.items():
        status = kz.delivered(message_id)
        assert status["receipt"]["payload"]["iss"] == PARTY[name]
        received = nodes[name].received(message_id)
        assert (received["from"], received["agreement"], received["body"]) == (
            "KZ:MIA",
            agreements[name],
            body,
        )


def test_verification_response_reaches_the_requester_with_only_the_allowed_fields(
    nodes: Nodes,
) -> None:
    kz, kg = nodes["kz"], nodes["kg"]
    exchange = {"agreement": "cis-1998", "purpose": "identity-verification"}
    request_id = kz.queue(
        to="KG:SRS",
        type="citizenship.verification-request",
        body=example_body("citizenship.verification-request"),
        **exchange,
    )["id"]
    kz.delivered(request_id)
    asked = kg.received(request_id)["body"]["person"]
    answer = {
        "result": "confirmed",
        "checked_on": "2026-11-20",
        "matched_fields": ["names.latin", "birth_date", "identifiers"],
        "person": {
            "names": asked["names"],
            "birth_date": asked["birth_date"],
            "sex": asked["sex"],
            "citizenships": asked["citizenships"],
            "identifiers": asked["identifiers"],
        },
        "remarks": "Registry record checked by the duty officer.",
    }
    reply = kg.queue(
        to="KZ:MIA",
        type="citizenship.verification-response",
        reply_to=request_id,
        body=answer,
        **exchange,
    )
    assert reply["removed_fields"] == [
        "person.citizenships",
        "person.identifiers",
        "person.sex",
        "remarks",
    ]
    assert kg.delivered(reply["id"])["reply_to"] == request_id
    at_kz = kz.received(reply["id"])
    assert (at_kz["from"], at_kz["reply_to"]) == ("KG:SRS", request_id)
    assert set(at_kz["body"]) <= RESPONSE_FIELDS
    assert at_kz["body"]["person"] == {"names": asked["names"], "birth_date": asked["birth_date"]}
    assert [(r["id"], r["from"]) for r in kz.status(request_id)["replies"]] == [
        (reply["id"], "KG:SRS")
    ]


def test_expulsion_notice_with_entry_ban_reaches_the_citizens_country(nodes: Nodes) -> None:
    kz, uz = nodes["kz"], nodes["uz"]
    notice = example_body("migration.violation-notice")
    assert "expulsion" in {m["kind"] for m in notice["measures"]}
    message_id = kz.queue(
        to="UZ:MIA",
        type="migration.violation-notice",
        agreement="kz-uz-2019",
        purpose="illegal-migration-control",
        body=notice,
    )["id"]
    kz.delivered(message_id)
    received = uz.received(message_id)["body"]
    assert received["entry_ban"] == notice["entry_ban"]
    assert received["person"]["citizenships"] == ["UZB"]


def test_readmission_request_is_answered_and_correlated(nodes: Nodes) -> None:
    kz, tj = nodes["kz"], nodes["tj"]
    exchange = {"agreement": "kz-tj-2018", "purpose": "readmission"}
    request = example_body("readmission.request")
    request_id = kz.queue(to="TJ:MIA", type="readmission.request", body=request, **exchange)["id"]
    kz.delivered(request_id)
    assert tj.received(request_id)["body"]["case_reference"] == request["case_reference"]
    decision = copy.deepcopy(example_body("readmission.response"))
    reply_id = tj.queue(
        to="KZ:MIA", type="readmission.response", reply_to=request_id, body=decision, **exchange
    )["id"]
    tj.delivered(reply_id)
    at_kz = kz.received(reply_id)
    assert (at_kz["reply_to"], at_kz["body"]["decision"]) == (request_id, "accepted")
    assert [r["id"] for r in kz.status(request_id)["replies"]] == [reply_id]


def test_experience_documents_travel_both_ways_under_each_partners_agreement(
    nodes: Nodes,
) -> None:
    kz = nodes["kz"]
    agreements = {"kg": "cis-1998", "uz": "kz-uz-2019", "tj": "kz-tj-2018"}
    for name, agreement in agreements.items():
        partner = nodes[name]
        exchange = {"agreement": agreement, "purpose": "experience-exchange"}
        body = copy.deepcopy(example_body(EXPERIENCE))
        body["serves"]["agreement"] = agreement
        sent = kz.queue(to=PARTY[name], type=EXPERIENCE, body=body, **exchange)["id"]
        kz.delivered(sent)
        assert (partner.received(sent)["from"], partner.received(sent)["body"]) == (
            "KZ:MIA",
            body,
        )
        answer = {**body, "title": f"Minutes of the {name.upper()}-KZ working group"}
        answer["kind"] = "meeting-minutes"
        back = partner.queue(to="KZ:MIA", type=EXPERIENCE, body=answer, **exchange)["id"]
        partner.delivered(back)
        assert kz.received(back)["body"] == answer


def test_an_experience_document_naming_another_agreement_is_refused_at_the_sender(
    nodes: Nodes,
) -> None:
    body = example_body(EXPERIENCE)  # serves cis-1998
    resp = nodes["kz"].send(
        to="UZ:MIA",
        type=EXPERIENCE,
        agreement="kz-uz-2019",
        purpose="experience-exchange",
        body=body,
    )
    assert resp.status_code == 422, resp.text
    assert [e["path"] for e in resp.json()["errors"]] == ["/body/serves/agreement"]


def test_send_under_an_agreement_not_yet_in_force_is_refused_at_the_sender(
    nodes: Nodes,
) -> None:
    resp = nodes["kz"].send(
        to="KG:SRS",
        type=STATISTICS,
        agreement="kz-kg-2019",
        purpose="statistics",
        body=example_body(STATISTICS),
    )
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "agreement"
    assert "2027-07-01" in resp.json()["detail"]


def test_messages_queued_while_a_partner_is_down_arrive_exactly_once(nodes: Nodes) -> None:
    kz, tj = nodes["kz"], nodes["tj"]
    tj_process = nodes.processes["tj"]
    tj_process.kill()
    ids = [
        kz.queue(
            to="TJ:MIA",
            type=STATISTICS,
            agreement="kz-tj-2018",
            purpose="statistics",
            body=example_body(STATISTICS),
        )["id"]
        for _ in range(4)
    ]
    poll(
        lambda: all(kz.status(i)["attempts"] for i in ids),
        timeout=20,
        what="a failed attempt for every message while TJ is down",
    )
    assert all(kz.status(i)["status"] == "queued" for i in ids)
    tj_process.start()
    statuses = [kz.delivered(i, timeout=30) for i in ids]
    arrived = Counter(m["id"] for m in tj.inbox(type=STATISTICS))
    assert [arrived[i] for i in ids] == [1, 1, 1, 1]
    assert all(s["attempts"][-1]["outcome"] == "delivered" for s in statuses)
    assert_receipt_verifies_with_the_published_key(tj, statuses[0], ids[0])


def assert_receipt_verifies_with_the_published_key(
    partner: Agency, status: dict[str, Any], message_id: str
) -> None:
    token = status["receipt"]["jws"].encode()
    parsed = jws.parse_compact(token)
    [jwk] = partner.public("/.well-known/jwks.json").json()["keys"]
    assert jwk["kid"] == parsed.kid
    jws.verify(parsed, public_key_from_jwk(jwk))
    receipt = envelope.parse_payload(parsed.payload)
    assert (receipt.iss, receipt.aud, receipt.reply_to) == (partner.party, "KZ:MIA", message_id)
    assert receipt.body["audit_index"] == partner.received(message_id)["audit_index"]


def test_every_nodes_audit_log_verifies_offline(nodes: Nodes) -> None:
    events: dict[str, set[str]] = {}
    for name in NODES:
        agency = nodes[name]
        vkey = agency.public("/.well-known/migex-audit-key").text.strip()
        note = agency.audit_get("/v1/audit/checkpoint").text
        lines = agency.audit_get("/v1/audit/export").content.splitlines()
        report = verify_export(lines, note, vkey)
        assert report.ok, f"{name}: {report.reason}"
        assert report.entries >= verify_checkpoint(note, vkey).size > 0
        events[name] = {audit_event(line) for line in lines}
    assert {"delivery.attempt", "receipt.received", "message.accepted"} <= events["kz"]
    assert {"message.accepted", "message.queued", "receipt.received"} <= events["tj"]


def audit_event(line: bytes) -> str:
    event: str = json.loads(line)["entry"]["event"]
    return event
