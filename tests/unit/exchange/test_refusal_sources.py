"""How the source of an unproven sender's request is named (service.exchange.refusals)."""

from __future__ import annotations

import pytest

from service.exchange.refusals import UNKNOWN_SOURCE, SourceRule, Tally, trusted_networks

PROXIES = SourceRule(trusted_networks(["10.0.0.0/8", "2001:db8:ffff::/48"]))


def test_the_peer_is_the_source_when_no_proxy_is_trusted() -> None:
    assert SourceRule().source("203.0.113.7", ["198.51.100.1"]) == "203.0.113.7"


def test_a_trusted_proxy_names_the_address_it_forwarded_for() -> None:
    assert PROXIES.source("10.0.0.1", ["203.0.113.7"]) == "203.0.113.7"


def test_the_rightmost_untrusted_hop_is_the_source() -> None:
    # The client wrote the left part itself; only the hops our proxies added count.
    header = ["1.2.3.4, 203.0.113.7, 10.0.0.9"]
    assert PROXIES.source("10.0.0.1", header) == "203.0.113.7"


def test_several_header_lines_are_read_as_one_list() -> None:
    assert PROXIES.source("10.0.0.1", ["1.2.3.4", "203.0.113.7"]) == "203.0.113.7"


def test_a_hop_that_is_no_address_stops_at_the_last_trusted_one() -> None:
    assert PROXIES.source("10.0.0.1", ["ZHAKSYBEKOVA, 10.0.0.9"]) == "10.0.0.9"


def test_a_peer_that_is_no_address_is_unknown() -> None:
    assert PROXIES.source("testclient", ["203.0.113.7"]) == UNKNOWN_SOURCE
    assert PROXIES.source(None) == UNKNOWN_SOURCE


@pytest.mark.parametrize(
    ("peer", "source"),
    [
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
    ],
)
def test_ipv6_sources_are_their_network(peer: str, source: str) -> None:
    assert SourceRule().source(peer) == source


def test_the_ipv6_prefix_is_configurable() -> None:
    assert SourceRule(ipv6_prefix=48).source("2001:db8:1:2::1") == "2001:db8:1::/48"


def test_a_tally_reads_back_what_it_wrote_and_nothing_else() -> None:
    tally = Tally(since=1.5)
    tally.add("malformed")
    tally.add("malformed")
    tally.add("bad-header")
    again = Tally.loads(tally.dumps())
    assert again == tally
    assert Tally.loads("") is None
    assert Tally.loads("{not json") is None
    assert Tally.loads('{"since": 1, "count": 2}') is None
