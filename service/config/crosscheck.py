"""Cross-checks of a validated configuration: what no single field can show.

Each check returns findings (location in the file, message) so that every problem
is reported at once: ids that must be unique, keys owned by their party, pinned
JWKs and their algorithms, rules naming agreements that exist, bind both countries
and cover the rule's types and purposes, rules of one partner that overlap, and
outbound rules without a field list. Pure: the JWKs were read before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from service.config.yamlsource import Loc, render_loc
from service.partners.agreements import country_of
from service.protocol.keys import algs_for, public_key_from_jwk

if TYPE_CHECKING:
    from service.config.model import AgreementConfig, NodeConfig, PartnerConfig, RuleConfig

Finding = tuple[Loc, str]
_KIND_NAMES = {"ed25519": "Ed25519", "p256": "P-256"}


def check_config(cfg: NodeConfig) -> list[Finding]:
    findings: list[Finding] = []
    findings += _node_keys(cfg)
    findings += _agreements(cfg)
    findings += _partners(cfg)
    findings += _partner_keys(cfg)
    findings += _rules(cfg)
    findings += _tokens(cfg)
    findings += _timings(cfg)
    findings += _retention(cfg)
    findings += _keks(cfg)
    return findings


def _keks(cfg: NodeConfig) -> list[Finding]:
    """KEK ids once each; the active KEK among them (needed when there are several)."""
    privacy = cfg.privacy
    ids = {k.id for k in privacy.kek_files}
    findings = _duplicates(
        ((("privacy", "kek_files", i, "id"), k.id) for i, k in enumerate(privacy.kek_files)),
        "KEK id",
    )
    if privacy.active_kek is not None and privacy.active_kek not in ids:
        findings.append((("privacy", "active_kek"), f"no KEK {privacy.active_kek!r} in kek_files"))
    if privacy.active_kek is None and len(ids) > 1:
        findings.append((("privacy", "active_kek"), "name the KEK new bodies are sealed under"))
    return findings


def _retention(cfg: NodeConfig) -> list[Finding]:
    """Per-agreement retention names agreements that exist, once each, and says something."""
    known = {a.id for a in cfg.agreements}
    findings: list[Finding] = []
    for index, entry in enumerate(cfg.retention.agreements):
        loc: Loc = ("retention", "agreements", index)
        if entry.agreement not in known:
            findings.append(((*loc, "agreement"), f"unknown agreement {entry.agreement!r}"))
        if entry.message_body_days is None and not entry.categories:
            findings.append((loc, "give message_body_days, categories or both"))
    findings += _duplicates(
        (
            (("retention", "agreements", i, "agreement"), a.agreement)
            for i, a in enumerate(cfg.retention.agreements)
        ),
        "agreement",
    )
    return findings


def _duplicates(items: Iterable[tuple[Loc, str]], what: str) -> list[Finding]:
    """A finding for each repeated value, naming where it was first used."""
    first: dict[str, Loc] = {}
    findings: list[Finding] = []
    for loc, value in items:
        if value in first:
            findings.append(
                (loc, f"{what} {value!r} is already used at {render_loc(first[value])}")
            )
        else:
            first[value] = loc
    return findings


def _owned(kid: str, party: str) -> bool:
    return kid.startswith(party + "#")


def _node_keys(cfg: NodeConfig) -> list[Finding]:
    node = cfg.node
    kids = {k.kid for k in node.signing_keys}
    findings: list[Finding] = [
        (("node", "signing_keys", i, "kid"), f"key {k.kid} does not belong to {node.party}")
        for i, k in enumerate(node.signing_keys)
        if not _owned(k.kid, node.party)
    ]
    for name in ("active_kid", "audit_kid"):
        kid = getattr(node, name)
        if kid not in kids:
            findings.append((("node", name), f"{kid} is not one of node.signing_keys"))
    for i, kid in enumerate(node.published_kids or ()):
        if kid not in kids:
            findings.append(
                (("node", "published_kids", i), f"{kid} is not one of node.signing_keys")
            )
    if node.published_kids is not None and node.active_kid not in node.published_kids:
        findings.append(
            (("node", "published_kids"), f"the active key {node.active_kid} must be published")
        )
    return findings


def _agreements(cfg: NodeConfig) -> list[Finding]:
    findings = _duplicates(
        ((("agreements", i, "id"), a.id) for i, a in enumerate(cfg.agreements)), "agreement id"
    )
    for i, agreement in enumerate(cfg.agreements):
        findings += _agreement_dates(("agreements", i), agreement)
    return findings


def _agreement_dates(loc: Loc, a: AgreementConfig) -> list[Finding]:
    findings: list[Finding] = []
    if a.in_force is not None and a.in_force < a.signed:
        findings.append(((*loc, "in_force"), f"in_force {a.in_force} is before signed {a.signed}"))
    start = a.in_force or a.signed
    if a.ends is not None and a.ends <= start:
        findings.append(((*loc, "ends"), f"ends {a.ends} is not after {start}"))
    return findings


def _partners(cfg: NodeConfig) -> list[Finding]:
    findings = _duplicates(
        ((("partners", i, "party"), p.party) for i, p in enumerate(cfg.partners)), "party"
    )
    for i, partner in enumerate(cfg.partners):
        if partner.party == cfg.node.party:
            findings.append((("partners", i, "party"), "a node cannot be its own partner"))
    return findings


def _partner_keys(cfg: NodeConfig) -> list[Finding]:
    own = [(("node", "signing_keys", i, "kid"), k.kid) for i, k in enumerate(cfg.node.signing_keys)]
    pinned = [
        (("partners", p, "keys", k, "kid"), key.kid)
        for p, partner in enumerate(cfg.partners)
        for k, key in enumerate(partner.keys)
    ]
    findings = _duplicates([*own, *pinned], "kid")
    for p, partner in enumerate(cfg.partners):
        for k in range(len(partner.keys)):
            findings += _partner_key(("partners", p, "keys", k), partner, k)
    return findings


def _partner_key(loc: Loc, partner: PartnerConfig, index: int) -> list[Finding]:
    key = partner.keys[index]
    findings: list[Finding] = []
    if not _owned(key.kid, partner.party):
        findings.append(((*loc, "kid"), f"key {key.kid} does not belong to {partner.party}"))
    if key.revoked_at is not None and "revoked" in key.model_fields_set and not key.revoked:
        findings.append(((*loc, "revoked_at"), "revoked_at is set but revoked is false"))
    if key.jwk is None:
        return findings  # missing or unreadable: reported when the file was read
    where = "jwk_file" if key.jwk_file is not None else "jwk"
    try:
        public = public_key_from_jwk(key.jwk, kid=key.kid)
    except ValueError as exc:
        return [*findings, ((*loc, where), f"malformed JWK: {exc}")]
    permitted = algs_for(public)
    refused = [alg for alg in key.algs or () if alg not in permitted]
    if refused:
        findings.append(
            (
                (*loc, "algs"),
                f"{', '.join(refused)} not permitted for this {_KIND_NAMES[public.kind]} key "
                f"(permitted: {', '.join(sorted(permitted))})",
            )
        )
    return findings


def _rules(cfg: NodeConfig) -> list[Finding]:
    findings = _duplicates(
        (
            (("partners", p, "rules", r, "id"), rule.id)
            for p, partner in enumerate(cfg.partners)
            for r, rule in enumerate(partner.rules)
        ),
        "rule id",
    )
    for p, partner in enumerate(cfg.partners):
        for r, rule in enumerate(partner.rules):
            findings += _rule(cfg, ("partners", p, "rules", r), partner, rule)
        findings += _overlaps(("partners", p), partner)
    return findings


def _rule(cfg: NodeConfig, loc: Loc, partner: PartnerConfig, rule: RuleConfig) -> list[Finding]:
    findings: list[Finding] = []
    if rule.direction == "outbound" and rule.fields is None:
        findings.append(
            (loc, f"outbound rule {rule.id} must list the fields {partner.party} may receive")
        )
    if rule.direction == "inbound" and rule.fields is not None:
        findings.append(((*loc, "fields"), "fields apply to outbound rules only"))
    agreements = {a.id: a for a in cfg.agreements}
    countries = (cfg.node.country, country_of(partner.party))
    for i, agreement_id in enumerate(rule.agreements):
        at: Loc = (*loc, "agreements", i)
        agreement = agreements.get(agreement_id)
        if agreement is None:
            findings.append((at, f"unknown agreement {agreement_id!r}"))
            continue
        unbound = [c for c in dict.fromkeys(countries) if c not in agreement.parties]
        if unbound:
            findings.append((at, f"agreement {agreement_id} does not bind {' or '.join(unbound)}"))
        covered = {
            (t, p) for cover in agreement.covers for t in cover.types for p in cover.purposes
        }
        missing = [f"{t} x {p}" for t in rule.types for p in rule.purposes if (t, p) not in covered]
        if missing:
            findings.append((at, f"agreement {agreement_id} does not cover {', '.join(missing)}"))
    return findings


def _overlaps(loc: Loc, partner: PartnerConfig) -> list[Finding]:
    """Rules of one partner and direction must not allow the same type x agreement x purpose."""
    findings: list[Finding] = []
    for later, rule in enumerate(partner.rules):
        for earlier in partner.rules[:later]:
            if earlier.direction != rule.direction:
                continue
            common = sorted(
                (t, a, p)
                for t in set(rule.types) & set(earlier.types)
                for a in set(rule.agreements) & set(earlier.agreements)
                for p in set(rule.purposes) & set(earlier.purposes)
            )
            if common:
                t, a, p = common[0]
                findings.append(
                    (
                        (*loc, "rules", later),
                        f"overlapping rules {earlier.id} and {rule.id}: both allow "
                        f"{rule.direction} {t} under {a} for {p}",
                    )
                )
    return findings


def _tokens(cfg: NodeConfig) -> list[Finding]:
    names = ((("tokens", i, "name"), t.name) for i, t in enumerate(cfg.tokens))
    digests = ((("tokens", i, "sha256"), t.sha256) for i, t in enumerate(cfg.tokens))
    return [*_duplicates(names, "token name"), *_duplicates(digests, "token hash")]


def _timings(cfg: NodeConfig) -> list[Finding]:
    delivery = cfg.delivery
    findings: list[Finding] = []
    if delivery.backoff_max_seconds < delivery.backoff_initial_seconds:
        findings.append(
            (("delivery", "backoff_max_seconds"), "must not be less than backoff_initial_seconds")
        )
    if delivery.lease_seconds <= delivery.timeout_seconds:
        findings.append(
            (
                ("delivery", "lease_seconds"),
                "must be longer than timeout_seconds, or a slow attempt could be repeated by "
                "another worker",
            )
        )
    return findings
