"""Start the submission of this node's checkpoints to its witnesses (in the lifespan)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable

import httpx

from service.runtime import Node
from service.witness.submitter import Submitter


def witnessing_task(
    node: Node,
    clock: Callable[[], float],
    transport: httpx.AsyncBaseTransport | None,
    stopping: asyncio.Event,
) -> asyncio.Task[None] | None:
    """The submitter as a task beside the delivery worker; None without witnesses."""
    settings = node.submit
    if settings is None:
        return None
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport) as http:
            submitter = Submitter(settings, node.engines, clock, http, owner)
            await submitter.run_forever(stopping)

    return asyncio.create_task(run(), name="migex-witnessing")
