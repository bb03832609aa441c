"""Exchange counters derived from committed audit entries; multi-process exposition."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.audit import entries as ev
from service.observability.metrics import MULTIPROC_ENV, ExchangeMetrics

STATS = "statistics.migration-flows"


def entry(event: str, outcome: str, **columns: Any) -> dict[str, Any]:
    return {"event": event, "outcome": outcome, "party": None, "type": None, "code": None} | columns


def samples(metrics: ExchangeMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def count(metrics: ExchangeMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def test_each_inbound_event_counts_under_its_outcome() -> None:
    metrics = ExchangeMetrics(["UZ:MIA"])
    metrics.observe_commit(
        [
            entry(ev.MESSAGE_ACCEPTED, "accepted", party="UZ:MIA", type=STATS),
            entry(ev.MESSAGE_REDELIVERED, "duplicate", party="UZ:MIA", type=STATS),
            entry(ev.MESSAGE_ACCEPTED, "accepted", party="UZ:MIA", type=STATS),
        ]
    )
    labels = {"partner": "UZ:MIA", "type": STATS}
    assert count(metrics, "migex_messages_in_total", **labels, outcome="accepted") == 2
    assert count(metrics, "migex_messages_in_total", **labels, outcome="duplicate") == 1


def test_a_refusal_without_a_party_counts_as_unauthenticated() -> None:
    metrics = ExchangeMetrics(["UZ:MIA"])
    metrics.observe_commit([entry(ev.MESSAGE_REFUSED, "refused", code="bad-signature")])
    assert (
        count(
            metrics, "migex_inbound_refusals_total", partner="unauthenticated", code="bad-signature"
        )
        == 1
    )


def test_values_outside_the_known_sets_are_counted_as_other() -> None:
    metrics = ExchangeMetrics(["UZ:MIA"])
    metrics.observe_commit(
        [entry(ev.SEND_REFUSED, "refused", party="ZZ:X", type="made.up", code="no-such-code")]
    )
    assert count(metrics, "migex_outbound_refusals_total", partner="other", code="other") == 1
    assert (
        count(metrics, "migex_messages_out_total", partner="other", type="other", outcome="refused")
        == 1
    )


def test_delivery_attempts_count_by_final_outcome_and_other_events_not_at_all() -> None:
    metrics = ExchangeMetrics(["KG:SRS"])
    metrics.observe_commit(
        [
            entry(ev.DELIVERY_ATTEMPT, "retry", party="KG:SRS"),
            entry(ev.DELIVERY_ATTEMPT, "failed", party="KG:SRS"),
            entry(ev.RECEIPT_RECEIVED, "verified", party="KG:SRS"),
            entry(ev.AUDIT_QUERY, "ok"),
            entry(ev.CONFIG_LOADED, "ok"),
        ]
    )
    found = {k: v for k, v in samples(metrics).items() if k[0].endswith("_total")}
    assert found == {
        ("migex_delivery_attempts_total", frozenset({("partner", "KG:SRS"), ("outcome", o)})): 1
        for o in ("retry", "failed")
    }


def test_unusual_methods_and_unmatched_routes_get_fixed_labels() -> None:
    metrics = ExchangeMetrics()
    metrics.observe_request(None, "BREW", 404, 0.002)
    name = "migex_http_request_duration_seconds_count"
    assert count(metrics, name, route="unmatched", method="other", status="404") == 1


_CHILD = """
from service.audit import entries as ev
from service.observability.metrics import ExchangeMetrics
m = ExchangeMetrics(["UZ:MIA"])
m.observe_commit([{"event": ev.MESSAGE_ACCEPTED, "outcome": "accepted", "party": "UZ:MIA",
                   "type": "statistics.migration-flows", "code": None}])
m.observe_request("/v1/messages", "POST", 201, 0.004)
"""


@pytest.mark.slow
def test_with_a_multiprocess_directory_every_process_is_summed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD], env=env, cwd=Path(__file__).parents[3])
        for _ in range(2)
    ]
    assert [child.wait(timeout=60) for child in children] == [0, 0]
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    here = ExchangeMetrics()  # this process writes nothing there: only the children count
    labels = {"partner": "UZ:MIA", "type": STATS, "outcome": "accepted"}
    assert count(here, "migex_messages_in_total", **labels) == 2
    latency = {"route": "/v1/messages", "method": "POST", "status": "201"}
    assert count(here, "migex_http_request_duration_seconds_count", **latency) == 2
