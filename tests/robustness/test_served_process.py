"""What a `migex serve` process leaves and writes: no metrics directory after it stops,
nothing but JSON lines on standard error, also while its database is going away; and
several workers sharing one SQLite file, as docs/operators.md says they may."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.robustness import ledger
from tests.robustness.served import audit_vkey, config_path, database, fresh, node_config
from tests.support.databases import PG_URL
from tests.support.nodes import CLIENT_TOKEN, Federation
from tests.support.processes import NodeProcess

pytestmark = pytest.mark.slow

JOSE = {"Content-Type": "application/jose"}
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_dirs(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("migex-metrics-*"))


def exchange_a_message(federation: Federation, node: NodeProcess) -> None:
    token = federation.uz.sign(fresh(federation))
    resp = httpx.post(f"{node.url}/v1/messages", content=token, headers=JOSE, timeout=10)
    assert resp.status_code == 201, resp.text


def test_several_workers_leave_no_metrics_directory_after_sigterm(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"  # the node's temporary directory, watched alone
    scratch.mkdir()
    with database("sqlite", tmp_path) as url:
        federation = node_config(tmp_path, url)
        env = {"TMPDIR": str(scratch), METRICS_ENV: ""}
        node = NodeProcess("kz", config_path(federation), log_dir=tmp_path, env=env, workers=2)
        with node:
            node.start()
            exchange_a_message(federation, node)
            [directory] = metrics_dirs(scratch)
            assert any(directory.iterdir()), "the workers wrote no metrics there"
            code = node.stop()  # SIGTERM
    assert code == 0, node.log_tail()
    assert metrics_dirs(scratch) == []


def test_a_metrics_directory_the_operator_set_is_kept(tmp_path: Path) -> None:
    mine = tmp_path / "metrics"
    mine.mkdir()
    with database("sqlite", tmp_path) as url:
        federation = node_config(tmp_path, url)
        env = {"TMPDIR": str(tmp_path), METRICS_ENV: str(mine)}
        node = NodeProcess("kz", config_path(federation), log_dir=tmp_path, env=env, workers=2)
        with node:
            node.start()
            exchange_a_message(federation, node)
            node.stop()
    assert any(mine.iterdir())
    assert metrics_dirs(tmp_path) == []


def test_two_workers_share_one_sqlite_file(tmp_path: Path) -> None:
    with database("sqlite", tmp_path) as url:
        federation = node_config(tmp_path, url)
        tokens = [federation.uz.sign(fresh(federation)) for _ in range(80)]
        with NodeProcess("kz", config_path(federation), log_dir=tmp_path, workers=2) as node:
            node.start()

            def send(token: bytes) -> int:
                resp = httpx.post(
                    f"{node.url}/v1/messages", content=token, headers=JOSE, timeout=30
                )
                return resp.status_code

            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(send, tokens))
            node.stop()
        engine = create_engine(url)
        try:
            size = ledger.tree_size(engine)
            indices = ledger.indices(engine)
            stored = ledger.stored_rows(engine)
            report = ledger.verify_log(engine, audit_vkey(federation))
        finally:
            engine.dispose()
    assert statuses == [201] * len(tokens)
    assert len(stored) == len(tokens)
    assert indices == list(range(size))
    assert report.ok, report.reason


def not_json(log: Path) -> list[str]:
    bad = []
    for line in log.read_text("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if not isinstance(record, dict) or not {"time", "level", "logger", "msg"} <= set(record):
            bad.append(line)
    return bad


def test_a_served_process_writes_only_json_lines(tmp_path: Path) -> None:
    with database("sqlite", tmp_path) as url:
        federation = node_config(tmp_path, url)
        with NodeProcess("kz", config_path(federation), log_dir=tmp_path) as node:
            node.start()
            exchange_a_message(federation, node)
            httpx.post(f"{node.url}/v1/messages", content=b"garbage", headers=JOSE, timeout=10)
            node.stop()
        assert not_json(node.log_path) == []


# -- a database outage ---------------------------------------------------------------

OUTAGE_SECONDS = 6.0
KILL = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = :db AND pid <> pg_backend_pid()"
)


@pytest.fixture
def pg_node(pg_database: str, tmp_path: Path) -> Iterator[tuple[Federation, NodeProcess]]:
    federation = node_config(tmp_path, pg_database)
    with NodeProcess("kz", config_path(federation), log_dir=tmp_path, workers=2) as node:
        node.start()
        yield federation, node


@pytest.mark.postgres
def test_every_log_line_is_json_while_the_database_connections_are_killed(
    pg_node: tuple[Federation, NodeProcess],
) -> None:
    federation, node = pg_node
    assert PG_URL
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = make_url(federation.database_url).database
    stop = threading.Event()
    killed = [0]

    def kill_connections() -> None:
        with admin.connect() as conn:
            while not stop.wait(0.05):
                killed[0] += int(conn.execute(KILL, {"db": name}).scalar_one())

    def exercise(n: int) -> int:
        try:
            if n % 3 == 0:
                auth = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
                resp = httpx.get(f"{node.url}/v1/inbox", headers=auth, timeout=10)
            else:
                token = federation.uz.sign(fresh(federation))
                resp = httpx.post(
                    f"{node.url}/v1/messages", content=token, headers=JOSE, timeout=10
                )
        except httpx.HTTPError:
            return 0
        return resp.status_code

    killer = threading.Thread(target=kill_connections)
    killer.start()
    statuses: list[int] = []
    try:
        deadline = time.monotonic() + OUTAGE_SECONDS
        with ThreadPoolExecutor(6) as pool:
            while time.monotonic() < deadline:
                statuses += pool.map(exercise, range(24))
    finally:
        stop.set()
        killer.join()
        admin.dispose()
    node.stop()
    assert killed[0] > 0
    assert 503 in statuses, "no request met a killed connection"
    assert not_json(node.log_path) == []
