"""The race of C2SP tlog-witness: checking the old size and storing the new checkpoint
are one atomic step, across connections and across processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.note import verifier_key
from service.db import migrate
from service.db.engine import Engines, create_engines
from service.ledger.committer import GroupCommitter
from service.protocol.keys import write_private_key
from service.witness import cosigner as cosigner_module
from service.witness import store
from service.witness.checks import Refusal
from service.witness.cosigner import Cosigner, WitnessSettings
from tests.support.nodes import NOW
from tests.support.processes import child_environment
from tests.support.tlog import MemoryLog

ORIGIN = "migex/UZ:MIA"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def log() -> MemoryLog:
    return MemoryLog(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture
def engines(database_url: str) -> Iterator[list[Engines]]:
    """Two engines on one database: two connection pools, as two processes have."""
    made = [create_engines(database_url), create_engines(database_url)]
    migrate.upgrade(made[0].writer)
    yield made
    for e in made:
        e.dispose()


def make_cosigner(engines: Engines, log: MemoryLog, witness: Ed25519PrivateKey) -> Cosigner:
    settings = WitnessSettings(
        name="migex/KZ:MIA/witness",
        key=witness,
        logs={ORIGIN: (verifier_key(ORIGIN, log.key.public_key()),)},
        per_second=1e6,
        burst=1_000_000,
    )
    committer = GroupCommitter(
        engines,
        node="KZ:MIA",
        clock=lambda: NOW,
        sign_checkpoint=lambda s, r: "",
        checkpoint_interval=1,
    )
    return Cosigner(settings, engines, committer, lambda: float(NOW))


def test_a_second_request_waits_for_the_first_and_gets_409(
    engines: list[Engines], log: MemoryLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    witness = Ed25519PrivateKey.generate()
    a, b = (make_cosigner(e, log, witness) for e in engines)
    a.add_checkpoint(log.request(0, 2))
    a_checked, a_go, b_checked = threading.Event(), threading.Event(), threading.Event()
    original = cosigner_module.check_consistency

    def paused(request, cp, latest):  # type: ignore[no-untyped-def]
        if cp.size == 2:
            pass
        elif cp.size == 5:  # request A: holds the log's row while it decides
            a_checked.set()
            assert a_go.wait(timeout=30)
        else:
            b_checked.set()
        return original(request, cp, latest)

    monkeypatch.setattr(cosigner_module, "check_consistency", paused)
    outcomes: dict[str, object] = {}

    def run(name: str, who: Cosigner, body: bytes) -> None:
        try:
            outcomes[name] = who.add_checkpoint(body)
        except Refusal as refusal:
            outcomes[name] = refusal

    thread_a = threading.Thread(target=run, args=("a", a, log.request(2, 5)))
    thread_b = threading.Thread(target=run, args=("b", b, log.request(2, 9)))
    thread_a.start()
    assert a_checked.wait(timeout=30)
    thread_b.start()
    # B cannot read the log's state while A holds it (a bounded check that it stays blocked).
    assert not b_checked.wait(timeout=0.5)
    a_go.set()
    thread_a.join(timeout=30)
    thread_b.join(timeout=30)
    assert isinstance(outcomes["a"], str)
    refusal = outcomes["b"]
    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.latest_size) == (409, 5)
    with engines[0].reader.connect() as conn:
        latest = store.read_latest(conn, ORIGIN)
    assert latest is not None
    assert latest.size == 5


def test_two_first_checkpoints_at_once_give_one_cosignature_and_one_409(
    engines: list[Engines], log: MemoryLog
) -> None:
    witness = Ed25519PrivateKey.generate()
    a, b = (make_cosigner(e, log, witness) for e in engines)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def run(who: Cosigner, size: int) -> None:
        body = log.request(0, size)
        barrier.wait(timeout=30)
        try:
            outcomes.append(who.add_checkpoint(body))
        except Refusal as refusal:
            outcomes.append(refusal.status)

    threads = [threading.Thread(target=run, args=(w, n)) for w, n in ((a, 4), (b, 7))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(map(str, outcomes))[0] == "409"
    assert sum(isinstance(o, str) for o in outcomes) == 1


def test_two_processes_never_roll_the_log_back(
    database_url: str, engines: list[Engines], log: MemoryLog, tmp_path: Path
) -> None:
    log_key, witness_key = tmp_path / "log.pem", tmp_path / "witness.pem"
    write_private_key(log_key, log.key)
    write_private_key(witness_key, Ed25519PrivateKey.generate())
    last = 60

    def spawn(first: int) -> subprocess.Popen[str]:
        args = [database_url, str(log_key), str(witness_key), str(first), "2", str(last)]
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.witness_race", *args],
            cwd=ROOT,
            env=child_environment(None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    processes = [spawn(1), spawn(2)]
    outputs = [p.communicate(timeout=240) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    steps = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    # Every cosigning started from the then latest size: they form one chain 0 -> ... -> final,
    # each old size used once. A lost update would show as two steps from one old size.
    by_old = {s["old"]: s["new"] for s in steps}
    assert len(by_old) == len(steps)
    size, chain = 0, 0
    while size in by_old:
        size, chain = by_old[size], chain + 1
    assert chain == len(steps)
    with engines[0].reader.connect() as conn:
        latest = store.read_latest(conn, ORIGIN)
    assert latest is not None
    assert latest.size == size
    assert size >= last - 1
