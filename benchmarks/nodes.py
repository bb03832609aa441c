"""Nodes for the benchmarks: keys, configuration files, server processes, databases."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.api.tokens import hash_token
from service.protocol import envelope, jws
from service.protocol.envelope import Envelope
from service.protocol.keys import (
    SigningKey,
    generate_private_key,
    load_signing_key,
    write_private_key,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MIGEX = str(BIN / "migex")
PG_URL = os.environ.get(
    "MIGEX_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# Bearer tokens of the throwaway benchmark nodes (only their hashes go into the files).
CLIENT_TOKEN = "bench-client-token-0000000000000000000000"  # noqa: S105
OPERATOR_TOKEN = "bench-operator-token-00000000000000000000"  # noqa: S105
AUDITOR_TOKEN = "bench-auditor-token-000000000000000000000"  # noqa: S105
# What each uvicorn worker logs once it serves (counted by `Server`).
STARTED = b"Application startup complete."

VERIFICATION = "citizenship.verification-request"
AGREEMENT = {
    "id": "kz-uz-2019",
    "title": "Agreement between Kazakhstan and Uzbekistan on migration information exchange",
    "parties": ["KZ", "UZ"],
    "signed": "2019-04-15",
    "in_force": "2020-05-22",
    "covers": [
        {"types": ["statistics.migration-flows"], "purposes": ["statistics"]},
        {
            "types": [VERIFICATION, "citizenship.verification-response"],
            "purposes": ["identity-verification"],
        },
    ],
}


@dataclass
class Party:
    party: str
    kid: str
    key: SigningKey
    key_file: Path

    def sign(self, env: Envelope) -> bytes:
        return jws.sign_compact(self.key, envelope.encode_payload(env))

    def public_entry(self) -> dict[str, Any]:
        return {"kid": self.kid, "jwk": self.key.public().jwk(), "algs": ["Ed25519", "EdDSA"]}


def make_party(directory: Path, party: str, label: str = "bench-1") -> Party:
    kid = f"{party}#{label}"
    private = generate_private_key("ed25519")
    path = directory / f"{party.replace(':', '_')}.pem"
    write_private_key(path, private)
    return Party(party, kid, SigningKey(kid, private), path)


def load_party(key_file: Path, party: str, label: str = "bench-1") -> Party:
    """The party whose key `make_party` wrote to `key_file` earlier."""
    kid = f"{party}#{label}"
    return Party(party, kid, load_signing_key(key_file, kid), key_file)


def example_body(msg_type: str = VERIFICATION) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        (ROOT / "schemas" / "examples" / f"{msg_type}.json").read_text()
    )
    return body


def verification_envelope(sender: Party, recipient: str, iat: int) -> Envelope:
    return Envelope(
        v=1,
        id=str(uuid.uuid4()),
        iss=sender.party,
        aud=recipient,
        iat=iat,
        type=VERIFICATION,
        agreement="kz-uz-2019",
        purpose="identity-verification",
        reply_to=None,
        body=example_body(),
    )


def tokens() -> list[dict[str, str]]:
    return [
        {"name": "bench-client", "role": "client", "sha256": hash_token(CLIENT_TOKEN)},
        {"name": "bench-operator", "role": "operator", "sha256": hash_token(OPERATOR_TOKEN)},
        {"name": "bench-auditor", "role": "auditor", "sha256": hash_token(AUDITOR_TOKEN)},
    ]


def node_config(
    me: Party,
    partner: Party,
    *,
    database_url: str,
    port: int,
    partner_port: int,
    inbound: bool,
    outbound: bool,
    delivery_concurrency: int = 8,
) -> dict[str, Any]:
    """A node of `me` with one partner, allowed verification requests in either direction."""
    prefix = partner.party.split(":", 1)[0].lower()
    rules: list[dict[str, Any]] = []
    if inbound:
        rules.append(
            {
                "id": f"{prefix}-in-verification",
                "direction": "inbound",
                "types": [VERIFICATION],
                "agreements": ["kz-uz-2019"],
                "purposes": ["identity-verification"],
            }
        )
    if outbound:
        rules.append(
            {
                "id": f"{prefix}-out-verification",
                "direction": "outbound",
                "types": [VERIFICATION],
                "agreements": ["kz-uz-2019"],
                "purposes": ["identity-verification"],
                "fields": ["*"],
            }
        )
    return {
        "node": {
            "party": me.party,
            "name": f"{me.party} benchmark node",
            "signing_keys": [{"kid": me.kid, "file": str(me.key_file)}],
            "active_kid": me.kid,
            "audit_kid": me.kid,
        },
        "database_url": database_url,
        "listen": {"host": "127.0.0.1", "port": port},
        "audit": {"checkpoint_interval_seconds": 1},
        "delivery": {"concurrency": delivery_concurrency},
        "agreements": [AGREEMENT],
        "partners": [
            {
                "party": partner.party,
                "name": f"{partner.party} benchmark partner",
                "endpoint": f"http://127.0.0.1:{partner_port}",
                "keys": [partner.public_entry()],
                "rate_limit": {"per_second": 1_000_000, "burst": 1_000_000},
                "rules": rules,
            }
        ],
        "tokens": tokens(),
    }


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(
    url: str, deadline_seconds: float = 60.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll `url` until it answers 200, the process dies, or the deadline passes."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready within {deadline_seconds:g} s")


class Server:
    """A server process (its output to a log file), stopped with SIGTERM."""

    def __init__(
        self,
        args: list[str],
        log: Path,
        ready_url: str,
        env: dict[str, str] | None = None,
        workers: int = 0,
    ) -> None:
        self.args = args
        self.workers = workers
        self.log = log
        self.ready_url = ready_url
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        out = self.log.open("wb")
        self.proc = subprocess.Popen(
            self.args,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **(self.env or {})},
            start_new_session=True,
        )
        out.close()
        try:
            wait_http(self.ready_url, proc=self.proc)
            self._wait_started()
        except Exception:
            self.stop()
            print(self.log.read_text()[-3000:], file=sys.stderr)
            raise
        return self

    def _wait_started(self, deadline_seconds: float = 60.0) -> None:
        """Wait until the log shows every worker started: the health check is answered by
        the first one ready, and a worker still importing would take the processor from
        the measured ones (on a loaded machine a start-up takes seconds)."""
        deadline = time.monotonic() + deadline_seconds
        while self.log.read_bytes().count(STARTED) < self.workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.workers} workers not started in {deadline_seconds:g} s")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def migex_server(config: Path, port: int, log: Path, workers: int) -> Server:
    args = [MIGEX, "serve", "--config", str(config), "--port", str(port), "--workers", str(workers)]
    return Server(args, log, f"http://127.0.0.1:{port}/v1/health", workers=workers)


# -- PostgreSQL ------------------------------------------------------------------
def pg_dsn(url: str) -> str:
    parsed = make_url(url)
    parts = [f"host={parsed.host or '127.0.0.1'}", f"port={parsed.port or 5432}"]
    parts.append(f"user={parsed.username or 'postgres'}")
    parts.append(f"dbname={parsed.database or 'postgres'}")
    if parsed.password:
        parts.append(f"password={parsed.password}")
    return " ".join(parts)


def pg_available() -> bool:
    try:
        with psycopg.connect(pg_dsn(PG_URL), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@contextlib.contextmanager
def pg_database(label: str) -> Iterator[str]:
    """A fresh database `migex_bench_<label>_<random>`, dropped afterwards; yields its URL."""
    name = f"migex_bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn(PG_URL), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(pg_dsn(PG_URL), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def accepted_count(url: str) -> int:
    """Messages the node at `url` received and stored."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM messages WHERE direction = 'in'")
                ).scalar_one()
            )
    finally:
        engine.dispose()
