"""Disclosure accounting: who received or sent data about a person, over the API.

The KZ node receives a verification request and a violation notice from UZ and answers
the request with a response cut by the partner's field rule; the data-protection
officer then asks about each person by their identifiers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.clock import FixedClock
from service.config import load_config
from service.db.tables import audit_entries, disclosure_subjects, disclosures
from service.main import create_app
from service.runtime import Node
from tests.support.atrest import allow_notices
from tests.support.nodes import (
    CLIENT_TOKEN,
    PRIVACY_TOKEN,
    Federation,
    envelope_for,
    example_body,
)
from tests.unit.exchange.conftest import sending_rules

PRIVACY = {"Authorization": f"Bearer {PRIVACY_TOKEN}"}
CLIENT = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
JOSE = {"Content-Type": "application/jose"}
REQUEST_IIN = "910314401230"  # the person of the verification request example
NOTICE_PINFL = "32207950260457"  # the person of the violation notice example
NOTICE_PASSPORT = "FA1234567"
NEVER_SEEN_IIN = "880101300010"


def write_subject_key(tmp: Path) -> Path:
    path = tmp / "subject.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(bytes(range(32)))
    return path


def privacy_rules(key_file: Path | None) -> Any:
    def mutate(cfg: dict[str, Any]) -> None:
        sending_rules(cfg)
        if key_file is not None:
            cfg["privacy"] = {"subject_key_file": str(key_file)}
        allow_notices(cfg)

    return mutate


def start(federation: Federation, clock: FixedClock, key_file: Path | None) -> TestClient:
    federation.mutate = privacy_rules(key_file)
    app = create_app(load_config(federation.write_config()), clock=clock, run_delivery=False)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def node_client(federation: Federation, clock: FixedClock) -> Iterator[TestClient]:
    with start(federation, clock, write_subject_key(federation.tmp)) as client:
        yield client


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def receive(client: TestClient, federation: Federation, **kw: Any) -> str:
    env = envelope_for(federation.uz, **kw)
    resp = client.post("/v1/messages", content=federation.uz.sign(env), headers=JOSE)
    assert resp.status_code == 201, resp.text
    return env.id


def ask(client: TestClient, query: dict[str, Any]) -> dict[str, Any]:
    resp = client.post("/v1/privacy/disclosures", json=query, headers=PRIVACY)
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


def iin(value: str) -> dict[str, Any]:
    return {"identifiers": [{"scheme": "KZ-IIN", "value": value}]}


def answer_response(client: TestClient, request_id: str) -> dict[str, Any]:
    """KZ answers the request with the registry's particulars; the rule cuts them."""
    body = {
        "result": "confirmed",
        "checked_on": "2026-11-18",
        "matched_fields": ["identifiers", "birth_date"],
        "person": {
            "names": {"latin": {"surname": "ZHAKSYBEKOVA", "given_names": "AIGERIM"}},
            "birth_date": "1991-03-14",
            "identifiers": [{"scheme": "KZ-IIN", "value": REQUEST_IIN}],
        },
    }
    resp = client.post(
        "/v1/outbox",
        json={
            "to": "UZ:MIA",
            "type": "citizenship.verification-response",
            "agreement": "kz-uz-2019",
            "purpose": "identity-verification",
            "reply_to": request_id,
            "body": body,
        },
        headers=CLIENT,
    )
    assert resp.status_code == 202, resp.text
    queued: dict[str, Any] = resp.json()
    return queued


def test_a_person_in_a_received_request_is_answered_with_partner_agreement_purpose_and_fields(
    node_client: TestClient, federation: Federation
) -> None:
    request_id = receive(node_client, federation)

    answer = ask(node_client, iin(REQUEST_IIN))

    [item] = answer["disclosures"]
    assert item["message_id"] == request_id
    assert (item["direction"], item["partner"]) == ("in", "UZ:MIA")
    assert (item["agreement"], item["purpose"]) == ("kz-uz-2019", "identity-verification")
    assert item["type"] == "citizenship.verification-request"
    assert item["via"] == "subject"
    assert item["status"] == "accepted"
    assert {"person.identifiers.value", "person.names.latin.surname", "case_reference"} <= set(
        item["fields"]
    )
    assert answer["truncated"] is False


def test_a_response_cut_by_the_field_rule_lists_only_the_fields_sent(
    node_client: TestClient, federation: Federation
) -> None:
    request_id = receive(node_client, federation)
    queued = answer_response(node_client, request_id)

    answer = ask(node_client, iin(REQUEST_IIN))

    by_id = {item["message_id"]: item for item in answer["disclosures"]}
    assert set(by_id) == {request_id, queued["id"]}
    response = by_id[queued["id"]]
    assert (response["direction"], response["partner"]) == ("out", "UZ:MIA")
    assert response["reply_to"] == request_id
    assert response["via"] == "reply"
    assert response["status"] == "queued"
    assert "person.names.latin.surname" in response["fields"]
    assert not [
        f for f in response["fields"] if f.startswith(("person.identifiers", "person.birth"))
    ]
    assert {"person.identifiers", "person.birth_date"} <= set(response["removed_fields"])
    assert response["removed_fields"] == queued["removed_fields"]


def test_a_violation_notice_is_found_by_pinfl_by_document_and_by_name_and_birth_date(
    node_client: TestClient, federation: Federation
) -> None:
    notice_id = receive(
        node_client,
        federation,
        msg_type="migration.violation-notice",
        purpose="illegal-migration-control",
        body=example_body("migration.violation-notice"),
    )
    queries = [
        {"identifiers": [{"scheme": "UZ-PINFL", "value": NOTICE_PINFL}]},
        {"documents": ["fa 1234567"]},
        {"names": [{"surname": "karimov", "given_names": "Jamshid", "birth_date": "1995-07-22"}]},
        {"names": [{"surname": "Каримов", "given_names": "Жамшид", "birth_date": "1995-07-22"}]},
    ]
    for query in queries:
        items = ask(node_client, query)["disclosures"]
        assert [(i["message_id"], i["type"]) for i in items] == [
            (notice_id, "migration.violation-notice")
        ], query


def test_a_person_never_seen_has_no_disclosures(
    node_client: TestClient, federation: Federation
) -> None:
    receive(node_client, federation)

    answer = ask(node_client, iin(NEVER_SEEN_IIN))

    assert answer["disclosures"] == []
    assert (
        ask(node_client, {"names": [{"surname": "ZHAKSYBEKOVA", "birth_date": "1991-03-15"}]})[
            "disclosures"
        ]
        == []
    )


def test_the_query_is_audited_with_digests_never_the_values(
    node_client: TestClient, federation: Federation
) -> None:
    receive(node_client, federation)

    answer = ask(node_client, {**iin(REQUEST_IIN), "documents": ["N07654321"]})

    node = node_of(node_client)
    with node.engines.reader.connect() as conn:
        leaf = conn.execute(
            select(audit_entries.c.leaf_data).where(audit_entries.c.idx == answer["audit_index"])
        ).scalar_one()
        subjects = conn.execute(select(disclosure_subjects.c.digest)).scalars().all()
    entry = json.loads(leaf)
    assert entry["event"] == "privacy.query"
    assert entry["detail"]["asked_by"] == "privacy-1"
    assert entry["detail"]["subjects"] == answer["subjects"]
    assert len(answer["subjects"]) == 2
    assert set(answer["subjects"]) <= set(subjects)
    assert REQUEST_IIN.encode() not in leaf
    assert b"N07654321" not in leaf


def test_the_index_holds_no_identifier_value(
    node_client: TestClient, federation: Federation
) -> None:
    receive(node_client, federation)
    node = node_of(node_client)
    with node.engines.reader.connect() as conn:
        rows = [
            *conn.execute(select(disclosures)).all(),
            *conn.execute(select(disclosure_subjects)).all(),
        ]
    text = repr(rows)
    assert rows
    for value in (REQUEST_IIN, "N07654321", "ZHAKSYBEKOVA", "Жаксыбекова", "1991-03-14"):
        assert value not in text


def test_a_redelivered_message_is_indexed_once(
    node_client: TestClient, federation: Federation
) -> None:
    env = envelope_for(federation.uz)
    token = federation.uz.sign(env)
    for expected in (201, 200):
        resp = node_client.post("/v1/messages", content=token, headers=JOSE)
        assert resp.status_code == expected, resp.text
    node = node_of(node_client)
    with node.engines.reader.connect() as conn:
        count = conn.execute(select(func.count()).select_from(disclosures)).scalar_one()
    assert count == 1
    assert len(ask(node_client, iin(REQUEST_IIN))["disclosures"]) == 1


def test_statistics_are_not_indexed(node_client: TestClient, federation: Federation) -> None:
    receive(
        node_client,
        federation,
        msg_type="statistics.migration-flows",
        purpose="statistics",
        body=example_body("statistics.migration-flows"),
    )
    node = node_of(node_client)
    with node.engines.reader.connect() as conn:
        assert conn.execute(select(func.count()).select_from(disclosures)).scalar_one() == 0


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_only_the_privacy_role_may_ask(node_client: TestClient) -> None:
    resp = node_client.post("/v1/privacy/disclosures", json=iin(REQUEST_IIN), headers=CLIENT)
    assert resp.status_code == 403
    assert resp.json()["code"] == "insufficient-role"


@SQLITE_ONLY
@pytest.mark.parametrize(
    "query",
    [
        {},
        iin("910314401231"),
        {"identifiers": [{"scheme": "XX", "value": "1"}]},
        {"names": [{"surname": "A", "birth_date": "1991-02-30"}]},
        {"iin": REQUEST_IIN},
    ],
)
def test_a_bad_query_is_an_invalid_parameters_problem(
    node_client: TestClient, query: dict[str, Any]
) -> None:
    resp = node_client.post("/v1/privacy/disclosures", json=query, headers=PRIVACY)
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "invalid-parameters"


@SQLITE_ONLY
def test_without_a_subject_key_no_index_is_kept_and_the_query_says_so(
    federation: Federation, clock: FixedClock
) -> None:
    with start(federation, clock, None) as client:
        receive(client, federation)
        resp = client.post("/v1/privacy/disclosures", json=iin(REQUEST_IIN), headers=PRIVACY)
        with node_of(client).engines.reader.connect() as conn:
            count = conn.execute(select(func.count()).select_from(disclosures)).scalar_one()
    assert resp.status_code == 404
    assert "subject_key_file" in resp.json()["detail"]
    assert count == 0


@SQLITE_ONLY
def test_the_cli_answers_by_iin_and_audits_the_query(
    federation: Federation, clock: FixedClock
) -> None:
    from typer.testing import CliRunner

    from service.cli import app

    with start(federation, clock, write_subject_key(federation.tmp)) as client:
        request_id = receive(client, federation)
    config = federation.tmp / "kz.yaml"

    found = CliRunner().invoke(
        app, ["privacy", "disclosures", "-c", str(config), "--iin", REQUEST_IIN]
    )
    none = CliRunner().invoke(
        app, ["privacy", "disclosures", "-c", str(config), "--iin", NEVER_SEEN_IIN]
    )

    assert found.exit_code == 0, found.output
    answer = json.loads(found.stdout)
    assert [i["message_id"] for i in answer["disclosures"]] == [request_id]
    assert json.loads(none.stdout)["disclosures"] == []
    with start(federation, clock, federation.tmp / "subject.key") as client:
        with node_of(client).engines.reader.connect() as conn:
            leaf = conn.execute(
                select(audit_entries.c.leaf_data).where(
                    audit_entries.c.idx == answer["audit_index"]
                )
            ).scalar_one()
    assert json.loads(leaf)["event"] == "privacy.query"
    assert REQUEST_IIN.encode() not in leaf


@SQLITE_ONLY
def test_the_cli_refuses_an_invalid_iin(federation: Federation, clock: FixedClock) -> None:
    from typer.testing import CliRunner

    from service.cli import app

    with start(federation, clock, write_subject_key(federation.tmp)):
        pass
    result = CliRunner().invoke(
        app, ["privacy", "disclosures", "-c", str(federation.tmp / "kz.yaml"), "--iin", "123"]
    )
    assert result.exit_code == 1
    assert "12 digits" in result.output


@SQLITE_ONLY
@pytest.mark.parametrize(
    "text",
    [
        '{"documents": ["\\ud800"]}',
        '{"identifiers": [{"scheme": "TJ-ID", "value": "A\\udfff"}]}',
        '{"names": [{"surname": "\\ud800", "birth_date": "1991-03-14"}]}',
    ],
)
def test_a_lone_surrogate_in_a_query_is_invalid_parameters(
    node_client: TestClient, text: str
) -> None:
    resp = node_client.post(
        "/v1/privacy/disclosures",
        content=text,
        headers={**PRIVACY, "Content-Type": "application/json"},
    )
    assert (resp.status_code, resp.json()["code"]) == (422, "invalid-parameters")
