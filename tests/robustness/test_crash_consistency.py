"""SIGKILL mid-stream: every receipted message survives, the log stays whole and true.

Several clients send signed messages to a `migex serve` process; once a third of them
have receipts, the process is killed with SIGKILL and started again on the same
database. Then: every receipt's message is stored with the audit entry the receipt
names; audit indices are dense and the tree size is the row count; the exported log
verifies against the latest signed checkpoint; and re-sending the whole stream stores
each message exactly once, answering 200 with the original receipt where one was given.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine

from service.audit.offline import VerifyReport
from service.protocol import envelope, jws
from service.protocol.receipts import message_digest
from tests.robustness import ledger
from tests.robustness.served import audit_vkey, config_path, database, fresh, node_config
from tests.support.nodes import Federation
from tests.support.processes import NodeProcess

pytestmark = pytest.mark.slow

MESSAGES = 240
CLIENTS = 6
KILL_AFTER = MESSAGES // 3
JOSE = {"Content-Type": "application/jose"}


@dataclass
class Run:
    """What the clients saw, and the database after the restart and the re-send."""

    federation: Federation
    tokens: list[bytes]
    receipts: dict[bytes, bytes] = field(default_factory=dict)  # before the kill
    attempted: int = 0
    stored_after_restart: list[dict[str, Any]] = field(default_factory=list)
    entries_after_restart: list[dict[str, Any]] = field(default_factory=list)
    indices_after_restart: list[int] = field(default_factory=list)
    size_after_restart: int = 0
    verified_after_restart: VerifyReport | None = None
    resend: dict[bytes, httpx.Response] = field(default_factory=dict)
    copies_after_resend: dict[tuple[str, str], int] = field(default_factory=dict)
    verified_after_resend: VerifyReport | None = None

    def counts(self) -> str:
        duplicates = sum(n - 1 for n in self.copies_after_resend.values())
        return (
            f"sent={self.attempted} receipted_before_kill={len(self.receipts)} "
            f"stored_after_restart={len(self.stored_after_restart)} "
            f"resent={len(self.resend)} "
            f"resent_200={sum(1 for r in self.resend.values() if r.status_code == 200)} "
            f"resent_201={sum(1 for r in self.resend.values() if r.status_code == 201)} "
            f"stored_after_resend={len(self.copies_after_resend)} duplicates={duplicates}"
        )


def send_until_killed(run: Run, node: NodeProcess) -> None:
    """Clients send their share; the node is SIGKILLed once KILL_AFTER receipts are in."""
    lock = threading.Lock()
    enough = threading.Event()
    killed = threading.Event()

    def client(share: list[bytes]) -> None:
        with httpx.Client(base_url=node.url, timeout=30) as http:
            for token in share:
                if killed.is_set():
                    return
                with lock:
                    run.attempted += 1
                try:
                    resp = http.post("/v1/messages", content=token, headers=JOSE)
                except httpx.TransportError:
                    return  # the node is gone
                if resp.status_code == 201:
                    with lock:
                        run.receipts[token] = resp.content
                        if len(run.receipts) >= KILL_AFTER:
                            enough.set()

    def killer() -> None:
        enough.wait(timeout=120)
        node.kill()
        killed.set()

    shares = [run.tokens[i::CLIENTS] for i in range(CLIENTS)]
    assassin = threading.Thread(target=killer)
    assassin.start()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, shares))
    enough.set()
    assassin.join()


def snapshot(run: Run, url: str, phase: str) -> None:
    engine = create_engine(url)
    vkey = audit_vkey(run.federation)
    try:
        if phase == "restart":
            run.stored_after_restart = ledger.stored_rows(engine)
            run.entries_after_restart = ledger.entries(engine)
            run.indices_after_restart = ledger.indices(engine)
            run.size_after_restart = ledger.tree_size(engine)
            run.verified_after_restart = ledger.verify_log(engine, vkey)
        else:
            run.copies_after_resend = ledger.copies_per_message(engine)
            run.verified_after_resend = ledger.verify_log(engine, vkey)
    finally:
        engine.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    from tests.support.databases import PG_URL

    if request.param == "postgres" and not PG_URL:
        pytest.skip("set MIGEX_TEST_PG_URL to run the PostgreSQL suite")
    tmp: Path = tmp_path_factory.mktemp(f"crash-{request.param}")
    with database(request.param, tmp) as url:
        federation = node_config(tmp, url)
        result = Run(federation, [federation.uz.sign(fresh(federation)) for _ in range(MESSAGES)])
        with NodeProcess("kz", config_path(federation), log_dir=tmp) as node:
            node.start()
            send_until_killed(result, node)
            node.start()
            snapshot(result, url, "restart")
            with httpx.Client(base_url=node.url, timeout=30) as http:
                for token in result.tokens:
                    result.resend[token] = http.post("/v1/messages", content=token, headers=JOSE)
            snapshot(result, url, "resend")
        print(f"\ncrash consistency [{request.param}]: {result.counts()}")
        yield result


def receipt_body(receipt: bytes) -> dict[str, Any]:
    body: dict[str, Any] = envelope.parse_payload(jws.parse_compact(receipt).payload).body
    return body


def test_the_node_was_killed_mid_stream(run: Run) -> None:
    assert KILL_AFTER <= len(run.receipts) < MESSAGES, run.counts()


def test_every_receipted_message_is_stored_with_the_entry_its_receipt_names(run: Run) -> None:
    stored = {(r["sender"], r["message_id"]): r for r in run.stored_after_restart}
    entries = {e["index"]: e for e in run.entries_after_restart}
    missing = []
    for token, receipt in run.receipts.items():
        env = envelope.parse_payload(jws.parse_compact(token).payload)
        body = receipt_body(receipt)
        row = stored.get((env.iss, env.id))
        entry = entries.get(body["audit_index"], {})
        if (
            row is None
            or not row["digest"] == body["digest"] == message_digest(token)
            or bytes(row["receipt"]) != receipt
            or (entry.get("event"), entry.get("message_id"), entry.get("digest"))
            != ("message.accepted", env.id, body["digest"])
        ):
            missing.append(env.id)
    assert missing == [], f"{len(missing)} receipted messages lost; {run.counts()}"


def test_audit_indices_are_dense_and_the_tree_size_is_the_row_count(run: Run) -> None:
    size = run.size_after_restart
    assert run.indices_after_restart == list(range(size)), run.counts()
    assert len(run.entries_after_restart) == size, run.counts()


def test_the_log_verifies_against_the_latest_checkpoint_after_the_crash(run: Run) -> None:
    report = run.verified_after_restart
    assert report is not None
    assert report.ok, f"{report.reason} at {report.first_bad_index}; {run.counts()}"


def test_resending_the_stream_stores_each_message_exactly_once(run: Run) -> None:
    statuses = {r.status_code for r in run.resend.values()}
    assert statuses <= {200, 201}, run.counts()
    assert len(run.copies_after_resend) == MESSAGES, run.counts()
    assert set(run.copies_after_resend.values()) == {1}, run.counts()


def test_resent_messages_that_had_receipts_get_the_original_receipt(run: Run) -> None:
    changed = [
        token
        for token, receipt in run.receipts.items()
        if (run.resend[token].status_code, run.resend[token].content) != (200, receipt)
    ]
    assert changed == [], run.counts()


def test_the_log_still_verifies_after_the_resend(run: Run) -> None:
    report = run.verified_after_resend
    assert report is not None
    assert report.ok, f"{report.reason}; {run.counts()}"
