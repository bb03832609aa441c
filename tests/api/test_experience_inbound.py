"""An inbound `experience.document` is held to its envelope: the body's `serves` must
name the agreement and purpose the message was signed under, and a partner that speaks
protocol v1 sends it no attachments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_messages import post
from tests.support.nodes import Federation, envelope_for, example_body
from tests.unit.records.bodies import PDF_ATTACHMENT

TYPE = "experience.document"
EXCHANGE = {"agreement": "kz-uz-2019", "purpose": "experience-exchange"}


def _allow_experience(cfg: dict[str, Any]) -> None:
    [agreement] = [a for a in cfg["agreements"] if a["id"] == "kz-uz-2019"]
    agreement["covers"].append({"types": [TYPE], "purposes": ["experience-exchange"]})
    [uz] = [p for p in cfg["partners"] if p["party"] == "UZ:MIA"]
    uz["rules"].append(
        {
            "id": "uz-in-experience",
            "direction": "inbound",
            "types": [TYPE],
            "agreements": ["kz-uz-2019"],
            "purposes": ["experience-exchange"],
        }
    )


@pytest.fixture
def client(client_factory: Callable[[Callable[[dict[str, Any]], None]], TestClient]) -> TestClient:
    return client_factory(_allow_experience)


def _body(**serves: str) -> dict[str, Any]:
    body = example_body(TYPE)
    body["serves"].update({**EXCHANGE, **serves})
    return body


def _send(client: TestClient, federation: Federation, body: dict[str, Any]) -> Any:
    env = envelope_for(federation.uz, msg_type=TYPE, body=body, **EXCHANGE)
    return post(client, federation.uz.sign(env))


def test_a_document_serving_the_envelopes_agreement_is_accepted(
    client: TestClient, federation: Federation
) -> None:
    assert _send(client, federation, _body()).status_code == 201


@pytest.mark.parametrize(
    ("member", "value"), [("agreement", "cis-1998"), ("purpose", "statistics")]
)
def test_a_document_serving_another_agreement_or_purpose_is_refused(
    client: TestClient, federation: Federation, member: str, value: str
) -> None:
    resp = _send(client, federation, _body(**{member: value}))
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "schema"
    assert [e["path"] for e in resp.json()["errors"]] == [f"/body/serves/{member}"]


def test_a_document_with_attachments_from_a_v1_partner_is_refused(
    client: TestClient, federation: Federation
) -> None:
    # UZ:MIA's configuration has no `attachments` block: it speaks v1 to this node.
    resp = _send(client, federation, {**_body(), "attachments": [PDF_ATTACHMENT]})
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "attachments-not-allowed"
