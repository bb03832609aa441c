"""Cross-checks of the witnessing parts of a configuration (docs/configuration.md).

- `node.witness_kid` names one of the node's signing keys, and neither the active
  nor the audit key (a cosigner key signs nothing else);
- a `witness` section needs `node.witness_kid`; it names configured partners, and
  its extra logs have well-formed Ed25519 verifier keys named by their origin, no
  origin twice;
- `witnessed_by.policy_file` is a readable C2SP tlog-policy whose witnesses have
  URLs to submit to, none of them this node's own key name, and backoffs in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.audit.checkpoint import log_origin
from service.audit.note import parse_verifier_key
from service.witness.policy import MAX_POLICY_BYTES, Policy, PolicyError, parse_policy

if TYPE_CHECKING:
    from pathlib import Path

    # Annotations only: service.config imports this module, so importing it here at
    # run time would make `import service.witness.configcheck` circular when it comes first.
    from service.config import NodeConfig
    from service.config.crosscheck import Finding


def check_witness_config(cfg: NodeConfig) -> list[Finding]:
    return _witness_key(cfg) + _witnessed_logs(cfg) + _witnessed_by(cfg)


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
