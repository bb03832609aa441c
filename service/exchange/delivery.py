"""The delivery worker: claims due outbox rows, posts them, verifies receipts, records attempts.

Claims are leases: a row is taken with `FOR UPDATE SKIP LOCKED` (PostgreSQL) or under
the database write lock (SQLite) and leased for `lease_seconds`, so several workers and
processes never send one message at once. A worker that crashes mid-send leaves a lease
that expires; the message is then sent again with the same bytes and the partner
answers idempotently with its original receipt.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx
from sqlalchemy import or_, select, update

from service.attachments.limits import declared_in
from service.attachments.store import AttachmentStore
from service.db.engine import Engines
from service.db.tables import messages, outbox, signed_versions
from service.exchange.attempts import (
    AttemptResult,
    AttemptUnit,
    RenewUnit,
    ResignUnit,
    SignedCopy,
)
from service.exchange.jobs import Job, Lease
from service.exchange.transfer import (
    Transfer,
    TransferFailed,
    parse_awaiting,
    timeout_extension,
)
from service.ledger.committer import GroupCommitter, Tx
from service.partners.registry import Partner, PartnerRegistry
from service.privacy.atrest import PLAINTEXT, Bodies
from service.protocol import envelope, jws
from service.protocol.keys import SigningKey
from service.protocol.mediatypes import JOSE
from service.protocol.problems import Problem
from service.protocol.receipts import ReceiptError, check_receipt, message_digest

log = logging.getLogger("migex.delivery")

# A file the partner refused for what it is, not for how it travelled: sending it
# again cannot succeed, so the message is marked failed (docs/protocol.md).
FINAL_UPLOAD_CODES = frozenset(
    {"attachment-media-type", "attachment-too-large", "attachments-not-allowed", "schema"}
)


@dataclass(frozen=True)
class DeliverySettings:
    concurrency: int = 8
    max_attempts: int = 10
    backoff_initial: float = 1.0
    backoff_max: float = 600.0
    timeout: float = 10.0
    lease_seconds: float = 60.0
    resign_after: float = 150.0
    poll_interval: float = 0.5


class DeliveryWorker:
    def __init__(
        self,
        *,
        engines: Engines,
        committer: GroupCommitter,
        registry: PartnerRegistry,
        key: SigningKey,
        clock: Callable[[], float],
        settings: DeliverySettings,
        transport: httpx.AsyncBaseTransport,
        owner: str,
        rand: random.Random | None = None,
        store: Callable[[], AttachmentStore] | None = None,
        bodies: Bodies = PLAINTEXT,
    ) -> None:
        self._engines = engines
        self._committer = committer
        self._registry = registry
        self._key = key
        self._clock = clock
        self.settings = settings
        self._transport = transport
        self._owner = owner
        self._bodies = bodies
        self._rand = rand or random.Random()  # noqa: S311 - jitter, not security
        self._store = store
        self._wake = asyncio.Event()
        self._recording: set[asyncio.Task[None]] = set()
        # What the worker holds, read by `reserve` between its rounds (one event loop).
        self._running = False
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._backlog: deque[Job] = deque()
        self._handed: deque[Job] = deque()
        # Set once a stopping worker gave back the leases it held (see `hand`).
        self._given_back = False
        self._reserved = 0
        self._new_rows = False  # `wake`: rows were queued that no one leased

    def wake(self) -> None:
        """There are due rows in the database that this worker may claim."""
        self._new_rows = True
        self._wake.set()

    # -- taking jobs from their queueing (jobs.Courier) ----------------------------
    def reserve(self) -> Lease | None:
        """A lease for a message about to be queued in this process, if the worker
        runs and holds fewer than twice `concurrency` jobs (in flight, waiting, handed or
        reserved), the bound its claims keep to.

        A claim under way is not counted: it asks for whatever room there was when it
        started, most often to find nothing due, and counting it would turn away the
        messages queued meanwhile, each of which would then need a claim of its own.
        So the jobs waiting may briefly exceed the bound by one claim's worth; those
        in flight never exceed `concurrency`."""
        held = len(self._inflight) + len(self._backlog) + len(self._handed) + self._reserved
        if not self._running or self._stopping.is_set() or held >= 2 * self.settings.concurrency:
            return None
        self._reserved += 1
        return Lease(self._owner, self.settings.lease_seconds)

    def hand(self, job: Job) -> None:
        """The job of a reserved message whose leased row is committed: sent before any claim.

        Its commit may come after the worker stopped (a queueing whose batch waited on a
        slow writer through the shutdown): then its lease is given back at once."""
        self._reserved -= 1
        if self._given_back:
            self._drained_later(self._give_back([job]))
            return
        self._handed.append(job)
        self._wake.set()

    def release(self) -> None:
        """A reserved message was not queued after all."""
        self._reserved -= 1

    async def run_forever(self, stopping: asyncio.Event) -> None:
        """Keep `concurrency` deliveries in flight. Jobs handed over by their queueing
        come first; claims run beside the deliveries and keep a backlog of up to
        `concurrency` leased jobs, so a freed slot starts at once."""
        self._running, self._stopping = True, stopping
        self._given_back = False
        try:
            await self._run(stopping)
        finally:
            # No slot is given once the worker has stopped, for whatever reason.
            self._running = False
        await self.drain()

    async def _run(self, stopping: asyncio.Event) -> None:
        inflight, backlog = self._inflight, self._backlog
        claiming: asyncio.Task[list[Job]] | None = None
        wanted = 0
        exhausted = False  # the last claim found less than it asked for
        claimed_at = 0.0
        limit = self.settings.concurrency
        while not stopping.is_set():
            backlog.extend(self._handed)
            self._handed.clear()
            while backlog and len(inflight) < limit:
                task = asyncio.create_task(self._deliver_logged(backlog.popleft()))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
            room = 2 * limit - len(inflight) - len(backlog) - self._reserved
            if claiming is None and not exhausted and (room >= max(1, limit // 4) or not inflight):
                wanted = max(room, 1)
                claiming = asyncio.create_task(self._committer.run(self._claim_unit(wanted)))
                claimed_at = time.monotonic()
            self._wake.clear()
            woken = asyncio.ensure_future(self._wake.wait())
            waiters: set[asyncio.Future[Any]] = {woken, *inflight}
            if claiming is not None:
                waiters.add(claiming)
            await asyncio.wait(
                waiters, timeout=self.settings.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
            woken.cancel()
            if claiming is not None and claiming.done():
                try:
                    jobs = claiming.result()
                except Exception:
                    log.exception("claiming due messages failed; retrying")
                    jobs = []
                claiming = None
                backlog.extend(jobs)
                exhausted = len(jobs) < wanted
            # Claim again on rows queued unleased (perhaps after the last claim read the
            # table), or once a poll interval has passed since the last claim (a retry
            # come due, another process's rows); not merely because a slot was freed,
            # as jobs handed over by their queueing keep freeing slots with no row due.
            if self._new_rows or time.monotonic() - claimed_at >= self.settings.poll_interval:
                self._new_rows = False
                exhausted = False
        if claiming is not None:
            [last] = await asyncio.gather(claiming, return_exceptions=True)
            if isinstance(last, list):
                backlog.extend(last)
        if inflight:
            await asyncio.gather(*inflight, return_exceptions=True)
        jobs = [*backlog, *self._handed]
        backlog.clear()
        self._handed.clear()
        # From here a job handed over is given back by `hand` itself.
        self._given_back = True
        await self._give_back(jobs)

    async def _give_back(self, jobs: list[Job]) -> None:
        """At a stop, the leases of jobs never started (claimed ahead, or handed over by
        their queueing) are given back, so that another process, or this one restarted,
        sends them at once rather than after `lease_seconds`. If that fails they expire,
        as a crashed worker's do."""
        if not jobs:
            return
        try:
            await self._committer.run(ReleaseUnit(self._owner, [job.pk for job in jobs]))
        except Exception:
            log.warning(
                "could not give back %d leases at stop; they expire after %g s",
                len(jobs),
                self.settings.lease_seconds,
            )

    def _drained_later(self, write: Coroutine[Any, Any, None]) -> None:
        """Run `write` beside the deliveries; `drain` waits for it."""
        task = asyncio.create_task(write)
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    async def drain(self) -> None:
        """Wait until every attempt whose answer came back is recorded."""
        while self._recording:
            await asyncio.gather(*self._recording, return_exceptions=True)

    async def _deliver_logged(self, job: Job) -> None:
        try:
            await self._deliver(job)
        except Exception:
            # The lease expires and the message is claimed again.
            log.exception("delivery of a message failed unexpectedly")

    async def run_once(self) -> int:
        """Claim the due messages (up to the concurrency) and deliver them; return how many."""
        jobs: list[Job] = await self._committer.run(self._claim_unit(None))
        if jobs:
            await asyncio.gather(*(self._deliver(job) for job in jobs))
            await self.drain()
        return len(jobs)

    # -- claiming --------------------------------------------------------------
    def _claim_unit(self, limit: int | None) -> ClaimUnit:
        return ClaimUnit(
            owner=self._owner,
            limit=self.settings.concurrency if limit is None else limit,
            lease_seconds=self.settings.lease_seconds,
            skip_locked=not self._engines.is_sqlite,
            bodies=self._bodies,
        )

    def _claim(self, limit: int | None = None) -> list[Job]:
        """Claim due messages from a thread other than the event loop's."""
        jobs: list[Job] = self._committer.run_sync(self._claim_unit(limit))
        return jobs

    # -- delivering ------------------------------------------------------------
    async def _deliver(self, job: Job) -> None:
        partner = self._registry.partner(job.recipient)
        now = self._clock()
        if partner is None:
            result = AttemptResult(
                "refused", None, "partner-removed", f"{job.recipient} is no longer configured"
            )
            await self._record(job, result, job.copies[-1], now)
            return
        copy = job.copies[-1]
        if now - copy.iat > self.settings.resign_after and not _names_attachments(copy):
            # (A message with attachments keeps its bytes: the partner holds it as
            # awaiting its files and takes those same bytes after the skew.)
            copy = await self._resign(job, copy, now)
        result = await self._post(partner, copy, job.pk)
        if result.outcome == "conflict":
            # An earlier copy reached the partner: re-send those exact bytes for its receipt.
            # A transient failure on the way leaves the message to be tried again.
            transient: AttemptResult | None = None
            for older in reversed(job.copies[:-1] if copy is job.copies[-1] else job.copies):
                retry = await self._post(partner, older, job.pk)
                if retry.outcome == "delivered":
                    result, copy = retry, older
                    break
                if retry.outcome == "retry" and transient is None:
                    transient = retry
            else:
                result = transient or replace(result, outcome="refused")
        # The slot is free once the partner has answered; the attempt is recorded
        # beside the next deliveries (the lease keeps the row from being claimed again
        # until then, and a crash before the record means a re-send, answered with 200).
        self._drained_later(self._record_logged(job, result, copy, self._clock()))

    async def _resign(self, job: Job, copy: SignedCopy, now: float) -> SignedCopy:
        env = replace(copy.env, iat=int(now))
        token = jws.sign_compact(self._key, envelope.encode_payload(env))
        fresh = SignedCopy(copy.version + 1, env.iat, message_digest(token), token, env)
        stored = self._bodies.message(token, env.iss, env.id)
        stored_version = self._bodies.version(token, env.id, fresh.version)
        await self._committer.run(ResignUnit(job.pk, fresh, stored, stored_version))
        return fresh

    async def _post(
        self, partner: Partner, copy: SignedCopy, job_pk: int, *, upload_token: str | None = None
    ) -> AttemptResult:
        """Post one signed copy; `upload_token`: the completion post of a message whose
        files the partner now holds (docs/protocol.md, 'The transfer', step 5)."""
        started = self._clock()
        timer = time.perf_counter()
        headers = {"Content-Type": JOSE}
        if upload_token is not None:
            # The partner then takes the bytes it validated at the first post as they are.
            headers["Authorization"] = f"Bearer {upload_token}"
        # The transport is called directly: a delivery needs none of the client's
        # cookies, redirects or authentication, and skipping them halves its cost.
        request = httpx.Request(
            "POST",
            _messages_url(partner.endpoint),
            content=copy.jws,
            headers=headers,
            extensions={"timeout": timeout_extension(self.settings.timeout)},
        )
        try:
            streamed = await self._transport.handle_async_request(request)
            try:
                resp = await _read_bounded(streamed)
            finally:
                await streamed.aclose()
        except httpx.HTTPError as exc:
            result = AttemptResult("retry", None, "transport", f"{type(exc).__name__}: {exc}"[:300])
        except AnswerTooLarge as exc:
            result = AttemptResult("retry", exc.status, "answer-too-large", str(exc))
        else:
            if resp.status_code == 202 and upload_token is None:
                return await self._send_attachments(partner, copy, resp, job_pk)
            result = self._classify(partner, copy, resp, started)
        return replace(result, duration_ms=(time.perf_counter() - timer) * 1000)

    def lease_keeper(self, job_pk: int) -> Callable[[], Awaitable[bool]]:
        """What a transfer awaits before each block: renews the lease on the message once
        a third of it has passed (by the node's clock); False once another worker holds it."""
        renewed = self._clock()

        async def keep() -> bool:
            nonlocal renewed
            now = self._clock()
            if now - renewed < self.settings.lease_seconds / 3:
                return True
            renewed = now
            held: bool = await self._committer.run(
                RenewUnit(job_pk, self._owner, self.settings.lease_seconds)
            )
            return held

        return keep

    async def _send_attachments(
        self, partner: Partner, copy: SignedCopy, resp: httpx.Response, job_pk: int
    ) -> AttemptResult:
        """The partner awaits the message's files (protocol v1.1): send what it lacks,
        from its offsets, then post the same bytes again for the receipt."""
        if self._store is None:
            return AttemptResult("refused", 202, "attachments", "this node keeps no files")
        sizes = {d.digest: d.size for d in declared_in(copy.env.body)}
        transfer = Transfer(
            self._transport,
            partner.endpoint,
            self._store(),
            self.settings.timeout,
            keep=self.lease_keeper(job_pk),
        )
        started = self._clock()
        try:
            answer = parse_awaiting(resp.content)
        except TransferFailed as exc:
            return AttemptResult("retry", exc.status, exc.code, str(exc))
        try:
            receipt = await transfer.send_all(answer, sizes)
        except TransferFailed as exc:
            if exc.status == 404:
                # The partner no longer awaits the message: most likely the upload that
                # completed it was taken and its answer lost. The post tells.
                return await self._post(partner, copy, job_pk, upload_token=answer.token)
            final = exc.code is not None and exc.code in FINAL_UPLOAD_CODES
            return AttemptResult("refused" if final else "retry", exc.status, exc.code, str(exc))
        except httpx.HTTPError as exc:
            return AttemptResult("retry", None, "transport", f"{type(exc).__name__}: {exc}"[:300])
        if receipt is not None:
            # The upload that stored the last file carried the receipt (step 4).
            took = httpx.Response(200, content=receipt)
            result = self._classify(partner, copy, took, started)
            if result.outcome == "delivered":
                return result
        return await self._post(partner, copy, job_pk, upload_token=answer.token)

    def _classify(
        self, partner: Partner, copy: SignedCopy, resp: httpx.Response, started: float
    ) -> AttemptResult:
        status = resp.status_code
        if status in (200, 201):
            try:
                index, receipt_digest = self._check_receipt(partner, copy, resp.content)
            except (Problem, ReceiptError) as exc:
                return AttemptResult("retry", status, "bad-receipt", str(exc)[:300])
            return AttemptResult(
                "delivered",
                status,
                None,
                None,
                receipt=resp.content,
                receipt_index=index,
                receipt_digest=receipt_digest,
            )
        code = _problem_code(resp)
        if status == 409:
            return AttemptResult("conflict", status, code, _detail(resp))
        if status in (408, 429) or status >= 500:
            return AttemptResult(
                "retry", status, code, _detail(resp), retry_after=_retry_after(resp, started)
            )
        return AttemptResult("refused", status, code, _detail(resp))

    def _check_receipt(self, partner: Partner, copy: SignedCopy, token: bytes) -> tuple[int, str]:
        parsed = jws.parse_compact(token)
        owner, key = self._registry.key_for(parsed.kid, parsed.alg)
        if owner.party != partner.party:
            raise Problem("unknown-key", f"receipt signed by {owner.party}, not {partner.party}")
        jws.verify(parsed, key.public)
        receipt = envelope.parse_payload(parsed.payload)
        sent = copy.env
        return check_receipt(receipt, sent=sent, sent_bytes=copy.jws), message_digest(token)

    async def _record_logged(
        self, job: Job, result: AttemptResult, copy: SignedCopy, now: float
    ) -> None:
        try:
            await self._record(job, result, copy, now)
        except Exception:
            # Unrecorded: the lease expires and the same bytes are sent again.
            log.exception("a delivery attempt could not be recorded")

    async def _record(self, job: Job, result: AttemptResult, copy: SignedCopy, now: float) -> None:
        delay = self._backoff(job.attempts + 1, result.retry_after)
        unit = AttemptUnit(
            job_pk=job.pk,
            message_id=job.message_id,
            recipient=job.recipient,
            attempt=job.attempts + 1,
            result=result,
            copy=copy,
            max_attempts=self.settings.max_attempts,
            next_at=now + delay,
            owner=self._owner,
            stored=self._stored_if_delivered(job, result, copy),
        )
        try:
            await self._committer.run(unit)
        except Problem as exc:
            # The database is unavailable: the lease expires and the message is tried again.
            log.warning("attempt not recorded: %s", exc.code)

    def _stored_if_delivered(
        self, job: Job, result: AttemptResult, copy: SignedCopy
    ) -> dict[str, Any]:
        """The delivered copy's columns as the message's body (sealed here, not under the lock)."""
        if result.outcome != "delivered":
            return {}
        sender = copy.env.iss
        return self._bodies.message(copy.jws, sender, job.message_id)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        base = min(s.backoff_max, s.backoff_initial * (2 ** (attempt - 1)))
        delay = base * (0.5 + self._rand.random())
        if retry_after is not None:
            delay = max(delay, retry_after)
        return float(min(delay, s.backoff_max))


def _names_attachments(copy: SignedCopy) -> bool:
    return bool(declared_in(copy.env.body))


@functools.lru_cache(maxsize=256)
def _messages_url(endpoint: str) -> httpx.URL:
    """A partner's `POST /v1/messages` URL, parsed once (httpx parses a string on
    every request)."""
    return httpx.URL(endpoint.rstrip("/") + "/v1/messages")


# A receipt or a problem document is a few kilobytes; a partner's answer is read up to
# this size and no further, so that a broken or hostile partner cannot exhaust memory.
MAX_ANSWER_BYTES = 1024 * 1024


class AnswerTooLarge(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"the partner's answer ({status}) is over {MAX_ANSWER_BYTES} bytes")
        self.status = status


async def _read_bounded(resp: httpx.Response) -> httpx.Response:
    """The answer with its body read, or AnswerTooLarge past MAX_ANSWER_BYTES."""
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise AnswerTooLarge(resp.status_code)
    body = bytearray()
    async for chunk in resp.aiter_bytes():  # decoded, so the bound holds after decoding
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise AnswerTooLarge(resp.status_code)
    decoded = ("content-encoding", "content-length", "transfer-encoding")
    headers = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in decoded]
    return httpx.Response(resp.status_code, headers=headers, content=bytes(body))


def _problem_code(resp: httpx.Response) -> str | None:
    if resp.headers.get("content-type", "").startswith("application/problem+json"):
        try:
            doc: Any = resp.json()
        except ValueError:
            return None
        code = doc.get("code") if isinstance(doc, dict) else None
        return str(code)[:40] if code is not None else None
    return None


def _detail(resp: httpx.Response) -> str:
    return resp.text[:300]


def _retry_after(resp: httpx.Response, now: float) -> float | None:
    """Seconds to wait from `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    value = resp.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class ReleaseUnit:
    """End `owner`'s leases on outbox rows it never started sending (still pending)."""

    owner: str
    pks: list[int]
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> int:
        o = outbox.c
        result = tx.conn.execute(
            update(outbox)
            .where(o.message_pk.in_(self.pks), o.lease_owner == self.owner, o.state == "pending")
            .values(lease_owner=None, lease_until=None)
        )
        return int(result.rowcount)

    def refused(self, tx: Tx, problem: Problem) -> None:
        """Nothing given back: the leases expire."""


@dataclass
class ClaimUnit:
    """Lease due messages to one worker, inside a group commit: claims share the batch's
    transaction and fsync instead of paying for their own."""

    owner: str
    limit: int
    lease_seconds: float
    skip_locked: bool
    bodies: Bodies = PLAINTEXT
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> list[Job]:
        o = outbox.c
        due = (
            select(o.message_pk)
            .where(
                o.state == "pending",
                o.next_attempt_at <= tx.now,
                or_(o.lease_until.is_(None), o.lease_until < tx.now),
            )
            .order_by(o.next_attempt_at)
            .limit(self.limit)
        )
        # Rows whose attempt is recorded in this batch keep their lease until it commits.
        recorded = list(tx.cache.outbox)
        if recorded:
            due = due.where(o.message_pk.not_in(recorded))
        if self.skip_locked:
            due = due.with_for_update(skip_locked=True)
        conn = tx.conn
        pks = [
            int(r[0])
            for r in conn.execute(
                update(outbox)
                .where(o.message_pk.in_(due.scalar_subquery()))
                .values(lease_owner=self.owner, lease_until=tx.now + self.lease_seconds)
                .returning(o.message_pk)
            )
        ]
        if not pks:
            return []
        rows = conn.execute(
            select(messages.c.pk, messages.c.message_id, messages.c.recipient, o.attempts)
            .join(outbox, o.message_pk == messages.c.pk)
            .where(messages.c.pk.in_(pks))
        ).all()
        ids = {int(r.pk): r.message_id for r in rows}
        copies: dict[int, list[SignedCopy]] = {pk: [] for pk in pks}
        for v in conn.execute(
            select(signed_versions)
            .where(signed_versions.c.message_pk.in_(pks))
            .order_by(signed_versions.c.message_pk, signed_versions.c.version)
        ).mappings():
            pk, version = int(v["message_pk"]), int(v["version"])
            token = self.bodies.open_version(v, ids[pk], version)
            if token is None:  # pragma: no cover - signed copies are deleted, never emptied
                continue
            copies[pk].append(SignedCopy(version, int(v["iat"]), v["digest"], token))
        return [
            Job(int(r.pk), r.message_id, r.recipient, int(r.attempts), copies[int(r.pk)])
            for r in rows
        ]

    def refused(self, tx: Tx, problem: Problem) -> None:
        """Nothing was claimed; the next round tries again."""
