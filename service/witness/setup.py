"""Build the node's witnessing parts from its configuration (in the lifespan).

The logs this node witnesses are its partners' logs (``migex/<party>``), trusted
with every pinned, unrevoked Ed25519 key of the partner (the partner's audit key is
one of them), and the extra logs of the ``witness`` section, trusted with their
verifier keys. See docs/configuration.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from service.audit.checkpoint import log_origin
from service.audit.note import verifier_key
from service.config import NodeConfig
from service.config.witnesscheck import read_policy
from service.db.engine import Engines
from service.ledger.committer import GroupCommitter
from service.partners.registry import PartnerRegistry
from service.protocol.keys import SigningKey
from service.witness.cosigner import Cosigner, WitnessSettings
from service.witness.submitter import SubmitSettings


def witnessed_logs(config: NodeConfig, registry: PartnerRegistry) -> dict[str, tuple[str, ...]]:
    """Origin -> trusted checkpoint verifier keys of every log this node witnesses."""
    if config.node.witness_kid is None:
        return {}
    parties = config.witness.partners
    logs: dict[str, tuple[str, ...]] = {}
    for partner in registry.partners():
        if parties is not None and partner.party not in parties:
            continue
        origin = log_origin(partner.party)
        vkeys = tuple(
            verifier_key(origin, key.public.key)
            for key in partner.keys.values()
            if not key.revoked and isinstance(key.public.key, Ed25519PublicKey)
        )
        if vkeys:
            logs[origin] = vkeys
    for extra in config.witness.logs:
        logs[extra.origin] = tuple(extra.vkeys)
    return logs


def build_cosigner(
    config: NodeConfig,
    keys: Mapping[str, SigningKey],
    registry: PartnerRegistry,
    engines: Engines,
    committer: GroupCommitter,
    clock: Callable[[], float],
) -> Cosigner | None:
    """The node's witness, or None when it has no witness key."""
    kid = config.node.witness_kid
    if kid is None:
        return None
    private = keys[kid].private
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"witness key {kid} must be an Ed25519 key")
    rate = config.witness.rate_limit
    settings = WitnessSettings(
        name=config.node.cosigner_name,
        key=private,
        logs=witnessed_logs(config, registry),
        per_second=rate.per_second,
        burst=rate.burst,
    )
    return Cosigner(settings, engines, committer, clock)


def submit_settings(config: NodeConfig) -> SubmitSettings | None:
    """How this node's checkpoints reach its witnesses, or None when it names none."""
    section = config.witnessed_by
    if section is None:
        return None
    return SubmitSettings(
        policy=read_policy(section.policy_file),
        timeout=section.timeout_seconds,
        backoff_initial=section.backoff_initial_seconds,
        backoff_max=section.backoff_max_seconds,
    )
