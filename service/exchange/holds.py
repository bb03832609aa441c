"""Legal holds: while a case is held, no message of it is purged (exchange/retention.py).

A hold names a case by the agency's file number, the `case_reference` the bodies carry.
Placing and releasing one is a group-commit unit with its audit entry, which holds the
case reference's SHA-256 and the operator's name, not the reference or the reason (the
log is read by partners' auditors; the reason stays in the node's `legal_holds` table).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Connection, insert, select, update

from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.db.tables import legal_holds
from service.exchange.rows import case_digest
from service.ledger.committer import Tx
from service.protocol.problems import Problem
from service.records.fieldtypes import SINGLE_LINE_PATTERN

MAX_REASON = 2000
_REFERENCE = re.compile(SINGLE_LINE_PATTERN)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON text may carry
        return False
    return True


def check_case_reference(reference: str) -> str:
    """`reference` if a body could carry it as `case_reference`; Problem otherwise."""
    if len(reference) > 64 or not _REFERENCE.fullmatch(reference) or not _utf8(reference):
        raise Problem(
            "invalid-parameters",
            "case_reference must be 1 to 64 characters on one line, as in a record",
        )
    return reference


@dataclass(frozen=True)
class HoldUnit:
    """Place (`release` False) or release a legal hold on a case; audited."""

    case_reference: str
    operator: str
    reason: str = ""
    release: bool = False
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> dict[str, Any]:
        digest = case_digest(check_case_reference(self.case_reference))
        h = legal_holds.c
        row = tx.conn.execute(select(legal_holds).where(h.case_digest == digest)).first()
        active = row is not None and row.released_at is None
        if self.release:
            if not active:
                raise Problem("not-found", "no active legal hold on this case")
            tx.conn.execute(
                update(legal_holds)
                .where(h.case_digest == digest)
                .values(released_at=tx.now, released_by=self.operator)
            )
        else:
            if not self.reason.strip() or len(self.reason) > MAX_REASON or not _utf8(self.reason):
                raise Problem(
                    "invalid-parameters", f"give the hold's reason (1 to {MAX_REASON} characters)"
                )
            if active:
                raise Problem("invalid-parameters", "this case is already under a legal hold")
            values = {
                "case_reference": self.case_reference,
                "reason": self.reason,
                "placed_at": tx.now,
                "placed_by": self.operator,
                "released_at": None,
                "released_by": None,
            }
            if row is None:
                tx.conn.execute(insert(legal_holds).values(case_digest=digest, **values))
            else:
                tx.conn.execute(update(legal_holds).where(h.case_digest == digest).values(values))
        event = ev.LEGAL_HOLD_RELEASED if self.release else ev.LEGAL_HOLD_PLACED
        index = tx.audit.append(
            AuditEvent(
                event,
                "released" if self.release else "placed",
                detail={"case_digest": digest, "operator": self.operator},
            )
        )
        return {
            "case_reference": self.case_reference,
            "active": not self.release,
            "audit_index": index,
        }

    def refused(self, tx: Tx, problem: Problem) -> None:
        """A refused change changes nothing; the operator sees the problem."""


def active_holds(conn: Connection) -> list[dict[str, Any]]:
    """The holds in force, oldest first."""
    h = legal_holds.c
    rows = conn.execute(
        select(h.case_reference, h.reason, h.placed_at, h.placed_by)
        .where(h.released_at.is_(None))
        .order_by(h.placed_at, h.case_reference)
    )
    return [dict(row._mapping) for row in rows]
