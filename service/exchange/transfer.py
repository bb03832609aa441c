"""The sender's side of an attachment transfer (docs/protocol.md, 'The transfer'):
after the partner answered `202`, each file is sent from the offset the partner holds,
streamed from the store in constant memory; a broken connection is resumed from the
partner's new offset, so only the rest is sent again."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx

from service.attachments.sealed import AttachmentUnreadable
from service.attachments.store import READ_SIZE, AttachmentStore
from service.protocol.mediatypes import JOSE, essence
from service.protocol.problems import Problem

TUS_VERSION: Final = "1.0.0"
# What a sender asks with for the receipt in the answer to the upload that completes its
# message (RFC 7240; docs/protocol.md, 'The transfer', step 4).
RETURN_RECEIPT: Final = "return=representation"
# Resumptions of one file within one delivery attempt before the attempt is given up
# (the next attempt resumes again from the partner's offset).
MAX_RESUMES: Final = 5


class TransferFailed(Exception):
    """The transfer did not finish: the delivery is retried later, from the held offsets."""

    def __init__(self, detail: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Upload:
    digest: str
    url: str
    offset: int


@dataclass(frozen=True)
class AwaitingAnswer:
    token: str
    uploads: list[Upload]


def parse_awaiting(content: bytes) -> AwaitingAnswer:
    """The partner's 202 answer, or TransferFailed if it is not one."""
    try:
        doc: Any = json.loads(content)
        token = doc["upload_token"]
        uploads = [
            Upload(str(a["digest"]), str(a["url"]), int(a["offset"])) for a in doc["attachments"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise TransferFailed(f"the partner's 202 answer is not an upload offer: {exc}") from None
    if not isinstance(token, str) or any(not u.url.startswith("/") for u in uploads):
        raise TransferFailed("the partner's 202 answer has no token or a non-local upload URL")
    return AwaitingAnswer(token, uploads)


async def _always_held() -> bool:
    return True


@dataclass
class Transfer:
    """Send the files of one message to one partner over `transport`.

    `keep` is awaited before each block is sent: the delivery worker renews its lease
    on the message there, and a False answer (another worker holds the message now)
    stops the transfer, so that no two workers ever send one message at once.
    """

    transport: httpx.AsyncBaseTransport
    endpoint: str
    store: AttachmentStore
    timeout: float
    keep: Callable[[], Awaitable[bool]] = _always_held

    async def send_all(self, answer: AwaitingAnswer, sizes: dict[str, int]) -> bytes | None:
        """Send what the partner lacks; the receipt if the upload that stored the last
        missing file carried it (step 4), else None (the completion post gets it)."""
        receipt: bytes | None = None
        for upload in answer.uploads:
            size = sizes.get(upload.digest)
            if size is None:
                raise TransferFailed(f"the partner asks for {upload.digest}, which was not sent")
            if upload.offset < size:
                receipt = await self._send_file(answer.token, upload, size)
        return receipt

    async def _send_file(self, token: str, upload: Upload, size: int) -> bytes | None:
        offset = upload.offset
        for _ in range(MAX_RESUMES):
            try:
                offset, receipt = await self._patch(token, upload, offset, size)
            except httpx.TransportError:
                offset = await self._held(token, upload)
                continue
            if offset >= size:
                return receipt
        raise TransferFailed(f"{upload.digest}: the connection broke {MAX_RESUMES} times")

    def _request(self, method: str, url: str, **kw: Any) -> httpx.Request:
        return httpx.Request(
            method,
            self.endpoint.rstrip("/") + url,
            extensions={"timeout": timeout_extension(self.timeout)},
            **kw,
        )

    async def _held(self, token: str, upload: Upload) -> int:
        """HEAD: the bytes the partner holds durably."""
        headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": TUS_VERSION}
        resp = await self._send(self._request("HEAD", upload.url, headers=headers))
        value = resp.headers.get("upload-offset", "")
        if resp.status_code != 200 or not value.isdigit():
            raise TransferFailed(
                f"{upload.digest}: HEAD answered {resp.status_code}", resp.status_code
            )
        return int(value)

    async def _patch(
        self, token: str, upload: Upload, offset: int, size: int
    ) -> tuple[int, bytes | None]:
        """Send the bytes from `offset`: the partner's new offset, and the receipt if
        this upload completed the message and the partner took it (200)."""
        headers = {
            "Authorization": f"Bearer {token}",
            "Tus-Resumable": TUS_VERSION,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(size - offset),
            # The receipt in the answer to the upload that completes the message, which
            # saves the completion post (docs/protocol.md, 'The transfer', step 4).
            "Prefer": RETURN_RECEIPT,
        }
        body: bytes | AsyncIterator[bytes]
        if size - offset <= READ_SIZE:
            # One block: read in one step off the event loop, not open, seek and reads.
            body = await self._read_block(upload.digest, offset)
        else:
            body = self._read_from(upload.digest, offset)
        resp = await self._send(self._request("PATCH", upload.url, headers=headers, content=body))
        held = resp.headers.get("upload-offset", "")
        if resp.status_code == 409 and held.isdigit():
            return int(held), None  # resume from what the partner holds
        if (
            resp.status_code == 200
            and essence(resp.headers.get("content-type")) == JOSE
            and held.isdigit()
        ):
            return int(held), resp.content
        if resp.status_code != 204:
            raise TransferFailed(
                f"{upload.digest}: PATCH answered {resp.status_code}: {resp.text[:200]}",
                resp.status_code,
                _code(resp),
            )
        return int(held or "0"), None

    async def _read_block(self, digest: str, offset: int) -> bytes:
        """The bytes of `digest` from `offset` on, at most READ_SIZE of them, once the
        lease is still held."""

        def read() -> bytes:
            with self.store.open(digest) as stream:
                stream.seek(offset)
                return stream.read(READ_SIZE)

        try:
            block = await asyncio.to_thread(read)
        except AttachmentUnreadable as exc:
            raise TransferFailed(str(exc)) from None
        await self._still_held(digest)
        return block

    async def _still_held(self, digest: str) -> None:
        """Stop the transfer if another worker holds the message now."""
        if not await self.keep():
            raise TransferFailed(
                f"{digest}: the delivery's lease passed to another worker; "
                "it goes on from the partner's offset"
            )

    async def _read_from(self, digest: str, offset: int) -> AsyncIterator[bytes]:
        try:
            stream = await asyncio.to_thread(self.store.open, digest)
        except AttachmentUnreadable as exc:
            raise TransferFailed(str(exc)) from None
        try:
            await asyncio.to_thread(stream.seek, offset)
            while block := await asyncio.to_thread(stream.read, READ_SIZE):
                await self._still_held(digest)
                yield block
        finally:
            stream.close()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        resp = await self.transport.handle_async_request(request)
        try:
            body = b""
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > 64 * 1024:
                    break
        finally:
            await resp.aclose()
        kept = [(k, v) for k, v in resp.headers.multi_items() if k.lower() in _KEPT]
        return httpx.Response(resp.status_code, headers=kept, content=body)


@functools.lru_cache(maxsize=16)
def timeout_extension(seconds: float) -> dict[str, float | None]:
    """A request's `timeout` extension, built once per value (it is only read)."""
    return httpx.Timeout(seconds).as_dict()


_KEPT: Final = frozenset({"upload-offset", "upload-length", "content-type", "retry-after"})


def _code(resp: httpx.Response) -> str | None:
    try:
        doc: Any = resp.json()
    except ValueError:
        return None
    code = doc.get("code") if isinstance(doc, dict) else None
    return str(code)[:40] if code is not None else None


def file_problem(digest: str) -> Problem:
    return Problem(
        "invalid-parameters",
        f"the node holds no file {digest}: hand it over with POST /v1/files first",
    )
