"""Auditors' reads are themselves logged: one `audit.query` entry per query, appended
before the answer is read (docs/auditors.md), by the API and the console alike."""

from __future__ import annotations

from typing import Any

from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.ledger.committer import AuditOnly, GroupCommitter


def query_event(auditor: str, endpoint: str, params: dict[str, Any]) -> AuditEvent:
    """The `audit.query` entry of `auditor` asking `endpoint` with `params` (None left out)."""
    detail: dict[str, Any] = {"endpoint": endpoint, "auditor": auditor}
    detail.update({k: v for k, v in params.items() if v is not None})
    return AuditEvent(ev.AUDIT_QUERY, "ok", detail=detail)


async def record_query(
    committer: GroupCommitter, auditor: str, endpoint: str, **params: Any
) -> None:
    """Append the query's entry to the log (committed before this returns)."""
    await committer.run(AuditOnly([query_event(auditor, endpoint, params)]))
