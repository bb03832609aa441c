"""Which partners speak protocol v1.1 (delivery proofs), and the policy for each one's log.

A partner's `delivery_proofs` section names the agreement under which proofs travel
and a C2SP tlog-policy file for the partner's log: its `log` line is the partner's
pinned checkpoint key (origin `migex/<party>`), its witnesses and quorum say which
cosignatures make that log's checkpoints trustworthy here. See docs/protocol.md,
"Protocol v1.1: delivery proofs", and docs/configuration.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.config import NodeConfig
from service.config.witnesscheck import PartnerPolicyError, partner_log_policy
from service.witness.policy import Policy

PROOFS_TYPE = "audit.inclusion-proofs"
PROOFS_PURPOSE = "audit"


class PartnerProofsError(ValueError):
    """A partner's delivery-proofs configuration cannot be used."""


@dataclass(frozen=True)
class PartnerProofs:
    """Protocol v1.1 with one partner: the agreement for proofs, the policy for its log."""

    party: str
    agreement: str
    policy: Policy
    log_vkeys: tuple[str, ...]


def load_partner_proofs(cfg: NodeConfig) -> dict[str, PartnerProofs]:
    """Every partner with a `delivery_proofs` section; raises PartnerProofsError naming it."""
    found: dict[str, PartnerProofs] = {}
    for partner in cfg.partners:
        section = partner.delivery_proofs
        if section is None:
            continue
        where = f"partners[{partner.party}].delivery_proofs"
        try:
            policy, vkeys = partner_log_policy(partner.party, section.policy_file)
        except PartnerPolicyError as exc:
            raise PartnerProofsError(f"{where}.policy_file: {exc}") from exc
        found[partner.party] = PartnerProofs(partner.party, section.agreement, policy, vkeys)
    return found
