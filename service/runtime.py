"""The running node: configuration, keys, engines and the writer, built once in the lifespan."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from service.api.tokens import TokenStore
from service.attachments.store import AttachmentStore, FileStore
from service.audit import entries as ev
from service.audit.checkpoint import Checkpoint, log_origin, sign_checkpoint
from service.audit.entries import AuditEvent
from service.audit.note import verifier_key
from service.config import NodeConfig
from service.config.build import registry_from_config
from service.config.keyfiles import MIN_SUBJECT_KEY_BYTES, read_secret_file
from service.db import migrate
from service.db.engine import Engines, create_engines
from service.db.tables import node_state
from service.exchange.attempts import prefetch_outbox
from service.exchange.delivery import DeliverySettings, DeliveryWorker
from service.exchange.inbound import InboundPolicy, ReceiptSigner, prefetch_existing
from service.exchange.outbound import OutboundPolicy
from service.exchange.refusals import RefusalLimits, SourceRule, trusted_networks
from service.ledger.committer import AuditOnly, GroupCommitter
from service.observability.metrics import ExchangeMetrics
from service.partners.registry import PartnerRegistry
from service.privacy.atrest import PLAINTEXT, Bodies
from service.privacy.keks import verify_keks
from service.privacy.sealing import KEK_BYTES, KekRing, Sealer
from service.protocol.keys import PublicKey, SigningKey, load_signing_key
from service.protocol.receipts import sha256_digest
from service.witness.cosigner import Cosigner
from service.witness.setup import build_cosigner, submit_settings
from service.witness.status import Witnessing
from service.witness.submitter import SubmitSettings

log = logging.getLogger("migex.node")


@dataclass
class Node:
    config: NodeConfig
    party: str
    registry: PartnerRegistry
    signing_key: SigningKey
    signing_keys: dict[str, SigningKey]
    published: list[PublicKey]
    audit_key: Ed25519PrivateKey
    audit_name: str
    engines: Engines
    committer: GroupCommitter
    clock: Callable[[], float]
    tokens: TokenStore
    policy: InboundPolicy
    outbound: OutboundPolicy
    signer: ReceiptSigner
    refusal_limits: RefusalLimits
    sources: SourceRule
    subject_key: bytes | None = None
    # How bodies are stored: sealed under the KEK ring (privacy.kek_files), or as they are.
    bodies: Bodies = PLAINTEXT
    delivery: DeliveryWorker | None = None
    metrics: ExchangeMetrics = field(default_factory=ExchangeMetrics)
    # Witnessing (service/witness): this node as a witness, and its own log's policy.
    cosigner: Cosigner | None = None
    witnessing: Witnessing | None = None
    submit: SubmitSettings | None = None
    _store: AttachmentStore | None = None

    @property
    def store(self) -> AttachmentStore:
        """The attachment store (`attachments.directory`), made on first use so that a
        node that never sees a file needs no directory for it."""
        if self._store is None:
            directory = Path(self.config.attachments.directory)
            self._store = FileStore(directory, self.bodies.sealer)
        return self._store

    @property
    def audit_vkey(self) -> str:
        return verifier_key(self.audit_name, self.audit_key.public_key())

    def sign_checkpoint(self, size: int, root: bytes) -> str:
        cp = Checkpoint(origin=self.audit_name, size=size, root=root)
        return sign_checkpoint(cp, self.audit_name, self.audit_key)

    def close(self) -> None:
        self.committer.stop()
        self.engines.dispose()


def delivery_settings(config: NodeConfig) -> DeliverySettings:
    d = config.delivery
    return DeliverySettings(
        concurrency=d.concurrency,
        max_attempts=d.max_attempts,
        backoff_initial=d.backoff_initial_seconds,
        backoff_max=d.backoff_max_seconds,
        timeout=d.timeout_seconds,
        lease_seconds=d.lease_seconds,
        # Re-sign a queued message once half the partner's skew window has passed.
        resign_after=config.limits.clock_skew_seconds / 2,
    )


def refusal_limits(config: NodeConfig) -> RefusalLimits:
    r = config.refusals
    return RefusalLimits(per_second=r.per_second, burst=r.burst, interval=r.aggregate_seconds)


def config_digest(config: NodeConfig) -> str:
    """The digest of the validated configuration, in the node's one digest form."""
    data = json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()
    return sha256_digest(data)


def load_keys(config: NodeConfig) -> dict[str, SigningKey]:
    """The node's private keys by kid (files refused if readable by others)."""
    keys: dict[str, SigningKey] = {}
    for entry in config.node.signing_keys:
        keys[entry.kid] = load_signing_key(Path(entry.file), entry.kid)
    return keys


def load_subject_key(config: NodeConfig) -> bytes | None:
    """The disclosure index's key, or None when `privacy.subject_key_file` is not set."""
    path = config.privacy.subject_key_file
    if path is None:
        return None
    return read_secret_file(Path(path), "subject key file", MIN_SUBJECT_KEY_BYTES)


def load_bodies(config: NodeConfig) -> Bodies:
    """How the node stores bodies: sealed under its KEK ring, or as they are without one."""
    active = config.privacy.effective_active_kek
    if active is None:
        return PLAINTEXT
    keys = {
        k.id: read_secret_file(Path(k.file), "KEK file", KEK_BYTES, exact=True)
        for k in config.privacy.kek_files
    }
    return Bodies(Sealer(KekRing(keys, active)))


def check_bodies(config: NodeConfig, engines: Engines, bodies: Bodies) -> None:
    """Refuse (KekRefused) to run on a database these KEKs cannot read (privacy/keks.py)."""
    files = {k.id: Path(k.file) for k in config.privacy.kek_files}
    verify_keks(engines.writer, bodies.sealer, files)


def build_node(
    config: NodeConfig,
    *,
    clock: Callable[[], float],
    migrate_on_start: bool = True,
    record: bool = True,
) -> Node:
    keys = load_keys(config)
    signing_key = keys[config.node.active_kid]
    audit_signing = keys[config.node.audit_kid]
    if not isinstance(audit_signing.private, Ed25519PrivateKey):
        raise ValueError(f"audit key {config.node.audit_kid} must be an Ed25519 key")
    party = config.node.party
    subject_key = load_subject_key(config)
    bodies = load_bodies(config)
    engines = create_engines(config.database_url)
    try:
        if migrate_on_start:
            migrate.upgrade(engines.writer)
        check_bodies(config, engines, bodies)
    except BaseException:
        engines.dispose()
        raise
    registry = registry_from_config(config)
    limits = config.limits
    node = Node(
        config=config,
        party=party,
        registry=registry,
        signing_key=signing_key,
        signing_keys=keys,
        published=[keys[k].public() for k in config.effective_published_kids],
        audit_key=audit_signing.private,
        audit_name=log_origin(party),
        engines=engines,
        committer=None,  # type: ignore[arg-type]  # set just below: it needs the node's signer
        clock=clock,
        tokens=TokenStore([(t.name, t.role, bytes.fromhex(t.sha256)) for t in config.tokens]),
        policy=InboundPolicy(
            node_party=party,
            registry=registry,
            clock_skew=limits.clock_skew_seconds,
            max_depth=limits.max_json_depth,
            max_members=limits.max_json_members,
            max_observations=limits.max_observations,
            subject_key=subject_key,
            bodies=bodies,
        ),
        outbound=OutboundPolicy(
            node_party=party,
            registry=registry,
            key=signing_key,
            max_depth=limits.max_json_depth,
            max_members=limits.max_json_members,
            max_observations=limits.max_observations,
            subject_key=subject_key,
            bodies=bodies,
        ),
        signer=ReceiptSigner(party, signing_key, clock),
        refusal_limits=refusal_limits(config),
        sources=SourceRule(
            trusted_networks(config.listen.trusted_proxies), config.refusals.ipv6_prefix
        ),
        metrics=ExchangeMetrics(p.party for p in registry.partners()),
        subject_key=subject_key,
        bodies=bodies,
    )
    node.committer = GroupCommitter(
        engines,
        node=party,
        clock=clock,
        sign_checkpoint=node.sign_checkpoint,
        checkpoint_interval=config.audit.checkpoint_interval_seconds,
        prefetch=[prefetch_existing, prefetch_outbox],
        early_prefetch=[prefetch_existing],
        # Wait 1 ms for more requests before a small batch: larger batches, fewer commits.
        gather_seconds=0.001,
        on_commit=node.metrics.observe_commit,
    )
    node.committer.start()
    node.cosigner = build_cosigner(config, keys, registry, engines, node.committer, clock)
    node.submit = submit_settings(config)
    node.witnessing = None if node.submit is None else Witnessing.of(node.submit.policy)
    if record:
        record_config(node)
    return node


# What `config.changed` reports as added and removed.
CHANGE_KINDS = (
    "partner_keys",
    "own_keys",
    "active_kid",
    "audit_kid",
    "rules",
    "keks",
    "active_kek",
)


def record_config(node: Node) -> None:
    """Append config.loaded (and config.changed when keys or rules differ from last time)."""
    digest = config_digest(node.config)
    kids = sorted(
        f"{k.kid}{' (revoked)' if k.revoked else ''}"
        for p in node.registry.partners()
        for k in p.keys.values()
    )
    rules = sorted(r.id for p in node.registry.partners() for r in p.rules)
    state = {
        "digest": digest,
        "partner_keys": kids,
        "own_keys": sorted(node.signing_keys),
        "active_kid": [node.config.node.active_kid],
        "audit_kid": [node.config.node.audit_kid],
        "rules": rules,
        # Key-encryption keys by id only, and the active one (docs/privacy.md).
        "keks": sorted(k.id for k in node.config.privacy.kek_files),
        "active_kek": [a] if (a := node.config.privacy.effective_active_kek) else [],
    }
    with node.engines.reader.connect() as conn:
        row = conn.execute(select(node_state.c.value).where(node_state.c.key == "config")).first()
    previous = json.loads(row.value) if row else None
    events = [AuditEvent(ev.CONFIG_LOADED, "ok", detail={"digest": digest})]
    if previous is not None and previous != state:
        changed = {
            name: {
                "added": sorted(set(state[name]) - set(previous.get(name, []))),
                "removed": sorted(set(previous.get(name, [])) - set(state[name])),
            }
            for name in CHANGE_KINDS
        }
        events.append(AuditEvent(ev.CONFIG_CHANGED, "ok", detail={"digest": digest, **changed}))
    node.committer.run_sync(_StoreConfigState(events, json.dumps(state, sort_keys=True)))


class _StoreConfigState(AuditOnly):
    def __init__(self, events: list[AuditEvent], value: str) -> None:
        super().__init__(events)
        self.value = value

    def run(self, tx):  # type: ignore[no-untyped-def]
        index = super().run(tx)
        updated = tx.conn.execute(
            node_state.update().where(node_state.c.key == "config").values(value=self.value)
        )
        if updated.rowcount == 0:
            tx.conn.execute(node_state.insert().values(key="config", value=self.value))
        return index
