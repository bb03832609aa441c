"""A refusal flood: what it adds to the audit log, and what it costs a partner.

`migex serve --workers 2` with the default `refusals` settings. A partner (UZ:MIA)
sends pre-signed verification requests one after another, at most 50 a second, for
`seconds` alone, then again while wrk floods `/v1/messages` from the same loopback
address with a token whose header `kid` names no key (every one refused `401
unknown-key` before its signature is checked). The figures: the partner's latency
without and with the flood, and the audit entries and leaf bytes the flood added,
counted in the database after the node stopped (when it writes its open tallies).
Everything is bounded in time and stays on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import tempfile
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from benchmarks import nodes
from benchmarks.figures import OUT, Figure, print_figure, run_alone
from benchmarks.load import wrk

NAME = "flood"
WORKERS = 2
PARTNER_PACE = 0.02  # at most 50 partner messages a second
FLOOD_KID = "ZHAKSYBEKOVA AIGERIM 910314401230 (no such key)"


def flood_token(sender: nodes.Party) -> bytes:
    """A message of ordinary size whose `kid` names no key: refused at the key step."""
    signed = sender.sign(nodes.verification_envelope(sender, "KZ:MIA", int(time.time())))
    _, payload, signature = signed.split(b".")
    header = json.dumps({"alg": "Ed25519", "kid": FLOOD_KID, "typ": "migex+jws"}).encode()
    head = base64.urlsafe_b64encode(header).rstrip(b"=")
    return head + b"." + payload + b"." + signature


class Partner(threading.Thread):
    """Sends its messages one at a time until told to stop; records each latency."""

    def __init__(self, url: str, messages: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.messages = messages
        self.latencies: list[float] = []
        self.failed = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        headers = {"Content-Type": "application/jose"}
        with httpx.Client(timeout=10) as client:
            for message in self.messages:
                if self.stopping.is_set():
                    return
                began = time.perf_counter()
                status = client.post(self.url, content=message, headers=headers).status_code
                elapsed = time.perf_counter() - began
                self.latencies.append(elapsed)
                self.failed += status != 201
                self.stopping.wait(max(0.0, PARTNER_PACE - elapsed))


def measure_partner(url: str, messages: list[bytes], seconds: float, during: Any = None) -> Partner:
    """Run the partner for `seconds` (or for as long as `during()` runs)."""
    partner = Partner(url, messages)
    partner.start()
    if during is None:
        time.sleep(seconds)
    else:
        during()
    partner.stopping.set()
    partner.join(timeout=30)
    return partner


def refusal_entries(url: str) -> dict[str, int]:
    """The refusal entries in the log: how many of each event, and their leaf bytes."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT "
                    "sum(CASE WHEN event = 'message.refused' THEN 1 ELSE 0 END) AS refused, "
                    "sum(CASE WHEN event = 'message.refused-aggregate' THEN 1 ELSE 0 END) "
                    "AS aggregates, coalesce(sum(length(leaf_data)), 0) AS bytes "
                    "FROM audit_entries "
                    "WHERE event IN ('message.refused', 'message.refused-aggregate')"
                )
            ).one()
        return {k: int(v or 0) for k, v in row._mapping.items()}
    finally:
        engine.dispose()


def run_node(
    tmp: Path,
    label: str,
    database: AbstractContextManager[str],
    kz: nodes.Party,
    uz: nodes.Party,
    seconds: int,
    garbage: Path,
    log: Path,
) -> dict[str, Any]:
    per_phase = int(seconds / PARTNER_PACE) + 10
    signed = [
        uz.sign(nodes.verification_envelope(uz, "KZ:MIA", int(time.time())))
        for _ in range(2 * per_phase)
    ]
    with database as url:
        port = nodes.free_port()
        cfg = nodes.node_config(
            kz, uz, database_url=url, port=port, partner_port=9, inbound=True, outbound=False
        )
        config = nodes.write_config(tmp / f"kz-{label}.yaml", cfg)
        target = f"http://127.0.0.1:{port}/v1/messages"
        result: dict[str, Any] = {}
        with nodes.migex_server(config, port, tmp / f"node-{label}.log", WORKERS):
            alone = measure_partner(target, signed[:per_phase], seconds)
            before = refusal_entries(url)

            def flood() -> None:
                result["wrk"] = wrk(target, garbage, seconds, log, cycle=True)

            flooded = measure_partner(target, signed[per_phase:], seconds, during=flood)
        # Read after the node stopped: it writes its open tallies when it stops.
        after = refusal_entries(url)
        (OUT / f"flood-node-{label}.log").write_text((tmp / f"node-{label}.log").read_text())
    result.update(alone=alone, flooded=flooded, added={k: after[k] - before[k] for k in after})
    return result


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _figures(label: str, result: dict[str, Any], command: str) -> list[Figure]:
    alone: Partner = result["alone"]
    flooded: Partner = result["flooded"]
    flood = result["wrk"]
    added = result["added"]
    refused = flood["requests"]
    entries = added["refused"] + added["aggregates"]
    note = (
        f"{refused:,} flood requests answered in {flood['duration_us'] / 1e6:.1f} s: "
        f"{added['refused']} message.refused and {added['aggregates']} aggregate entries"
    )
    rate = refused / (flood["duration_us"] / 1e6)
    per_thousand = 1000 * entries / max(1, refused)
    return [
        Figure(NAME, f"{label}: flood requests/s", rate, "req/s", command),
        Figure(
            NAME,
            f"{label}: audit entries added by the flood",
            float(entries),
            "",
            command,
            note=note,
        ),
        Figure(NAME, f"{label}: audit entries per 1,000 flood requests", per_thousand, "", command),
        Figure(
            NAME, f"{label}: leaf bytes added by the flood", float(added["bytes"]), "B", command
        ),
        Figure(
            NAME, f"{label}: partner p50 latency alone", _ms(alone.latencies, 0.5), "ms", command
        ),
        Figure(
            NAME,
            f"{label}: partner p50 latency under flood",
            _ms(flooded.latencies, 0.5),
            "ms",
            command,
        ),
        Figure(
            NAME, f"{label}: partner p99 latency alone", _ms(alone.latencies, 0.99), "ms", command
        ),
        Figure(
            NAME,
            f"{label}: partner p99 latency under flood",
            _ms(flooded.latencies, 0.99),
            "ms",
            command,
        ),
        Figure(
            NAME,
            f"{label}: partner messages not answered 201",
            float(alone.failed + flooded.failed),
            "",
            command,
            note=f"{len(alone.latencies)} sent alone, {len(flooded.latencies)} under flood",
        ),
    ]


def run(quick: bool = False) -> list[Figure]:
    seconds = 5 if quick else 15
    command = "bash benchmarks/run --only flood" + (" --quick" if quick else "")
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "flood-wrk.log"
    log.write_text("")
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="migex-bench-flood-") as tmp_name:
        tmp = Path(tmp_name)
        kz = nodes.make_party(tmp, "KZ:MIA")
        uz = nodes.make_party(tmp, "UZ:MIA")
        garbage = tmp / "flood.txt"
        garbage.write_bytes(flood_token(nodes.make_party(tmp, "TJ:MIA")) + b"\n")
        databases: list[tuple[str, AbstractContextManager[str]]] = [
            ("SQLite", nullcontext(f"sqlite:///{tmp / 'sqlite.db'}"))
        ]
        if nodes.pg_available():
            databases.append(("PostgreSQL", nodes.pg_database("flood")))
        for label, database in databases:
            result = run_node(tmp, label.lower(), database, kz, uz, seconds, garbage, log)
            for figure in _figures(label, result, command):
                print_figure(figure)
                figures.append(figure)
    return figures


if __name__ == "__main__":
    run_alone(__doc__, run)
