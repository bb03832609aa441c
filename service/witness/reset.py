"""As a witness: forget what was cosigned of one log, openly.

A witness refuses every checkpoint that does not extend the one it cosigned last;
that is its whole purpose. A log restored from a backup is, to its witnesses, a
rewritten log, and stays unwitnessed for good unless each witness's operator,
told out of band why the log went back, decides to start again from the restored
log. `ResetUnit` does that in one transaction: the log's stored state is deleted
and a `witness.log-reset` audit entry keeps the checkpoint cosigned before (with
this witness's cosignature), the operator and the reason. The next checkpoint of
the log is then taken as a first one, as when the log was first witnessed.

The reset cannot be hidden: it is an entry of this witness's own log, which its
own witnesses cosign, and the cosigned checkpoint it replaces is in it. An auditor
who sees two cosigned views of a log from the same witness finds the entry that
explains the second (docs/auditors.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import delete

from service.audit.entries import AuditEvent
from service.db.tables import witness_logs
from service.ledger.committer import Tx
from service.protocol.problems import Problem
from service.witness import store
from service.witness.checks import party_of

WITNESS_LOG_RESET = "witness.log-reset"
MAX_REASON = 500


def check_reason(reason: str) -> str:
    """The reason, one line of 1 to MAX_REASON characters; Problem otherwise."""
    text = reason.strip()
    if not text or len(text) > MAX_REASON or any(ch in text for ch in "\r\n\x00"):
        raise Problem(
            "invalid-parameters",
            f"give the reason for the reset on one line (1 to {MAX_REASON} characters)",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Problem("invalid-parameters", "the reason is not valid text") from None
    return text


@dataclass(frozen=True)
class ResetUnit:
    """Delete this witness's state for ``origin``; audit it with the old checkpoint."""

    origin: str
    operator: str
    reason: str
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> dict[str, Any]:
        reason = check_reason(self.reason)
        latest = store.read_latest(tx.conn, self.origin, lock=True)
        if latest is None:
            raise Problem("not-found", f"this node has cosigned no checkpoint of {self.origin!r}")
        tx.conn.execute(delete(witness_logs).where(witness_logs.c.origin == self.origin))
        index = tx.audit.append(
            AuditEvent(
                WITNESS_LOG_RESET,
                "reset",
                party=party_of(self.origin),
                detail={
                    "origin": self.origin,
                    "size": str(latest.size),
                    "cosigned": latest.note,
                    "operator": self.operator,
                    "reason": reason,
                },
            )
        )
        return {"origin": self.origin, "forgotten_size": latest.size, "audit_index": index}

    def refused(self, tx: Tx, problem: Problem) -> None:
        """A refused reset changes nothing; the operator sees the problem."""
