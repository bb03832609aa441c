"""This node's log, witnessed: submit each new checkpoint to the configured witnesses.

An asyncio task beside the delivery worker. It reads new checkpoints from the
database (the group-commit writer only signs and stores them), so witnessing never
holds the writer's lock and never slows the exchange: a witness that is down only
delays its own cosignature.

Each round takes the newest checkpoint and submits it, in parallel, to every
witness that is free and due, so the witnesses cosign the same checkpoint. Per
C2SP tlog-witness the request carries the size the witness last cosigned and a
consistency proof from it; a 409 answer says that size (learned, stored, and the
request sent again). Each cosignature is verified against the witness's pinned key
before it is stored with the checkpoint. Failures back off exponentially.

What is known of each witness (the size it cosigned, its backoff, a lease that
keeps two processes from submitting to one witness at once) lives in the
database, shared by every process of the node; nothing lives only in memory but a
cache of what is already done.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
from sqlalchemy import Connection, Engine

from service.audit import store as audit_store
from service.audit.note import NoteError, split_note
from service.db.engine import Engines
from service.witness import store
from service.witness.cosignature import CosignatureError, CosignerKey, is_by, parse_cosignature
from service.witness.cosignature import verify_cosignature as verify_parsed
from service.witness.policy import Policy, Witness
from service.witness.protocol import (
    ADD_CHECKPOINT_PATH,
    SIZE_MEDIA_TYPE,
    WitnessProtocolError,
    parse_cosignatures,
    parse_size,
    render_request,
)

log = logging.getLogger("migex.witnessing")
T = TypeVar("T")

_MAX_409_ROUNDS = 3
_MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class SubmitSettings:
    policy: Policy
    timeout: float
    backoff_initial: float
    backoff_max: float
    poll: float = 0.05


def peer_id(key: CosignerKey) -> str:
    """A witness's row key: its key name and key id (a new key starts afresh)."""
    return f"{key.name}+{key.key_id:08x}"


@dataclass(frozen=True)
class _Held:
    size: int
    until: float


class SubmitError(Exception):
    """One submission failed; the message is stored as the witness's last error."""


class _WitnessAhead(SubmitError):
    """The witness cosigned a size beyond the checkpoint being submitted."""

    def __init__(self, size: int, ours: int) -> None:
        super().__init__(
            f"the witness cosigned size {size}, beyond this log's newest checkpoint "
            f"({ours}): the log was rolled back or rewritten"
        )
        self.size = size


class Submitter:
    def __init__(
        self,
        settings: SubmitSettings,
        engines: Engines,
        clock: Callable[[], float],
        http: httpx.AsyncClient,
        owner: str,
    ) -> None:
        self.settings = settings
        self._engines = engines
        self._clock = clock
        self._http = http
        self._owner = owner
        self.witnesses = [w for w in settings.policy.witnesses.values() if w.url]
        self._done: dict[str, int] = {}
        self._busy: dict[str, asyncio.Task[None]] = {}
        self._not_before: dict[str, float] = {}
        # Leases this process holds, with the size the witness cosigned: valid only
        # while the lease is (the database row says the same; no other process writes it).
        self._held: dict[str, _Held] = {}

    async def run_forever(self, stopping: asyncio.Event) -> None:
        await asyncio.to_thread(self._ensure_peers)
        try:
            while not stopping.is_set():
                try:
                    newest = await asyncio.to_thread(self._newest)
                    if newest is not None:
                        self.start_round(newest)
                except Exception:  # the database may be away; try again next poll
                    log.exception("witnessing round failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self.settings.poll)
        finally:
            for task in self._busy.values():
                task.cancel()
            await asyncio.gather(*self._busy.values(), return_exceptions=True)

    def start_round(self, newest: store.StoredCheckpoint) -> list[asyncio.Task[None]]:
        """Submit ``newest`` to every witness that is free, due and has not cosigned it."""
        now = self._clock()
        started = []
        for witness in self.witnesses:
            ident = peer_id(witness.key)
            busy = self._busy.get(ident)
            if busy is not None and not busy.done():
                continue
            if self._done.get(ident, -1) >= newest.pk or self._not_before.get(ident, 0) > now:
                continue
            task = asyncio.create_task(self.submit(witness, newest))
            self._busy[ident] = task
            started.append(task)
        return started

    async def submit(self, witness: Witness, cp: store.StoredCheckpoint) -> None:
        """One submission of ``cp`` to ``witness``, under the witness's lease.

        After a success the lease is kept (renewed with each success), so the next
        checkpoint needs no transaction to claim it; a failure releases it.
        """
        ident = peer_id(witness.key)
        now = self._clock()
        lease = now + self._lease_seconds()
        held = self._held.get(ident)
        if held is not None and held.until > now + self.settings.timeout:
            size, failures = held.size, 0
        else:
            self._held.pop(ident, None)
            peer = await self._db(lambda c: store.claim(c, ident, self._owner, now, lease))
            if peer is None:  # another process has it, or it is backing off
                self._not_before[ident] = now + self.settings.poll * 4
                return
            if peer.cosigned_pk is not None and peer.cosigned_pk >= cp.pk:
                self._done[ident] = peer.cosigned_pk
                await self._db(lambda c: store.release(c, ident, self._owner))
                return
            size, failures = peer.size, peer.failures
        try:
            try:
                line, timestamp = await self._exchange(witness, ident, size, cp)
            except _WitnessAhead as ahead:
                # Another process may have submitted a newer checkpoint than this round's.
                newer = await asyncio.to_thread(self._newest)
                if newer is None or newer.size < ahead.size:
                    raise SubmitError(str(ahead)) from None
                cp = newer
                line, timestamp = await self._exchange(witness, ident, ahead.size, cp)
        except SubmitError as exc:
            await self._failed(witness, ident, failures, str(exc))
            return
        except Exception as exc:  # never let one witness stop the loop
            log.exception("submission to witness %s failed", witness.name)
            await self._failed(witness, ident, failures, f"internal error: {type(exc).__name__}")
            return
        done_at = self._clock()
        keep = done_at + self._lease_seconds()
        kept = await self._db(
            lambda c: store.record_success(
                c,
                ident,
                self._owner,
                checkpoint_pk=cp.pk,
                size=cp.size,
                line=line,
                timestamp=timestamp,
                now=done_at,
                keep_until=keep,
            )
        )
        if kept:
            self._held[ident] = _Held(cp.size, keep)
        self._done[ident] = cp.pk
        self._not_before.pop(ident, None)

    def _lease_seconds(self) -> float:
        return 3 * self.settings.timeout + 5

    async def _exchange(
        self, witness: Witness, ident: str, old: int, cp: store.StoredCheckpoint
    ) -> tuple[str, int]:
        body_text = _note_body(cp.note)
        for _ in range(_MAX_409_ROUNDS):
            if old > cp.size:
                raise _WitnessAhead(old, cp.size)
            proof = await asyncio.to_thread(self._proof, old, cp.size)
            answer = await self._post(witness, render_request(old, proof, cp.note))
            if answer.status_code == 200:
                return _cosignature(answer.content, body_text, witness)
            if answer.status_code == 409 and _media_type(answer) == SIZE_MEDIA_TYPE:
                try:
                    old = parse_size(answer.content)
                except WitnessProtocolError as exc:
                    raise SubmitError(f"malformed 409 answer: {exc}") from None
                await self._db(
                    functools.partial(store.record_size, witness=ident, owner=self._owner, size=old)
                )
                held = self._held.get(ident)
                if held is not None:
                    self._held[ident] = _Held(old, held.until)
                continue
            raise SubmitError(_describe(answer))
        raise SubmitError("the witness's cosigned size kept changing")

    async def _post(self, witness: Witness, body: bytes) -> httpx.Response:
        url = f"{witness.url}{ADD_CHECKPOINT_PATH}"
        try:
            async with self._http.stream(
                "POST", url, content=body, timeout=self.settings.timeout
            ) as response:
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > _MAX_ANSWER_BYTES:
                        raise SubmitError("the witness's answer is larger than 64 KiB")
                return httpx.Response(
                    response.status_code, headers=response.headers, content=bytes(data)
                )
        except httpx.TimeoutException:
            raise SubmitError(f"no answer within {self.settings.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise SubmitError(f"cannot reach the witness: {type(exc).__name__}") from None

    async def _failed(self, witness: Witness, ident: str, failures: int, error: str) -> None:
        self._held.pop(ident, None)
        now = self._clock()
        s = self.settings
        delay = min(s.backoff_max, s.backoff_initial * 2 ** min(failures, 30))
        log.warning("witness %s: %s; next attempt in %.1f s", witness.name, error, delay)
        self._not_before[ident] = now + delay
        await self._db(
            lambda c: store.record_failure(
                c, ident, self._owner, error=error, now=now, retry_at=now + delay
            )
        )

    # -- database (worker threads) ---------------------------------------------------
    async def _db(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one writer transaction, in a worker thread."""
        return await asyncio.to_thread(self._in_tx, work)

    def _in_tx(self, work: Callable[[Connection], T]) -> T:
        with self._engines.writer.begin() as conn:
            return work(conn)

    def _ensure_peers(self) -> None:
        with self._engines.writer.begin() as conn:
            store.ensure_peers(conn, [peer_id(w.key) for w in self.witnesses])

    def _newest(self) -> store.StoredCheckpoint | None:
        with self._reader().connect() as conn:
            return store.latest_checkpoint(conn)

    def _proof(self, old: int, new: int) -> list[bytes]:
        if old == 0 or old == new:
            return []
        with self._reader().connect() as conn:
            return audit_store.consistency_proof(conn, old, new)

    def _reader(self) -> Engine:
        return self._engines.reader


def _note_body(note: str) -> str:
    try:
        return split_note(note)[0]
    except NoteError as exc:  # pragma: no cover - the node signed it
        raise SubmitError(f"the stored checkpoint is malformed: {exc}") from None


def _cosignature(content: bytes, body: str, witness: Witness) -> tuple[str, int]:
    """The witness's verified cosignature line among the answer's lines, and its time."""
    try:
        lines = parse_cosignatures(content)
    except WitnessProtocolError as exc:
        raise SubmitError(f"malformed 200 answer: {exc}") from None
    for line in lines:
        try:
            cosig = parse_cosignature(line)
        except CosignatureError:
            continue  # not a cosignature/v1 line: another type the witness also makes
        if not is_by(cosig, witness.key):
            continue
        try:
            return line, verify_parsed(body, cosig, witness.key)
        except CosignatureError as exc:
            raise SubmitError(f"the cosignature does not verify: {exc}") from None
    raise SubmitError("the answer has no cosignature by the pinned witness key")


def _media_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";")[0].strip().lower()


def _describe(response: httpx.Response) -> str:
    """A short description of a refusal: the status, and the problem code if any."""
    code = ""
    if _media_type(response) == "application/problem+json":
        with contextlib.suppress(ValueError):
            doc = response.json()
            if isinstance(doc, dict) and isinstance(doc.get("code"), str):
                code = f" ({doc['code'][:40]})"
    return f"HTTP {response.status_code}{code}"
