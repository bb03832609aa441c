"""Access rules (docs/protocol.md section 2, "Access rules"): default deny, every decision names its rule.

A rule allows one direction of traffic with one partner: a set of message types,
under a set of agreements, for a set of purposes. Outbound rules also list the
fields of the body the partner may receive. `decide` finds the rule that allows a
message or refuses it with Problem("forbidden"); with no partner, no rules, or no
matching rule the answer is a refusal, never an implicit allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from service.protocol.problems import Problem

if TYPE_CHECKING:
    from service.partners.registry import Partner

Direction = Literal["inbound", "outbound"]
DIRECTIONS: tuple[Direction, ...] = ("inbound", "outbound")


@dataclass(frozen=True)
class Rule:
    """One access rule. `fields` is required on outbound rules and absent on inbound."""

    id: str
    direction: Direction
    types: frozenset[str]
    agreements: frozenset[str]
    purposes: frozenset[str]
    fields: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"rule {self.id}: direction must be inbound or outbound")
        if self.direction == "outbound" and not self.fields:
            raise ValueError(f"rule {self.id}: an outbound rule must list the fields it allows")
        if self.direction == "inbound" and self.fields is not None:
            raise ValueError(f"rule {self.id}: fields apply to outbound rules only")

    def matches(self, direction: str, msg_type: str, agreement: str, purpose: str) -> bool:
        return (
            self.direction == direction
            and msg_type in self.types
            and agreement in self.agreements
            and purpose in self.purposes
        )


@dataclass(frozen=True)
class Decision:
    """The rule that allowed a message and, outbound, the fields the partner may receive."""

    rule_id: str
    fields: tuple[str, ...] | None


def decide(
    partner: Partner | None,
    *,
    direction: Direction,
    msg_type: str,
    agreement: str,
    purpose: str,
) -> Decision:
    """The single rule of `partner` allowing this message, or Problem("forbidden")."""
    what = f"{direction} {msg_type} under {agreement} for purpose {purpose!r}"
    if partner is None:
        raise Problem(
            "forbidden",
            f"no access rule allows {what}: not a configured partner",
            extra={"rule": None},
        )
    matching = [r for r in partner.rules if r.matches(direction, msg_type, agreement, purpose)]
    if not matching:
        raise Problem(
            "forbidden",
            f"no access rule of partner {partner.party} allows {what}",
            extra={"rule": None},
        )
    if len(matching) > 1:
        # Overlaps are refused when the configuration is loaded; fail closed regardless.
        names = " and ".join(r.id for r in matching)
        raise Problem(
            "forbidden",
            f"rules {names} of partner {partner.party} overlap for {what}",
            extra={"rule": None},
        )
    rule = matching[0]
    return Decision(rule_id=rule.id, fields=rule.fields)
