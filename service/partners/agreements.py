"""Agreements: the legal basis of every message (docs/protocol.md section 2, "Agreements").

A message names its agreement; the receiver refuses it unless the agreement binds
the countries of both parties, was in force on the message's `iat` date and covers
the message's type and purpose. `check_agreement` is that decision, pure: the
caller passes the date.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from service.protocol.problems import Problem

# The message types an agreement or an access rule can name (docs/protocol.md section 2, "Message types").
# Receipts answer a message and travel under its agreement; no rule names them.
EXCHANGE_TYPES: tuple[str, ...] = (
    "statistics.migration-flows",
    "citizenship.verification-request",
    "citizenship.verification-response",
    "migration.violation-notice",
    "readmission.request",
    "readmission.response",
    "experience.document",
    "audit.inclusion-proofs",
)


def country_of(party: str) -> str:
    """The ISO 3166-1 alpha-2 country of a party id: "KZ" for "KZ:MIA"."""
    return party.split(":", 1)[0]


@dataclass(frozen=True)
class Agreement:
    """An agreement as configured; `covers` holds (message type, purpose) pairs.

    `in_force` None means not (yet) in force. `ends` is the first day on which the
    agreement no longer applies: it is in force on `in_force <= day < ends`.
    """

    id: str
    title: str
    parties: frozenset[str]
    signed: date
    in_force: date | None
    ends: date | None
    covers: frozenset[tuple[str, str]]

    def binds(self, country: str) -> bool:
        return country in self.parties

    def covers_pair(self, msg_type: str, purpose: str) -> bool:
        return (msg_type, purpose) in self.covers


def check_agreement(
    agreements: Mapping[str, Agreement],
    *,
    agreement_id: str,
    iss: str,
    aud: str,
    msg_type: str,
    purpose: str,
    on: date,
) -> Agreement:
    """The agreement if it allows this message on `on`; else Problem("agreement").

    The checks run in a fixed order and the detail names the first that failed:
    unknown, not binding a party's country, not yet in force, ended, not covering.
    """
    agreement = agreements.get(agreement_id)
    if agreement is None:
        raise Problem("agreement", f"agreement {agreement_id!r} is not known to this node")
    _check_binding(agreement, iss, aud)
    _check_dates(agreement, on)
    if not agreement.covers_pair(msg_type, purpose):
        raise Problem(
            "agreement",
            f"agreement {agreement.id} does not cover {msg_type} for purpose {purpose!r}",
        )
    return agreement


def _check_binding(agreement: Agreement, iss: str, aud: str) -> None:
    missing: list[str] = []
    for party in (iss, aud):
        country = country_of(party)
        if not agreement.binds(country) and country not in missing:
            missing.append(country)
    if missing:
        parties = ", ".join(sorted(agreement.parties))
        raise Problem(
            "agreement",
            f"agreement {agreement.id} does not bind {' or '.join(missing)} (it binds {parties})",
        )


def _check_dates(agreement: Agreement, on: date) -> None:
    if agreement.in_force is None:
        raise Problem(
            "agreement",
            f"agreement {agreement.id} is not in force on {on.isoformat()} "
            "(no date of entry into force is configured)",
        )
    if on < agreement.in_force:
        raise Problem(
            "agreement",
            f"agreement {agreement.id} is not in force on {on.isoformat()} "
            f"(enters into force {agreement.in_force.isoformat()})",
        )
    if agreement.ends is not None and on >= agreement.ends:
        raise Problem(
            "agreement",
            f"agreement {agreement.id} is not in force on {on.isoformat()} "
            f"(ended {agreement.ends.isoformat()})",
        )
