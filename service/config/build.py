"""The pure domains' values, built from the validated configuration.

`partners/` decides and never reads the configuration: the registry, its agreements,
rules and pinned keys are made here and handed to it.
"""

from __future__ import annotations

from types import MappingProxyType

from service.attachments.limits import AttachmentLimits
from service.config.model import AgreementConfig, NodeConfig, PartnerConfig, PartnerKeyConfig
from service.exchange.periods import AgreementPeriods, RetentionPolicy
from service.partners.agreements import Agreement
from service.partners.registry import Partner, PartnerKey, PartnerRegistry
from service.partners.rules import Rule
from service.protocol.keys import algs_for, public_key_from_jwk


def registry_from_config(cfg: NodeConfig) -> PartnerRegistry:
    """The partner registry of a loaded configuration (its JWKs read by `load_config`)."""
    agreements = {a.id: agreement_from_config(a) for a in cfg.agreements}
    return PartnerRegistry((partner_from_config(p) for p in cfg.partners), agreements)


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
        attachments=None
        if p.attachments is None
        else AttachmentLimits(
            max_count=p.attachments.max_count,
            max_bytes=p.attachments.max_bytes,
            max_total_bytes=p.attachments.max_total_bytes,
            media_types=frozenset(p.attachments.media_types),
        ),
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


def retention_policy_from_config(cfg: NodeConfig) -> RetentionPolicy:
    """The retention periods by category and agreement (exchange/periods.py)."""
    r = cfg.retention
    return RetentionPolicy(
        default_days=r.message_body_days,
        categories=MappingProxyType(dict(r.categories)),
        agreements=MappingProxyType(
            {
                a.agreement: AgreementPeriods(
                    a.message_body_days, MappingProxyType(dict(a.categories))
                )
                for a in r.agreements
            }
        ),
    )
