"""The FastAPI application. Everything stateful is built in the lifespan, never at import."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from service.api import audit, errors, health, local, messages, openapi, wellknown
from service.clock import system_clock
from service.config import NodeConfig, load_config
from service.exchange import refusals, retention
from service.exchange.delivery import DeliveryWorker
from service.exchange.netbackend import PartnerTransport
from service.observability import web as observability
from service.runtime import build_node, delivery_settings

DESCRIPTION = """\
An exchange node for cross-border migration data. Partner nodes POST signed messages
(compact JWS, `application/jose`) to `/v1/messages`; every refusal is an RFC 9457 problem
document with a stable `code`; every exchange event is appended to a Merkle-tree audit
log that auditors query and verify under `/v1/audit`.
"""


def create_app(
    config: NodeConfig,
    *,
    clock: Callable[[], float] = system_clock,
    migrate_on_start: bool = True,
    run_delivery: bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node = build_node(config, clock=clock, migrate_on_start=migrate_on_start)
        app.state.node = node
        if freeze_heap:
            # Everything built so far lives as long as the process. Left in the
            # collector's generations, each full collection walks all of it (tens of
            # milliseconds with every request on hold); frozen, it is never scanned.
            gc.freeze()
        stopping = asyncio.Event()
        worker_task: asyncio.Task[None] | None = None
        settings = delivery_settings(config)
        # One kept-alive connection per concurrent delivery: no reconnects under load.
        limits = httpx.Limits(
            max_connections=settings.concurrency * 2,
            max_keepalive_connections=settings.concurrency * 2,
        )
        async with transport or PartnerTransport(limits) as http:
            node.delivery = DeliveryWorker(
                engines=node.engines,
                committer=node.committer,
                registry=node.registry,
                key=node.signing_key,
                clock=clock,
                settings=settings,
                transport=http,
                owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            )
            if run_delivery:
                worker_task = asyncio.create_task(node.delivery.run_forever(stopping))
            purge_task = asyncio.create_task(
                retention.run_periodically(
                    node.committer,
                    clock=clock,
                    body_days=config.retention.message_body_days,
                    interval=config.retention.purge_interval_seconds,
                    stopping=stopping,
                )
            )
            tally_task = asyncio.create_task(
                refusals.run_periodically(
                    node.committer,
                    node.engines.reader,
                    clock=clock,
                    limits=node.refusal_limits,
                    stopping=stopping,
                )
            )
            try:
                yield
            finally:
                stopping.set()
                node.delivery.wake()
                if worker_task is not None:
                    await worker_task
                await purge_task
                # Last: writes every open refusal tally before the writer stops.
                await tally_task
                node.close()

    app = FastAPI(
        title="migex exchange node",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    errors.install(app)
    openapi.install(app)
    observability.install(app)
    for router in (messages.router, local.router, audit.router, wellknown.router, health.router):
        app.include_router(router)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory`: the configuration file comes from MIGEX_CONFIG."""
    path = os.environ.get("MIGEX_CONFIG")
    if not path:
        raise RuntimeError("set MIGEX_CONFIG to the node's YAML configuration file")
    return create_app(load_config(Path(path)), migrate_on_start=False, freeze_heap=True)
