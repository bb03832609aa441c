"""Fixtures for sending: the KZ node of the test federation and a fake UZ partner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.clock import FixedClock
from service.config import load_config
from service.main import create_app
from service.runtime import Node, build_node
from tests.support.nodes import Federation
from tests.unit.exchange.partner import FakePartner
from tests.unit.exchange.sender import Sender


@pytest.fixture
def kz_node(federation: Federation, clock: FixedClock) -> Iterator[Node]:
    node = build_node(load_config(federation.write_config()), clock=clock)
    yield node
    node.close()


@pytest.fixture
def partner(federation: Federation, clock: FixedClock) -> FakePartner:
    return FakePartner(federation.uz, federation.kz.key.public(), clock)


@pytest.fixture
def sender(kz_node: Node, partner: FakePartner, clock: FixedClock) -> Sender:
    return Sender(kz_node, partner, clock)


def sending_rules(cfg: dict[str, Any]) -> None:
    """The test federation plus what the local API tests send and answer.

    UZ: verification requests both ways, responses both ways (KZ's cut to an
    allow-list). KG: verification requests in, under an agreement in force.
    """
    # A new list: the test federation's agreements list is shared between configurations.
    cfg["agreements"] = [
        *cfg["agreements"],
        {
            "id": "kz-kg-verification",
            "title": "Test agreement between Kazakhstan and Kyrgyzstan on identity checks",
            "parties": ["KZ", "KG"],
            "signed": "2020-01-01",
            "in_force": "2020-01-01",
            "covers": [
                {
                    "types": ["citizenship.verification-request"],
                    "purposes": ["identity-verification"],
                }
            ],
        },
    ]
    verification = {"agreements": ["kz-uz-2019"], "purposes": ["identity-verification"]}
    uz = next(p for p in cfg["partners"] if p["party"] == "UZ:MIA")
    uz["rules"] += [
        {
            "id": "uz-out-verification-request",
            "direction": "outbound",
            "types": ["citizenship.verification-request"],
            "fields": ["*"],
            **verification,
        },
        {
            "id": "uz-in-verification-response",
            "direction": "inbound",
            "types": ["citizenship.verification-response"],
            **verification,
        },
        {
            "id": "uz-out-verification-response",
            "direction": "outbound",
            "types": ["citizenship.verification-response"],
            "fields": ["result", "checked_on", "matched_fields", "person.names"],
            **verification,
        },
    ]
    kg = next(p for p in cfg["partners"] if p["party"] == "KG:SRS")
    kg["rules"].append(
        {
            "id": "kg-in-verification",
            "direction": "inbound",
            "types": ["citizenship.verification-request"],
            "agreements": ["kz-kg-verification"],
            "purposes": ["identity-verification"],
        }
    )


@pytest.fixture
def local(federation: Federation, clock: FixedClock) -> Iterator[TestClient]:
    """The KZ node's API, its delivery worker not running (tests drive delivery)."""
    federation.mutate = sending_rules
    app = create_app(load_config(federation.write_config()), clock=clock, run_delivery=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
