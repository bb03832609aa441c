"""What the node's checkpoints gathered: cosigned notes, the policy's state, metrics.

Read at request or scrape time from the database, so every process answers alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import SQLAlchemyError

from service.db.engine import Engines
from service.db.tables import checkpoints, witness_cosignatures
from service.witness import store
from service.witness.policy import Policy
from service.witness.submitter import peer_id

# How many recent cosignatures are searched for the newest checkpoint meeting the policy.
SCAN_COSIGNATURES = 2000


@dataclass(frozen=True)
class Witnessing:
    """The policy and the row key of each of its witnesses (see `submitter.peer_id`)."""

    policy: Policy
    names: Mapping[str, str]  # peer id -> the witness's name in the policy

    @classmethod
    def of(cls, policy: Policy) -> Witnessing:
        return cls(policy, {peer_id(w.key): name for name, w in policy.witnesses.items()})

    def met(self, peers: set[str]) -> bool:
        return self.policy.met_by({self.names[p] for p in peers if p in self.names})


def with_cosignatures(cp: store.StoredCheckpoint, lines: Mapping[str, str]) -> str:
    """The checkpoint note with every stored cosignature line appended."""
    return cp.note + "".join(lines[w] for w in sorted(lines))


def newest_met(
    conn: Connection, witnessing: Witnessing
) -> tuple[store.StoredCheckpoint, dict[str, str]] | None:
    """The newest checkpoint whose stored cosignatures meet the policy, with them."""
    c = witness_cosignatures.c
    rows = conn.execute(
        select(c.checkpoint_pk, c.witness).order_by(c.checkpoint_pk.desc()).limit(SCAN_COSIGNATURES)
    ).all()
    by_pk: dict[int, set[str]] = {}
    for pk, witness in rows:
        by_pk.setdefault(int(pk), set()).add(str(witness))
    for pk in sorted(by_pk, reverse=True):
        if witnessing.met(by_pk[pk]):
            cp = store.checkpoint_by_pk(conn, pk)
            if cp is not None:
                return cp, store.cosignatures(conn, [pk]).get(pk, {})
    return None


def cosigned_checkpoint(
    conn: Connection, witnessing: Witnessing | None, *, size: int | None, witnessed: bool
) -> str | None:
    """A checkpoint note with its cosignatures: the newest, the one of ``size``, or
    (``witnessed``) the newest that meets the policy. None if there is none."""
    if witnessed:
        if witnessing is None:
            return None
        found = newest_met(conn, witnessing)
        return None if found is None else with_cosignatures(*found)
    cp = store.latest_checkpoint(conn) if size is None else store.checkpoint_by_size(conn, size)
    if cp is None:
        return None
    return with_cosignatures(cp, store.cosignatures(conn, [cp.pk]).get(cp.pk, {}))


def unwitnessed_since(conn: Connection, met: store.StoredCheckpoint | None) -> float | None:
    """When the oldest checkpoint newer than ``met`` was issued; None if there is none."""
    c = checkpoints.c
    query = select(func.min(c.issued_at))
    if met is not None:
        query = query.where(c.pk > met.pk, c.size > met.size)
    value = conn.execute(query).scalar()
    return None if value is None else float(value)


class WitnessCollector(Collector):
    """Witnessing gauges, read from the database at scrape time (docs/operators.md)."""

    def __init__(
        self, engines: Engines, clock: Callable[[], float], witnessing: Witnessing | None
    ) -> None:
        self._engines = engines
        self._clock = clock
        self._witnessing = witnessing

    def collect(self) -> Iterator[Metric]:
        try:
            families = self._read()
        except SQLAlchemyError:
            return  # migex_database_up already says so
        yield from families

    def _read(self) -> list[Metric]:
        now = self._clock()
        families: list[Metric] = []
        with self._engines.reader.connect() as conn:
            logs = store.log_states(conn)
            if self._witnessing is not None:
                families += self._own_log(conn, self._witnessing, now)
        size = GaugeMetricFamily(
            "migex_witnessed_log_size",
            "As a witness: tree size of the latest checkpoint cosigned, by log origin.",
            labels=("origin",),
        )
        bad = GaugeMetricFamily(
            "migex_witnessed_log_inconsistent",
            "As a witness: validly signed checkpoints refused as inconsistent, by log origin "
            "(each kept as evidence in the audit log). Alert on any increase.",
            labels=("origin",),
        )
        for state in logs:
            if state.size > 0:
                size.add_metric([state.origin], float(state.size))
            bad.add_metric([state.origin], float(state.inconsistent))
        return [*families, size, bad]

    def _own_log(self, conn: Connection, witnessing: Witnessing, now: float) -> list[Metric]:
        found = newest_met(conn, witnessing)
        met = None if found is None else found[0]
        age = GaugeMetricFamily(
            "migex_witness_checkpoint_age_seconds",
            "Seconds since the newest checkpoint that meets the witness policy was issued "
            "(absent before the first).",
        )
        if met is not None:
            age.add_metric([], max(0.0, now - met.issued_at))
        since = unwitnessed_since(conn, met)
        waiting = GaugeMetricFamily(
            "migex_witness_unwitnessed_seconds",
            "Seconds the oldest checkpoint newer than the newest one meeting the witness "
            "policy has waited (0 when the newest checkpoint meets it).",
        )
        waiting.add_metric([], 0.0 if since is None else max(0.0, now - since))
        success = GaugeMetricFamily(
            "migex_witness_last_success_timestamp_seconds",
            "Unix time of the last cosignature gathered from each witness.",
            labels=("witness",),
        )
        error = GaugeMetricFamily(
            "migex_witness_last_error_timestamp_seconds",
            "Unix time of the last failed submission to each witness.",
            labels=("witness",),
        )
        failures = GaugeMetricFamily(
            "migex_witness_consecutive_failures",
            "Failed submissions to each witness since its last success.",
            labels=("witness",),
        )
        cosigned = GaugeMetricFamily(
            "migex_witness_cosigned_size",
            "Tree size each witness last cosigned, as far as this node knows.",
            labels=("witness",),
        )
        for ident, peer in sorted(store.read_peers(conn).items()):
            name = witnessing.names.get(ident)
            if name is None:
                continue  # a witness no longer in the policy
            if peer.last_success_at is not None:
                success.add_metric([name], peer.last_success_at)
            if peer.last_error_at is not None:
                error.add_metric([name], peer.last_error_at)
            failures.add_metric([name], float(peer.failures))
            cosigned.add_metric([name], float(peer.size))
        return [age, waiting, success, error, failures, cosigned]
