"""Open console sessions in the database, so that signing out holds on every process.

A sign-in writes a row keyed by the SHA-256 of the session's random id (the database
never holds the id itself, from which the session's CSRF tokens are derived); each
console request looks its row up by that key; signing out deletes it. A node's
processes share nothing but the database, so a cookie copied before its holder signed
out is refused by all of them. Rows of sessions whose token left the configuration are
deleted when a process starts, and expired rows at each sign-in.
Sign-in and sign-out are audited (`console.sign-in`, `console.sign-out`) in the same
transaction as their row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy import Connection, and_, delete, insert, not_, or_, select

from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.console.session import Session
from service.db.tables import console_sessions
from service.ledger.committer import Tx
from service.protocol.problems import Problem

PURGE_LIMIT = 1000  # expired rows deleted at one sign-in, so a sign-in stays cheap


def sid_digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def is_open(conn: Connection, session: Session, now: float) -> bool:
    """Whether the session's row is there (one primary-key lookup) and not expired."""
    s = console_sessions.c
    row = conn.execute(
        select(s.name, s.fingerprint, s.expires_at).where(s.sid_digest == sid_digest(session.sid))
    ).first()
    return (
        row is not None
        and (row.name, row.fingerprint) == (session.name, session.fingerprint)
        and now < float(row.expires_at)
    )


def _event(event: str, session: Session) -> AuditEvent:
    return AuditEvent(event, "ok", detail={"token": session.name, "role": session.role})


@dataclass
class OpenSession:
    """Record a new session and its `console.sign-in` entry; drop some expired rows."""

    session: Session
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> None:
        s = console_sessions.c
        expired = select(s.sid_digest).where(s.expires_at <= tx.now).limit(PURGE_LIMIT)
        tx.conn.execute(delete(console_sessions).where(s.sid_digest.in_(expired.scalar_subquery())))
        tx.conn.execute(
            insert(console_sessions).values(
                sid_digest=sid_digest(self.session.sid),
                name=self.session.name,
                fingerprint=self.session.fingerprint,
                opened_at=tx.now,
                expires_at=float(self.session.expires),
            )
        )
        tx.audit.append(_event(ev.CONSOLE_SIGN_IN, self.session))

    def refused(self, tx: Tx, problem: Problem) -> None:  # pragma: no cover - never refuses
        raise problem


@dataclass
class CloseSession:
    """Delete a session's row (its cookie is refused from now on) and audit the sign-out."""

    session: Session
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> None:
        s = console_sessions.c
        tx.conn.execute(
            delete(console_sessions).where(s.sid_digest == sid_digest(self.session.sid))
        )
        tx.audit.append(_event(ev.CONSOLE_SIGN_OUT, self.session))

    def refused(self, tx: Tx, problem: Problem) -> None:  # pragma: no cover - never refuses
        raise problem


@dataclass
class CloseUnconfigured:
    """Delete the sessions of every token that is not configured (any more) with the
    same name and digest: removing or replacing a token ends its sessions for good."""

    accounts: Mapping[str, tuple[str, str]]  # name -> (role, fingerprint)
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> int:
        s = console_sessions.c
        kept = [
            and_(s.name == name, s.fingerprint == fingerprint)
            for name, (_, fingerprint) in self.accounts.items()
        ]
        query = delete(console_sessions)
        if kept:
            query = query.where(not_(or_(*kept)))
        return int(tx.conn.execute(query).rowcount)

    def refused(self, tx: Tx, problem: Problem) -> None:  # pragma: no cover - never refuses
        raise problem
