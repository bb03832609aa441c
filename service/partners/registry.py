"""The partner registry: pinned keys, rate limits and access rules of every partner.

Built once from the validated configuration (`service.config.build`). `key_for` is the key step of the
inbound checks (docs/protocol.md section 6): the `kid` must be pinned and not revoked,
and the `alg` on that key's allow-list. The caller then checks that the partner
owning the key is the message's `iss`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from service.attachments.limits import AttachmentLimits
from service.partners.agreements import Agreement
from service.partners.rules import Rule
from service.protocol.keys import PublicKey
from service.protocol.problems import Problem


@dataclass(frozen=True)
class PartnerKey:
    kid: str
    public: PublicKey
    algs: frozenset[str]
    revoked: bool


@dataclass(frozen=True)
class Partner:
    party: str
    name: str
    endpoint: str
    keys: Mapping[str, PartnerKey]
    rate_per_second: float
    rate_burst: int
    rules: tuple[Rule, ...]
    # Protocol v1.1 attachments (docs/protocol.md); None: the partner takes none.
    attachments: AttachmentLimits | None = None


class PartnerRegistry:
    def __init__(self, partners: Iterable[Partner], agreements: Mapping[str, Agreement]) -> None:
        by_party: dict[str, Partner] = {}
        by_kid: dict[str, tuple[Partner, PartnerKey]] = {}
        for partner in partners:
            if partner.party in by_party:
                raise ValueError(f"partner {partner.party} is given twice")
            by_party[partner.party] = partner
            for kid, key in partner.keys.items():
                if kid in by_kid:
                    raise ValueError(f"key {kid} is pinned for more than one partner")
                by_kid[kid] = (partner, key)
        self._partners = MappingProxyType(by_party)
        self._keys = MappingProxyType(by_kid)
        self.agreements: Mapping[str, Agreement] = MappingProxyType(dict(agreements))

    def partner(self, party: str) -> Partner | None:
        return self._partners.get(party)

    def partners(self) -> tuple[Partner, ...]:
        return tuple(self._partners.values())

    def pins(self, kid: str) -> bool:
        """Whether `kid` is pinned for a partner (revoked or not)."""
        return kid in self._keys

    def key_for(self, kid: str, alg: str) -> tuple[Partner, PartnerKey]:
        """The partner and key for a message's `kid` and `alg`, or a Problem."""
        found = self._keys.get(kid)
        if found is None:
            raise Problem("unknown-key", f"key {kid!r} is not pinned for any partner")
        partner, key = found
        if key.revoked:
            raise Problem("unknown-key", f"key {kid} of {partner.party} is revoked")
        if alg not in key.algs:
            allowed = ", ".join(sorted(key.algs))
            raise Problem(
                "alg-not-allowed",
                f"algorithm {alg!r} is not allowed for key {kid} (allowed: {allowed})",
            )
        return partner, key
