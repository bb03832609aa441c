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
from fastapi_offline import FastAPIOffline

from service.api import (
    audit,
    errors,
    files,
    health,
    holds,
    local,
    messages,
    openapi,
    privacy,
    uploads,
    wellknown,
    witness,
)
from service.api.fastlane import FastLanes
from service.api.head import HeadAsGet
from service.clock import system_clock
from service.config import NodeConfig, load_config
from service.config.build import retention_policy_from_config
from service.console import web as console
from service.exchange import refusals, retention
from service.exchange.delivery import DeliveryWorker
from service.exchange.netbackend import PartnerTransport
from service.logs import install_process_hooks, lean_records
from service.observability import web as observability
from service.runtime import build_node, delivery_settings
from service.witness.partnerproofs import load_partner_proofs
from service.witness.proofsrunner import proofs_task
from service.witness.runner import witnessing_task

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
    run_witnessing: bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        partner_proofs = load_partner_proofs(config)  # an unusable policy: fail before starting
        node = build_node(config, clock=clock, migrate_on_start=migrate_on_start)
        app.state.node = node
        if config.console.enabled:
            app.state.console = console.ConsoleState.from_node(node)
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
        async with transport or _partner_transport(limits) as http:
            node.delivery = DeliveryWorker(
                engines=node.engines,
                committer=node.committer,
                registry=node.registry,
                key=node.signing_key,
                clock=clock,
                settings=settings,
                transport=http,
                owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
                store=lambda: node.store,
                bodies=node.bodies,
            )
            if run_delivery:
                worker_task = asyncio.create_task(node.delivery.run_forever(stopping))
            witnessing = (
                witnessing_task(node, clock, transport, stopping) if run_witnessing else None
            )
            proofs = proofs_task(node, partner_proofs, stopping) if run_witnessing else None
            purge_task = asyncio.create_task(
                retention.run_periodically(
                    node.committer,
                    clock=clock,
                    body_days=config.retention.message_body_days,
                    interval=config.retention.purge_interval_seconds,
                    stopping=stopping,
                    policy=retention_policy_from_config(config),
                    store=lambda: node.store,
                    bodies=node.bodies,
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
                if witnessing is not None:
                    await witnessing
                if proofs is not None:
                    await proofs
                # Last: writes every open refusal tally before the writer stops.
                await tally_task
                node.close()

    # /docs and /redoc load Swagger UI and ReDoc from the package, never from a CDN.
    app = FastAPIOffline(
        title="migex exchange node",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # No badge fetched from the public Swagger validator.
        swagger_ui_parameters={"validatorUrl": None},
    )
    # Innermost first: HEAD is routed as GET below the body limit and the request log;
    # partners' messages and the agency's queued ones skip the router (api/fastlane.py).
    app.add_middleware(HeadAsGet)
    app.add_middleware(FastLanes)
    errors.install(app)
    openapi.install(app)
    observability.install(app)
    for router in (
        messages.router,
        uploads.router,
        local.router,
        files.router,
        audit.router,
        wellknown.router,
        health.router,
    ):
        app.include_router(router)
    if config.console.enabled:
        console.install(app)
    app.include_router(witness.router)
    app.include_router(privacy.router)
    app.include_router(holds.router)
    return app


def _partner_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """The node's own transport (`exchange/netbackend.py`), or httpx's with
    MIGEX_DELIVERY_TRANSPORT=httpx, which the delivery benchmark compares it with
    (httpx's reads no proxy variables: a node behind a proxy uses its own)."""
    choice = os.environ.get("MIGEX_DELIVERY_TRANSPORT", "own")
    if choice == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits)
    if choice != "own":
        raise RuntimeError(f"MIGEX_DELIVERY_TRANSPORT={choice!r}: `own` or `httpx`")
    return PartnerTransport(limits)


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory`: the configuration file comes from MIGEX_CONFIG.

    It builds the app of a served process, so it also routes what Python would print to
    standard error itself (warnings, thread and finalizer exceptions) to the JSON log."""
    path = os.environ.get("MIGEX_CONFIG")
    if not path:
        raise RuntimeError("set MIGEX_CONFIG to the node's YAML configuration file")
    install_process_hooks()
    lean_records()
    return create_app(load_config(Path(path)), migrate_on_start=False, freeze_heap=True)
