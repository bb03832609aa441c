"""The partner registry: pinned keys, rate limits and access rules of every partner.

Built once from the validated configuration. `key_for` is the key step of the
inbound checks (PROTOCOL.md section 4): the `kid` must be pinned and not revoked,
and the `alg` on that key's allow-list. The caller then checks that the partner
owning the key is the message's `iss`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from service.partners.agreements import Agreement
from service.partners.rules import Rule
from service.protocol.keys import PublicKey, algs_for, public_key_from_jwk
from service.protocol.problems import Problem

if TYPE_CHECKING:
    from service.config import AgreementConfig, NodeConfig, PartnerConfig, PartnerKeyConfig


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

    @classmethod
    def from_config(cls, cfg: NodeConfig) -> PartnerRegistry:
        agreements = {a.id: agreement_from_config(a) for a in cfg.agreements}
        return cls((partner_from_config(p) for p in cfg.partners), agreements)

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


def agreement_from_config(a: AgreementConfig) -> Agreement:
    return Agreement(
        id=a.id,
        title=a.title,
        parties=frozenset(a.parties),
        signed=a.signed,
        in_force=a.in_force,
        ends=a.ends,
        covers=frozenset((t, p) for c in a.covers for t in c.types for p in c.purposes),
    )


def partner_from_config(p: PartnerConfig) -> Partner:
    rules = tuple(
        Rule(
            id=r.id,
            direction=r.direction,
            types=frozenset(r.types),
            agreements=frozenset(r.agreements),
            purposes=frozenset(r.purposes),
            fields=r.fields,
        )
        for r in p.rules
    )
    return Partner(
        party=p.party,
        name=p.name,
        endpoint=p.endpoint,
        keys=MappingProxyType({k.kid: _key_from_config(k) for k in p.keys}),
        rate_per_second=p.rate_limit.per_second,
        rate_burst=p.rate_limit.burst,
        rules=rules,
    )


def _key_from_config(k: PartnerKeyConfig) -> PartnerKey:
    if k.jwk is None:
        raise ValueError(f"key {k.kid}: its JWK was not loaded (use load_config)")
    public = public_key_from_jwk(k.jwk, kid=k.kid)
    permitted = algs_for(public)
    algs = frozenset(k.algs) if k.algs is not None else permitted
    if not algs <= permitted:
        raise ValueError(f"key {k.kid}: algorithms {sorted(algs - permitted)} do not fit the key")
    return PartnerKey(kid=k.kid, public=public, algs=algs, revoked=k.is_revoked)
