"""The request observer and `GET /metrics`, installed in the application."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.api.openapi import problems
from service.observability.metrics import DatabaseCollector
from service.observability.requestlog import RequestObserver
from service.witness.proofstatus import ProofsCollector
from service.witness.status import WitnessCollector

router = APIRouter(tags=["health"])

_EXAMPLE = """\
# HELP migex_messages_in_total Messages received from partners, by outcome (accepted, duplicate, refused).
# TYPE migex_messages_in_total counter
migex_messages_in_total{outcome="accepted",partner="UZ:MIA",type="statistics.migration-flows"} 12.0
# HELP migex_outbox_pending Messages in the outbox waiting for delivery, by partner.
# TYPE migex_outbox_pending gauge
migex_outbox_pending{partner="UZ:MIA"} 3.0
"""


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description=(
        "Text exposition format. Labels hold only party ids, message types, outcomes, "
        "problem codes, route templates, methods and statuses: no personal data. "
        "See docs/operators.md for each metric."
    ),
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"example": _EXAMPLE}}},
        **problems(500),
    },
)
def get_metrics(request: Request) -> Response:
    node = request.app.state.node
    data = node.metrics.exposition(
        DatabaseCollector(node.engines, node.clock),
        WitnessCollector(node.engines, node.clock, node.witnessing),
        ProofsCollector(node.engines, node.config),
    )
    return Response(content=data, media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI) -> None:
    """Add the request observer (request ids, one log line and one latency sample a
    request) and the `GET /metrics` route."""
    app.add_middleware(RequestObserver)
    app.include_router(router)
