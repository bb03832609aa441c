"""Cross-checks of the witnessing parts of a configuration (docs/configuration.md).

- `node.witness_kid` names one of the node's signing keys, and neither the active
  nor the audit key (a cosigner key signs nothing else);
- a `witness` section needs `node.witness_kid`; it names configured partners, and
  its extra logs have well-formed Ed25519 verifier keys named by their origin, no
  origin twice;
- `witnessed_by.policy_file` is a readable C2SP tlog-policy whose witnesses have
  URLs to submit to, none of them this node's own key name, and backoffs in order;
- each partner's `delivery_proofs.policy_file` is a readable C2SP tlog-policy with a
  `log` line for that partner's checkpoint key (origin `migex/<party>`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.audit.checkpoint import log_origin
from service.audit.note import parse_verifier_key
from service.witness.policy import MAX_POLICY_BYTES, Policy, PolicyError, parse_policy

if TYPE_CHECKING:
    from pathlib import Path

    # Annotations only: service.config imports this module, so importing it here at
    # run time would make `import service.config.witnesscheck` circular when it comes first.
    from service.config import NodeConfig
    from service.config.crosscheck import Finding


def check_witness_config(cfg: NodeConfig) -> list[Finding]:
    return _witness_key(cfg) + _witnessed_logs(cfg) + _witnessed_by(cfg) + _delivery_proofs(cfg)


class PartnerPolicyError(ValueError):
    """A partner's delivery-proofs policy file cannot be used."""


def partner_log_policy(party: str, path: Path) -> tuple[Policy, tuple[str, ...]]:
    """The policy for `party`'s log in `path` and its log keys; PartnerPolicyError if the
    file cannot be read or parsed, or has no `log` line named `migex/<party>`."""
    try:
        policy = read_policy(path)
    except OSError as exc:
        raise PartnerPolicyError(f"cannot read it: {exc.strerror or exc}") from exc
    except PolicyError as exc:
        raise PartnerPolicyError(str(exc)) from exc
    origin = log_origin(party)
    vkeys = tuple(log.vkey for log in policy.logs if parse_verifier_key(log.vkey)[0] == origin)
    if not vkeys:
        raise PartnerPolicyError(
            f"needs a 'log' line with {party}'s checkpoint key (key name {origin})"
        )
    return policy, vkeys


def _delivery_proofs(cfg: NodeConfig) -> list[Finding]:
    findings: list[Finding] = []
    for i, partner in enumerate(cfg.partners):
        section = partner.delivery_proofs
        if section is None:
            continue
        try:
            partner_log_policy(partner.party, section.policy_file)
        except PartnerPolicyError as exc:
            where = ("partners", i, "delivery_proofs", "policy_file")
            findings.append((where, f"{section.policy_file}: {exc}"))
    return findings


def _witness_key(cfg: NodeConfig) -> list[Finding]:
    node = cfg.node
    kid = node.witness_kid
    if kid is None:
        return []
    if kid not in {k.kid for k in node.signing_keys}:
        return [(("node", "witness_kid"), f"{kid} is not one of node.signing_keys")]
    if kid in (node.active_kid, node.audit_kid):
        return [
            (
                ("node", "witness_kid"),
                f"{kid} is also the active or audit key; a witness key must sign only cosignatures",
            )
        ]
    return []


def _witnessed_logs(cfg: NodeConfig) -> list[Finding]:
    section = cfg.witness
    findings: list[Finding] = []
    if cfg.node.witness_kid is None and (section.partners or section.logs):
        findings.append((("witness",), "witnessing other logs needs node.witness_kid"))
    known = {p.party for p in cfg.partners}
    for i, party in enumerate(section.partners or ()):
        if party not in known:
            findings.append((("witness", "partners", i), f"{party} is not a configured partner"))
    origins = {log_origin(p) for p in known}
    for i, log in enumerate(section.logs):
        if log.origin in origins:
            findings.append((("witness", "logs", i, "origin"), f"{log.origin} is given twice"))
        origins.add(log.origin)
        for j, vkey in enumerate(log.vkeys):
            try:
                name, _, _ = parse_verifier_key(vkey)
            except ValueError as exc:
                findings.append((("witness", "logs", i, "vkeys", j), str(exc)))
                continue
            if name != log.origin:
                findings.append(
                    (("witness", "logs", i, "vkeys", j), f"the key is named {name}, not the origin")
                )
    return findings


def _witnessed_by(cfg: NodeConfig) -> list[Finding]:
    section = cfg.witnessed_by
    if section is None:
        return []
    findings: list[Finding] = []
    if section.backoff_max_seconds < section.backoff_initial_seconds:
        findings.append(
            (
                ("witnessed_by", "backoff_max_seconds"),
                "must be at least backoff_initial_seconds",
            )
        )
    try:
        policy = read_policy(section.policy_file)
    except (OSError, PolicyError) as exc:
        message = exc.strerror if isinstance(exc, OSError) else str(exc)
        return [*findings, (("witnessed_by", "policy_file"), f"{section.policy_file}: {message}")]
    for name, witness in policy.witnesses.items():
        if witness.url is None:
            findings.append(
                (("witnessed_by", "policy_file"), f"witness {name} has no URL to submit to")
            )
        if witness.key.name == cfg.node.cosigner_name:
            findings.append(
                (("witnessed_by", "policy_file"), f"witness {name} is this node's own key name")
            )
    return findings


def read_policy(path: Path) -> Policy:
    """Read and parse a policy file (at most 1 MiB)."""
    with path.open("rb") as file:
        raw = file.read(MAX_POLICY_BYTES + 1)
    return parse_policy(raw)
