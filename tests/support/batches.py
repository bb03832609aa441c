"""Holding the group committer's writer so that several units are committed in one batch."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from service.exchange.outbound import OutboundRequest, Prepared, QueueUnit, prepare
from service.ledger.committer import GroupCommitter, Tx
from service.protocol.problems import Problem
from service.runtime import Node
from tests.support.nodes import example_body


@dataclass
class Gate:
    """Holds the writer inside a batch until released, so later units form one batch."""

    entered: threading.Event
    release: threading.Event
    needs_savepoint = False

    def run(self, tx: Tx) -> None:
        self.entered.set()
        assert self.release.wait(10)

    def refused(self, tx: Tx, problem: Problem) -> None:
        """Never refuses."""


def in_one_batch(committer: GroupCommitter, *units: Any) -> list[Future[Any]]:
    """Submit `units` while the writer is held, so that they are committed together."""
    entered, release = threading.Event(), threading.Event()
    gate = committer.submit(Gate(entered, release))
    assert entered.wait(10)
    futures = [committer.submit(unit) for unit in units]
    release.set()
    gate.result(10)
    for future in futures:
        future.exception(10)
    return futures


def prepare_on(node: Node, req: OutboundRequest) -> Prepared:
    """`req` checked, cut and signed by `node`, as its local API does."""
    return prepare(req, node.outbound, node.clock())


def queue_unit(node: Node, **overrides: Any) -> QueueUnit:
    """A statistics dataset for UZ:MIA, prepared as the route prepares it; `overrides`
    then change its envelope as a client value that slipped past the edge would."""
    req = OutboundRequest(
        "UZ:MIA",
        "statistics.migration-flows",
        "kz-uz-2019",
        "statistics",
        example_body("statistics.migration-flows"),
    )
    prepared = prepare_on(node, req)
    if overrides:
        env = dataclasses.replace(prepared.env, **overrides)
        prepared = dataclasses.replace(prepared, env=env)
        req = dataclasses.replace(req, type=env.type)
    return QueueUnit(req, prepared)
