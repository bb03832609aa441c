"""Rotating the key-encryption key over the attachment store's files (the part of
`migex privacy rotate-kek` after the database rows, service/privacy/rotation.py).

Each file is brought under the active KEK on its own and replaced by one rename
(service/attachments/sealed.py): a file in the clear is sealed, a file sealed under an
older KEK has its header's data key re-wrapped (its chunks are copied, not decrypted).
Each batch of files that needed work is then recorded in one `privacy.kek-rotated`
audit entry; a run stopped between files leaves each either done or not, and the next
run finds the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from service.attachments.sealed import AttachmentUnreadable
from service.attachments.store import FileStore
from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.ledger.committer import GroupCommitter, Tx
from service.privacy.sealing import SealError
from service.protocol.problems import Problem


@dataclass
class FilesUnit:
    """The audit entry of one batch of attachment files brought under the active KEK
    (each file was replaced by one rename before: a run stopped between files leaves
    each either done or not, and the next run finds the rest)."""

    event: AuditEvent
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> int:
        return tx.audit.append(self.event)

    def refused(self, tx: Tx, problem: Problem) -> None:
        """Nothing was changed; the files done stay done and are not found again."""


@dataclass
class FileCounts:
    sealed: int = 0
    rewrapped: int = 0
    old_keks: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return self.sealed + self.rewrapped


def rotate_files(
    committer: GroupCommitter,
    store: FileStore,
    *,
    operator: str,
    batch_size: int,
    after_batch: Callable[[FileCounts], None],
) -> None:
    """Seal the store's files in the clear and re-wrap those under older KEKs, one by
    one; each batch of `batch_size` files that needed work is audited, then given to
    `after_batch`."""
    sealer = store.sealer
    if sealer is None:
        raise ValueError("no KEK is configured to seal the attachment files under")
    batch = FileCounts()
    for digest in store.digests():
        try:
            under = store.sealed_under(digest)
            done = store.reseal(digest)
        except (AttachmentUnreadable, SealError) as exc:
            raise ValueError(f"attachment file {digest}: {exc}") from None
        if done is None:
            continue
        if done == "sealed":
            batch.sealed += 1
        else:
            batch.rewrapped += 1
            batch.old_keks.add(str(under))
        if batch.total == batch_size:
            _files_done(committer, batch, sealer.active, operator)
            after_batch(batch)
            batch = FileCounts()
    if batch.total:
        _files_done(committer, batch, sealer.active, operator)
        after_batch(batch)


def _files_done(committer: GroupCommitter, batch: FileCounts, active: str, operator: str) -> None:
    detail = {
        "to": active,
        "from": sorted(batch.old_keks),
        "rewrapped": {"attachments": batch.rewrapped},
        "sealed": {"attachments": batch.sealed},
        "operator": operator,
    }
    committer.run_sync(FilesUnit(AuditEvent(ev.PRIVACY_KEK_ROTATED, "rotated", detail=detail)))


def files_left(store: FileStore | None, active: str) -> tuple[int, frozenset[str]]:
    """How many stored files are not sealed under `active`, and the KEK ids they use."""
    if store is None:
        return 0, frozenset()
    under = [store.sealed_under(digest) for digest in store.digests()]
    used = frozenset(kek for kek in under if kek is not None)
    return sum(1 for kek in under if kek != active), used
