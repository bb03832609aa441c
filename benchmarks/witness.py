"""Witnessing under load: how soon the newest checkpoint meets the witness policy, and what
witnessing costs the inbound rate.

The load benchmark's run (wrk posting pre-signed verification requests to `migex serve
--workers 2`, SQLite) is made twice: once with the node witnessed by three witness nodes
on loopback (each `migex serve`, SQLite, policy 2 of 3), once without. For every
checkpoint issued during the witnessed run, the delay is the time from its issue (the
commit of the batch it covers) until it, or a later checkpoint, met the policy, read
from the cosignatures the node stored with their time of arrival.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

from benchmarks import nodes
from benchmarks.figures import OUT, Figure, at_least, below, print_figure, run_alone
from benchmarks.load import SIGNED_PER_SECOND, WARMUP_SECONDS, WORKERS, sign_messages, wrk
from service.audit.note import verifier_key
from service.witness.cosignature import CosignerKey
from service.witness.policy import parse_policy
from service.witness.status import Witnessing

NAME = "witness"
WITNESSES = ("UZ:MIA", "KG:SRS", "TJ:MIA")
SETTLE_SECONDS = 10.0


def witness_node(tmp: Path, party: str, kz: nodes.Party, kz_port: int) -> tuple[Path, int, str]:
    """A witness node's configuration, its port, and its witness verifier key."""
    me = nodes.make_party(tmp, party)
    keys = tmp / f"witness-{party.replace(':', '_')}"
    keys.mkdir()
    wkey = nodes.make_party(keys, party, label="witness-1")
    port = nodes.free_port()
    cfg = nodes.node_config(
        me,
        kz,
        database_url=f"sqlite:///{tmp / (party.replace(':', '_') + '.db')}",
        port=port,
        partner_port=kz_port,
        inbound=False,
        outbound=False,
    )
    cfg["node"]["signing_keys"].append({"kid": wkey.kid, "file": str(wkey.key_file)})
    cfg["node"]["witness_kid"] = wkey.kid
    cfg["witness"] = {"rate_limit": {"per_second": 1000, "burst": 1000}}
    path = nodes.write_config(tmp / f"witness-{party.replace(':', '_')}.yaml", cfg)
    private = wkey.key.private
    assert isinstance(private, Ed25519PrivateKey)
    return path, port, CosignerKey(f"migex/{party}/witness", private.public_key()).vkey


def policy_text(kz: nodes.Party, witnesses: dict[str, tuple[Path, int, str]]) -> str:
    private = kz.key.private
    assert isinstance(private, Ed25519PrivateKey)
    lines = [f"log {verifier_key('migex/KZ:MIA', private.public_key())}"]
    for party, (_, port, vkey) in witnesses.items():
        name = party.split(":")[0].lower()
        lines.append(f"witness {name} {vkey} http://127.0.0.1:{port}/v1/witness")
    names = " ".join(p.split(":")[0].lower() for p in witnesses)
    return "\n".join([*lines, f"group partners 2 {names}", "quorum partners", ""])


def delays(url: str, policy_file: Path, since: float, until: float) -> list[float]:
    """Per checkpoint issued in [since, until): seconds until it or a later one met the policy."""
    witnessing = Witnessing.of(parse_policy(policy_file.read_text()))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            issued = conn.execute(text("SELECT pk, issued_at FROM checkpoints ORDER BY pk")).all()
            rows = conn.execute(
                text(
                    "SELECT checkpoint_pk, witness, received_at FROM witness_cosignatures "
                    "ORDER BY received_at"
                )
            ).all()
    finally:
        engine.dispose()
    met_at: dict[int, float] = {}
    seen: dict[int, set[str]] = {}
    for pk, witness, received in rows:
        seen.setdefault(pk, set()).add(witness)
        if pk not in met_at and witnessing.met(seen[pk]):
            met_at[pk] = float(received)
    found = []
    for pk, at in issued:
        if not since <= at < until:
            continue
        later = [t for q, t in met_at.items() if q >= pk]
        if later:
            found.append(min(later) - float(at))
    return found


def run_kz(
    tmp: Path,
    label: str,
    kz: nodes.Party,
    uz: nodes.Party,
    port: int,
    messages: tuple[Path, Path],
    seconds: int,
    log: Path,
    policy: Path | None,
) -> dict[str, Any]:
    url = f"sqlite:///{tmp / f'kz-{label}.db'}"
    cfg = nodes.node_config(
        kz, uz, database_url=url, port=port, partner_port=9, inbound=True, outbound=False
    )
    if policy is not None:
        cfg["witnessed_by"] = {
            "policy_file": str(policy),
            "timeout_seconds": 2,
            "backoff_initial_seconds": 0.2,
            "backoff_max_seconds": 2,
        }
    config = nodes.write_config(tmp / f"kz-{label}.yaml", cfg)
    target = f"http://127.0.0.1:{port}/v1/messages"
    warm, main = messages
    with nodes.migex_server(config, port, tmp / f"kz-{label}.log", WORKERS):
        wrk(target, warm, WARMUP_SECONDS, log)
        before = nodes.accepted_count(url)
        started = time.time()
        result = wrk(target, main, seconds, log)
        ended = time.time()
        result["accepted"] = nodes.accepted_count(url) - before
        if policy is not None:
            time.sleep(SETTLE_SECONDS)  # let the last checkpoints gather their cosignatures
            result["delays"] = delays(url, policy, started, ended)
    (OUT / f"witness-kz-{label}.log").write_text((tmp / f"kz-{label}.log").read_text())
    return result


def run(quick: bool = False) -> list[Figure]:
    seconds = 5 if quick else 15
    command = "bash benchmarks/run --only witness" + (" --quick" if quick else "")
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "witness-wrk.log"
    log.write_text("")
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="migex-bench-witness-") as tmp_name:
        tmp = Path(tmp_name)
        kz = nodes.make_party(tmp, "KZ:MIA")
        uz_sender = tmp / "sender"
        uz_sender.mkdir()
        uz = nodes.make_party(uz_sender, "UZ:MIA")
        warm, plain, witnessed = tmp / "warm.txt", tmp / "plain.txt", tmp / "witnessed.txt"
        sign_messages(uz, SIGNED_PER_SECOND * WARMUP_SECONDS * 2, warm)
        sign_messages(uz, SIGNED_PER_SECOND * seconds, plain)
        sign_messages(uz, SIGNED_PER_SECOND * seconds, witnessed)
        kz_port = nodes.free_port()
        witnesses = {p: witness_node(tmp, p, kz, kz_port) for p in WITNESSES}
        policy = tmp / "kz.policy"
        policy.write_text(policy_text(kz, witnesses))
        baseline = run_kz(tmp, "plain", kz, uz, kz_port, (warm, plain), seconds, log, None)
        with contextlib.ExitStack() as stack:
            for path, port, _ in witnesses.values():
                stack.enter_context(nodes.migex_server(path, port, tmp / f"w-{port}.log", 1))
            with_witnesses = run_kz(
                tmp, "witnessed", kz, uz, kz_port, (warm, witnessed), seconds, log, policy
            )
        figures += _figures(baseline, with_witnesses, seconds, command)
    for figure in figures:
        print_figure(figure)
    return figures


def _figures(
    baseline: dict[str, Any], witnessed: dict[str, Any], seconds: int, command: str
) -> list[Figure]:
    plain_rate = baseline["accepted"] / (baseline["duration_us"] / 1e6)
    rate = witnessed["accepted"] / (witnessed["duration_us"] / 1e6)
    found: list[float] = sorted(witnessed["delays"])
    figures = [
        Figure(NAME, "accepted messages/s without witnesses", plain_rate, "msg/s", command),
        Figure(NAME, "accepted messages/s with three witnesses", rate, "msg/s", command),
        Figure(
            NAME,
            "inbound rate with witnesses, share of without",
            rate / plain_rate if plain_rate else 0.0,
            "x",
            command,
            at_least(0.95),
        ),
    ]
    if not found:
        figures.append(
            Figure(
                NAME,
                "checkpoint meets the policy: median",
                None,
                "s",
                command,
                below(1.0),
                "no checkpoint of the run met the policy",
            )
        )
        return figures
    p99 = found[min(len(found) - 1, int(len(found) * 0.99))]
    note = f"{len(found)} checkpoints in {seconds} s"
    figures += [
        Figure(
            NAME,
            "checkpoint meets the policy: median",
            statistics.median(found),
            "s",
            command,
            below(1.0),
            note,
        ),
        Figure(NAME, "checkpoint meets the policy: p99", p99, "s", command, below(3.0), note),
    ]
    return figures


if __name__ == "__main__":
    run_alone(__doc__, run)
