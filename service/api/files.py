"""The agency's files for its outbound messages (docs/protocol.md, 'The agency's side'),
and the files of received messages."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import ConfigDict, Field
from sqlalchemy import Connection, select

from service.api.deps import ClientDep, NodeDep, read
from service.api.models import _Answer
from service.api.openapi import problems
from service.api.params import MessageIdPath, PartyPath
from service.attachments.files import FileUnit, store_upload
from service.attachments.store import READ_SIZE
from service.db.tables import attachments, messages
from service.protocol.mediatypes import essence
from service.protocol.problems import Problem
from service.records.attachments import MEDIA_TYPE_PATTERN

_MEDIA_TYPE = re.compile(MEDIA_TYPE_PATTERN)
router = APIRouter(prefix="/v1", tags=["local"], generate_unique_id_function=lambda r: r.name)


class StoredFile(_Answer):
    """A file the node holds: name it in an outbound body's `attachments`."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "digest": "sha-256:TTZAPwRW39w2yAdBHEAYY5xbmmdcL_xO4YMfF248YZI",
                "size": 48213,
                "media_type": "application/pdf",
            }
        }
    )

    digest: str = Field(description="sha-256: and the unpadded base64url SHA-256 of the bytes")
    size: int = Field(description="The number of bytes")
    media_type: str = Field(description="The media type, checked against the bytes")


@router.post(
    "/files",
    summary="Hand the node a file for an outbound message's attachments",
    status_code=201,
    response_model=StoredFile,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "*/*": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "the bytes of the file, e.g. a PDF with Content-Type application/pdf",
                }
            },
        }
    },
    responses=problems(401, 403, 408, 413, 415, 422, 503),
)
async def store_file(request: Request, node: NodeDep, who: ClientDep) -> StoredFile:
    media_type = essence(request.headers.get("content-type"))
    if _MEDIA_TYPE.fullmatch(media_type) is None:
        raise Problem(
            "unsupported-media-type",
            "send the file with its media type as Content-Type, e.g. application/pdf",
        )
    held = await store_upload(
        node.store,
        request.stream(),
        media_type,
        max_bytes=node.config.attachments.max_file_bytes,
        idle=node.config.limits.request_timeout_seconds,
    )
    recorded = await node.committer.run(FileUnit(held, who.name))
    return StoredFile(digest=recorded.digest, size=recorded.size, media_type=recorded.media_type)


@router.get(
    "/inbox/{sender}/{message_id}/attachments/{digest}",
    summary="The bytes of one attachment of a received message",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The file's bytes, with its media type",
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "the bytes of the file",
                }
            },
        },
        **problems(401, 403, 404, 422, 500, 503),
    },
)
async def read_attachment(
    sender: PartyPath, message_id: MessageIdPath, digest: str, node: NodeDep, who: ClientDep
) -> StreamingResponse:
    def query(conn: Connection) -> Any:
        a, m = attachments.c, messages.c
        return conn.execute(
            select(a.media_type, a.size, a.name, a.purged_at)
            .join(messages, m.pk == a.message_pk)
            .where(
                m.direction == "in",
                m.sender == sender,
                m.message_id == message_id,
                a.digest == digest,
            )
        ).first()

    row = await read(node, query)
    if row is None or row.purged_at is not None or not node.store.exists(digest):
        raise Problem("not-found", f"message {message_id} from {sender} has no file {digest}")
    # Every chunk of a sealed file is authenticated before the answer starts (one that
    # does not open is a stored-unreadable problem, service/api/errors.py).
    stream = await asyncio.to_thread(node.store.open, digest)

    def chunks() -> Any:
        with stream:
            while block := stream.read(READ_SIZE):
                yield block

    return StreamingResponse(
        chunks(),
        media_type=row.media_type,
        headers={"Content-Length": str(row.size), "Cache-Control": "no-store"},
    )
