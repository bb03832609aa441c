"""What the delivery worker works on, and how a queueing hands it work directly.

A `Job` is a message leased to one worker: taken by a claim (`ClaimUnit`) or, when the
worker had a free slot as the message was queued, by the queueing unit itself
(`QueueUnit` with a `Lease`), which then hands the job over in memory. Both write the
same lease (`lease_owner`, `lease_until`), so a message handed over is, to every other
worker and process, a claimed message like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from service.exchange.attempts import SignedCopy


@dataclass(frozen=True)
class Job:
    pk: int
    message_id: str
    recipient: str
    attempts: int
    copies: list[SignedCopy]  # oldest first


@dataclass(frozen=True)
class Lease:
    """The lease a queueing unit writes on its outbox row: `owner` until the batch's
    time plus `seconds`, as a claim by `owner` would."""

    owner: str
    seconds: float


class Courier(Protocol):
    """A delivery worker that takes messages straight from their queueing.

    `reserve` is asked before the message is queued and gives a lease only while the
    worker runs and has room for one more job; each lease given is then either handed
    over (`hand`, once its row is committed) or given back (`release`, if it was not)."""

    def reserve(self) -> Lease | None: ...

    def hand(self, job: Job) -> None: ...

    def release(self) -> None: ...
