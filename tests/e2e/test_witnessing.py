"""Witnessing in the four-country federation: four `migex serve` processes on loopback,
each witnessing the other three, each log's policy 2 of 3 (see tests/e2e/witnessing.py).

Checkpoints meet the policy within seconds; with one witness down they still do; with
two down the exchange goes on, the unwitnessed time grows, and the log catches up when
they return. A log rewritten and re-signed with the node's own key is refused by every
witness and contradicted by what they cosigned; a split view gathers no quorum twice.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.checkpoint import parse_checkpoint_text
from service.audit.note import split_note
from service.audit.store import leaf_bytes
from service.protocol.b64 import b64_decode
from service.protocol.keys import load_signing_key
from service.witness.policy import Policy, evaluate, parse_policy
from service.witness.protocol import parse_size, render_request
from tests.e2e.federation import NODES, PARTY, Agency, init_keys, node_env, running
from tests.e2e.witnessing import WitnessKeys, make_witness_keys, policy_text, witnessing_config
from tests.support.nodes import example_body
from tests.support.processes import (
    NodeProcess,
    child_environment,
    free_ports,
    migex_command,
    poll,
)
from tests.support.tlog import MemoryLog

pytestmark = pytest.mark.slow

STATISTICS = "statistics.migration-flows"
DEADLINE = 30.0


@dataclass
class Witnessed:
    tmp: Path
    processes: dict[str, NodeProcess]
    policies: dict[str, Policy]
    keys: WitnessKeys

    def __getitem__(self, name: str) -> Agency:
        return Agency(name, self.processes[name].url)


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Witnessed]:
    tmp = tmp_path_factory.mktemp("witnessing")
    init_keys(tmp / "secrets", tmp / "public")
    keys = make_witness_keys(tmp)
    ports = dict(zip(NODES, free_ports(len(NODES)), strict=True))
    processes: dict[str, NodeProcess] = {}
    policies: dict[str, Policy] = {}
    for name in NODES:
        policy = tmp / f"{name}.policy"
        policy.write_text(policy_text(name, keys, ports))
        policies[name] = parse_policy(policy.read_text())
        path = tmp / f"{name}.yaml"
        path.write_text(witnessing_config(name, keys, ports, tmp / f"{name}.db", policy))
        processes[name] = NodeProcess(
            name, path, port=ports[name], env=node_env(tmp, name), log_dir=tmp / "logs"
        )
    with running(processes):
        yield Witnessed(tmp, processes, policies, keys)


def send_statistics(kz: Agency, to: str = "uz") -> str:
    agreement = {"kg": "cis-1998", "uz": "kz-uz-2019", "tj": "kz-tj-2018"}[to]
    accepted = kz.queue(
        to=PARTY[to],
        type=STATISTICS,
        agreement=agreement,
        purpose="statistics",
        body=example_body(STATISTICS),
    )
    return str(accepted["id"])


def latest_size(agency: Agency) -> int:
    note = agency.audit_get("/v1/audit/checkpoint").text
    return parse_checkpoint_text(split_note(note)[0]).size


def witnessed(agency: Agency) -> str | None:
    resp = httpx.get(
        f"{agency.url}/v1/audit/checkpoint",
        params={"witnessed": "true"},
        headers={"Authorization": f"Bearer {agency.name}-auditor-dev-token"},
    )
    return resp.text if resp.status_code == 200 else None


def witnessed_size(agency: Agency) -> int:
    note = witnessed(agency)
    return -1 if note is None else parse_checkpoint_text(split_note(note)[0]).size


def wait_witnessed(fed: Witnessed, name: str, size: int) -> str:
    """Poll until a checkpoint of at least ``size`` meets ``name``'s policy; return it."""
    agency = fed[name]

    def met() -> str | None:
        note = witnessed(agency)
        if note is None or parse_checkpoint_text(split_note(note)[0]).size < size:
            return None
        return note

    note = poll(met, timeout=DEADLINE, what=f"{name}'s checkpoint of size {size} witnessed")
    assert evaluate(fed.policies[name], note).met
    return note


def metric(agency: Agency, name: str) -> float | None:
    for line in agency.public("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_every_nodes_checkpoints_meet_its_policy(fed: Witnessed) -> None:
    kz = fed["kz"]
    kz.delivered(send_statistics(kz))
    for name in NODES:
        note = wait_witnessed(fed, name, latest_size(fed[name]))
        report = evaluate(fed.policies[name], note)
        assert len(report.cosigned) >= 2


def test_with_one_witness_down_the_policy_is_still_met(fed: Witnessed) -> None:
    kz = fed["kz"]
    fed.processes["tj"].kill()
    try:
        kz.delivered(send_statistics(kz, "uz"))
        note = wait_witnessed(fed, "kz", latest_size(kz))
        assert set(evaluate(fed.policies["kz"], note).cosigned) >= {"kg", "uz"}
    finally:
        fed.processes["tj"].start()


def test_with_two_witnesses_down_exchange_goes_on_and_the_log_catches_up(fed: Witnessed) -> None:
    kz = fed["kz"]
    fed.processes["tj"].kill()
    fed.processes["kg"].kill()
    try:
        before = witnessed_size(kz)
        kz.delivered(send_statistics(kz, "uz"))
        # A checkpoint is signed at most once per interval: wait for one that covers
        # the delivery (and is therefore newer than anything the witnesses saw).
        size = poll(
            lambda: s if (s := latest_size(kz)) > before else None,
            timeout=DEADLINE,
            what="a checkpoint newer than the witnessed one",
        )
        poll(
            lambda: (metric(kz, "migex_witness_unwitnessed_seconds") or 0) > 1.0,
            timeout=DEADLINE,
            what="the unwitnessed time growing",
        )
        assert witnessed_size(kz) < size
    finally:
        fed.processes["tj"].start(wait=False)
        fed.processes["kg"].start(wait=False)
        fed.processes["tj"].wait_ready()
        fed.processes["kg"].wait_ready()
    wait_witnessed(fed, "kz", size)
    assert poll(
        lambda: metric(kz, "migex_witness_unwitnessed_seconds") == 0.0,
        timeout=DEADLINE,
        what="no checkpoint waiting",
    )


def cosigned_by(fed: Witnessed, witness: str) -> str:
    return fed[witness].audit_get("/v1/audit/witnessed", origin="migex/KZ:MIA").text


def wait_cosigned_by_each_witness(fed: Witnessed, size: int) -> None:
    """Poll until each of kz's three witnesses has cosigned a checkpoint of ``size`` or more."""
    for witness in ("kg", "uz", "tj"):

        def reached(witness: str = witness) -> bool:
            note = cosigned_by(fed, witness)
            return parse_checkpoint_text(split_note(note)[0]).size >= size

        poll(reached, timeout=DEADLINE, what=f"{witness} cosigning kz's checkpoint of size {size}")


def copy_database(source: Path, target: Path) -> None:
    """Copy a stopped node's SQLite database with its WAL files (a backup, a restore)."""
    for suffix in ("", "-wal", "-shm"):
        dest = target.with_name(target.name + suffix)
        dest.unlink(missing_ok=True)
        src = source.with_name(source.name + suffix)
        if src.exists():
            shutil.copyfile(src, dest)


def failing_witnesses(agency: Agency) -> set[str]:
    """The witnesses whose latest submissions failed, from the node's metrics."""
    failing = set()
    for line in agency.public("/metrics").text.splitlines():
        if line.startswith("migex_witness_consecutive_failures{") and float(line.split()[-1]):
            failing.add(line.split('witness="', 1)[1].split('"', 1)[0])
    return failing


def test_a_restored_log_is_witnessed_again_once_each_witness_resets_it(fed: Witnessed) -> None:
    kz, node = fed["kz"], fed.processes["kz"]
    database, backup = fed.tmp / "kz.db", fed.tmp / "kz-backup.db"
    kz.delivered(send_statistics(kz, "uz"))
    wait_witnessed(fed, "kz", latest_size(kz))
    node.stop()
    copy_database(database, backup)
    node.start()
    kz.delivered(send_statistics(kz, "kg"))
    # Every witness, not only the policy's two, must see the log past the backup: one
    # that lagged behind it would take the restored log as a plain extension.
    wait_cosigned_by_each_witness(fed, latest_size(kz))
    node.stop()
    copy_database(backup, database)
    node.start()
    kz.delivered(send_statistics(kz, "tj"))
    restored = latest_size(kz)
    # To the witnesses the restored log is a rewritten one: none cosigns it.
    poll(
        lambda: failing_witnesses(kz) >= {"kg", "uz", "tj"},
        timeout=DEADLINE,
        what="every witness refusing the restored log",
    )
    assert witnessed_size(kz) < restored
    reason = "KZ restored its database from a backup"
    for witness in ("kg", "uz", "tj"):
        config = str(fed.tmp / f"{witness}.yaml")
        args = ["reset-log", "--config", config, "--origin", "migex/KZ:MIA", "--reason", reason]
        reset = subprocess.run(
            [*migex_command(), "witness", *args],
            env=child_environment(node_env(fed.tmp, witness)),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert reset.returncode == 0, reset.stdout + reset.stderr
        entries = fed[witness].audit_get("/v1/audit/search", event="witness.log-reset").json()
        assert entries["entries"][-1]["entry"]["detail"]["origin"] == "migex/KZ:MIA"
    wait_witnessed(fed, "kz", restored)


# -- attacks (last: they leave the witnesses holding forged checkpoints of kz) --------


def kz_log(fed: Witnessed) -> MemoryLog:
    """KZ's log as its administrator holds it (the node stopped): every leaf, and the key."""
    result = subprocess.run(
        [*migex_command(), "audit", "export", "--config", str(fed.tmp / "kz.yaml")],
        env=child_environment(node_env(fed.tmp, "kz")),
        capture_output=True,
        timeout=120,
        check=True,
    )
    lines = result.stdout.splitlines()
    leaves = [b64_decode(json.loads(line)["leaf_data"]) for line in lines if line.strip()]
    key = load_signing_key(fed.tmp / "secrets" / "kz" / "kz_signing_key", "KZ:MIA#2026-01").private
    assert isinstance(key, Ed25519PrivateKey)
    return MemoryLog("migex/KZ:MIA", key, leaves)


def submit(fed: Witnessed, witness: str, log: MemoryLog, size: int) -> httpx.Response:
    """Submit ``log``'s checkpoint of ``size`` as the log would: learn the size by 409."""
    url = f"{fed[witness].url}/v1/witness/add-checkpoint"
    old = 0
    for _ in range(3):
        resp = httpx.post(
            url, content=render_request(old, log.proof(old, size), log.checkpoint(size))
        )
        if resp.status_code != 409:
            return resp
        old = parse_size(resp.content)
    return resp


def rebuilt_without_one_exchange(honest: MemoryLog) -> MemoryLog:
    """What an administrator holding the database and the key makes: the log without the
    entries of one exchange, re-numbered, padded to grow past the honest size so that it
    looks like a log that only went on, every checkpoint re-signed with the node's key."""
    entries = [json.loads(leaf) for leaf in honest.leaves]
    victim = next(e["message_id"] for e in entries if e["event"] == "message.queued")
    kept = [e for e in entries if e["message_id"] != victim]
    filler = next(e for e in entries if e["event"] == "config.loaded")
    while len(kept) <= len(entries):
        kept.append(dict(filler))
    leaves = [leaf_bytes({**entry, "index": index}) for index, entry in enumerate(kept)]
    return MemoryLog(honest.origin, honest.key, leaves)


def write_export(log: MemoryLog, path: Path) -> None:
    with path.open("wb") as out:
        for index, leaf in enumerate(log.leaves):
            out.write(
                b'{"index":%d,"leaf_data":"%s","entry":%s}\n'
                % (index, base64.b64encode(leaf), leaf)
            )


def test_a_rewritten_log_is_refused_by_every_witness_and_contradicted(fed: Witnessed) -> None:
    kz = fed["kz"]
    kz.delivered(send_statistics(kz, "kg"))
    wait_witnessed(fed, "kz", latest_size(kz))
    # Each witness must hold the honest log (one just reset would take any log as new).
    wait_cosigned_by_each_witness(fed, latest_size(kz))
    fed.processes["kz"].stop()
    try:
        rewritten = rebuilt_without_one_exchange(kz_log(fed))
        size = len(rewritten.leaves)
        for witness in ("kg", "uz", "tj"):
            resp = submit(fed, witness, rewritten, size)
            assert resp.status_code == 422, (witness, resp.status_code, resp.text)
        # What a witness cosigned contradicts the rewritten export, and the re-signed
        # checkpoint has no cosignature to show.
        export = fed.tmp / "kz-rewritten.jsonl"
        write_export(rewritten, export)
        head = fed.tmp / "kz-rewritten-checkpoint.txt"
        head.write_text(rewritten.checkpoint(size))
        saw = fed.tmp / "uz-saw-kz.txt"
        saw.write_text(cosigned_by(fed, "uz"))
        args = ["--export", str(export), "--checkpoint", str(head), "--key", fed.keys.audit["kz"]]
        args += ["--policy", str(fed.tmp / "kz.policy"), "--cosigned", str(saw)]
        result = subprocess.run(
            [*migex_command(), "audit", "verify", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert "ok: " in result.stdout  # the rewritten log is self-consistent ...
        assert "does NOT meet the witness policy" in result.stdout  # ... but unwitnessed
        assert "INCONSISTENT with the checkpoint of size" in result.stdout
        assert "cosigned by uz" in result.stdout
    finally:
        fed.processes["kz"].start()


def test_a_split_view_cannot_gather_a_quorum_twice(fed: Witnessed) -> None:
    kz = fed["kz"]
    kz.delivered(send_statistics(kz, "uz"))
    wait_witnessed(fed, "kz", latest_size(kz))
    # Each witness must hold the honest log (one just reset would take any log as new).
    wait_cosigned_by_each_witness(fed, latest_size(kz))
    fed.processes["kz"].stop()
    try:
        honest = kz_log(fed)
        size = len(honest.leaves) + 1
        fork_a = MemoryLog(honest.origin, honest.key, [*honest.leaves, b'{"fork": "a"}'])
        fork_b = MemoryLog(honest.origin, honest.key, [*honest.leaves, b'{"fork": "b"}'])
        assert submit(fed, "uz", fork_a, size).status_code == 200
        assert submit(fed, "kg", fork_b, size).status_code == 200
        # The third witness decides which fork can reach two: once it cosigned one, the
        # other is inconsistent with what it saw.
        assert submit(fed, "tj", fork_a, size).status_code == 200
        assert submit(fed, "tj", fork_b, size).status_code == 422
        assert submit(fed, "uz", fork_b, size).status_code == 422
        a = (
            fork_a.checkpoint(size)
            + _lines(cosigned_by(fed, "uz"))
            + _lines(cosigned_by(fed, "tj"))
        )
        b = fork_b.checkpoint(size) + _lines(cosigned_by(fed, "kg"))
        assert evaluate(fed.policies["kz"], a).met
        assert not evaluate(fed.policies["kz"], b).met
    finally:
        fed.processes["kz"].start()


def _lines(cosigned_note: str) -> str:
    """The witness's own cosignature: the last signature line of what it stored."""
    return cosigned_note.splitlines(keepends=True)[-1]
