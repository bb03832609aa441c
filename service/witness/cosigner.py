"""This node as a witness: check a submitted checkpoint, record it, cosign it.

The check against the latest cosigned checkpoint and its replacement happen in
one transaction with the log's row locked (`SELECT ... FOR UPDATE` on PostgreSQL;
SQLite's writer transactions are exclusive), and commit before the answer, so two
concurrent submissions can never roll a log back (C2SP tlog-witness, the race of
requests A and B). Signatures are verified before, outside the transaction.

A validly signed checkpoint that contradicts the latest cosigned one is kept as
evidence: the log's inconsistency count goes up (an alert metric) and an audit
entry `witness.inconsistent` records both checkpoints.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import IntegrityError

from service.audit.checkpoint import Checkpoint
from service.audit.entries import AuditEvent
from service.db.engine import Engines
from service.ledger.committer import AuditOnly, GroupCommitter
from service.ledger.ratelimit import RateBuckets
from service.protocol.b64 import b64_encode
from service.witness import store
from service.witness.checks import (
    NEVER_COSIGNED,
    Latest,
    Refusal,
    check_consistency,
    check_request,
    origin_of,
    party_of,
    verify_signed,
)
from service.witness.cosignature import CosignerKey, cosign
from service.witness.protocol import AddCheckpoint, WitnessProtocolError, parse_request

log = logging.getLogger("migex.witness")

WITNESS_INCONSISTENT = "witness.inconsistent"
_ATTEMPTS = 3


@dataclass(frozen=True)
class WitnessSettings:
    """Who this node is as a witness and which logs it witnesses, by origin."""

    name: str
    key: Ed25519PrivateKey
    logs: Mapping[str, Sequence[str]]
    per_second: float
    burst: int

    @property
    def vkey(self) -> str:
        return CosignerKey(self.name, self.key.public_key()).vkey


class Cosigner:
    def __init__(
        self,
        settings: WitnessSettings,
        engines: Engines,
        committer: GroupCommitter,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self._engines = engines
        self._committer = committer
        self._clock = clock

    def add_checkpoint(self, body: bytes) -> str:
        """Answer one add-checkpoint request: the cosignature line, or raise Refusal."""
        try:
            request = parse_request(body)
        except WitnessProtocolError as exc:
            raise Refusal(400, "bad-request", str(exc)) from None
        origin = origin_of(request.note)
        cp, text = verify_signed(request.note, origin, self.settings.logs)
        self._take_token(origin)
        check_request(request, cp)
        for attempt in range(_ATTEMPTS):
            try:
                return self._check_and_record(request, cp, text, origin)
            except IntegrityError:
                # Another process stored this log's first checkpoint meanwhile: decide again.
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _take_token(self, origin: str) -> None:
        s = self.settings
        for attempt in range(_ATTEMPTS):
            try:
                with self._engines.writer.begin() as conn:
                    rates = RateBuckets(conn, self._clock(), lock=True)
                    wait = rates.take(bucket_key(origin), per_second=s.per_second, burst=s.burst)
                    rates.flush()
                break
            except IntegrityError:
                if attempt == _ATTEMPTS - 1:
                    raise
        if wait is not None:
            raise Refusal(
                429, "rate-limited", f"too many checkpoints of {origin}; retry in {wait:.1f} s"
            )

    def _check_and_record(
        self, request: AddCheckpoint, cp: Checkpoint, text: str, origin: str
    ) -> str:
        """Check against the latest cosigned checkpoint and replace it, atomically.

        The stored note is the request's with this witness's cosignature appended, so
        an auditor can later show what this witness saw (`/v1/audit/witnessed`).
        """
        refusal: Refusal | None = None
        line = ""
        with self._engines.writer.begin() as conn:
            now = self._clock()
            stored = store.read_latest(conn, origin, lock=True)
            latest = stored or NEVER_COSIGNED
            try:
                check_consistency(request, cp, latest)
            except Refusal as exc:
                refusal = exc
                if exc.evidence:
                    store.count_inconsistent(conn, origin, now)
            else:
                line = cosign(text, self.settings.name, self.settings.key, int(now))
                cosigned = request.note + line
                store.save_latest(conn, origin, cp, cosigned, now, exists=stored is not None)
        if refusal is None:
            return line
        if refusal.evidence:
            log.warning("log %s submitted an inconsistent checkpoint: %s", origin, refusal.detail)
            self._committer.run_sync(AuditOnly([evidence_event(origin, request, latest, refusal)]))
        raise refusal


def evidence_event(
    origin: str, request: AddCheckpoint, latest: Latest, refusal: Refusal
) -> AuditEvent:
    """The audit entry that keeps both checkpoints of an inconsistent submission."""
    return AuditEvent(
        WITNESS_INCONSISTENT,
        "refused",
        party=party_of(origin),
        code=refusal.code,
        detail={
            "origin": origin,
            "reason": refusal.detail,
            "old_size": str(request.old_size),
            "proof": [b64_encode(h) for h in request.proof],
            "submitted": request.note,
            "cosigned": latest.note,
        },
    )


def bucket_key(origin: str) -> str:
    """The rate bucket of a witnessed log (bucket keys are at most 40 characters)."""
    key = f"witness:{origin}"
    if len(key) <= 40:
        return key
    return "witness:#" + hashlib.sha256(origin.encode()).hexdigest()[:31]
