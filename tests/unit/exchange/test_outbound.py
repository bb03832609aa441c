"""Outbound records that bypass the API's model (the CLI reads them from files) are
held to the envelope's patterns too, and their refusal records only valid values."""

from __future__ import annotations

import pytest

from service.exchange.outbound import OutboundRequest, refusal_event
from service.protocol.problems import Problem
from service.runtime import Node
from tests.support.batches import prepare_on
from tests.support.nodes import example_body

STATISTICS = OutboundRequest(
    "UZ:MIA",
    "statistics.migration-flows",
    "kz-uz-2019",
    "statistics",
    example_body("statistics.migration-flows"),
)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("to", "UZ:MIA\x00"),
        ("type", "x\x00"),
        ("type", "statistics.migration-flows\n"),
        ("agreement", "kz-uz-2019\x00"),
        ("purpose", "s" * 65),
        ("reply_to", "\x00"),
    ],
)
def test_a_value_that_could_not_be_signed_is_invalid_parameters(
    kz_node: Node, member: str, value: str
) -> None:
    req = OutboundRequest(**{**STATISTICS.__dict__, member: value})
    with pytest.raises(Problem) as refused:
        prepare_on(kz_node, req)
    assert refused.value.code == "invalid-parameters"
    assert refused.value.extra["errors"]


def test_a_refusal_records_invalid_members_as_null() -> None:
    req = OutboundRequest("UZ:MIA", "x\x00", "kz-uz-2019", "statistics\x01", {})
    event = refusal_event(req, "KZ:MIA", Problem("invalid-parameters", "refused"))
    assert (event.party, event.recipient, event.type, event.agreement, event.purpose) == (
        "UZ:MIA",
        "UZ:MIA",
        None,
        "kz-uz-2019",
        None,
    )
    valid = refusal_event(STATISTICS, "KZ:MIA", Problem("forbidden", "refused"))
    assert (valid.type, valid.purpose) == ("statistics.migration-flows", "statistics")
