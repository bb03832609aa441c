"""Server time of the console's pages over a large audit log (1,000,000 entries;
100,000 with --quick), on SQLite and on PostgreSQL.

The node is started in-process on a copy of the cached benchmark log (the auditor pages
append their own `audit.query` entries, so the cached log is never touched) with the
messages, outbox rows and delivery attempts its entries stand for (`exchangerows`), and
with the clock at the log's last entry, so the overview's 14-day window holds the log's
last 14 days. Each page is requested through the ASGI app with a signed-in session and
timed from request to the last byte of the response: the node's work without network.
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from benchmarks import auditlog, exchangerows, nodes
from benchmarks.figures import Figure, below, print_figure, run_alone
from benchmarks.proofs import copy_to_postgres
from service.api.tokens import hash_token
from service.clock import FixedClock
from service.config import load_config
from service.main import create_app

NAME = "console"
TOKENS = {
    "auditor": "bench-auditor-token-0000000000000000000",
    "operator": "bench-operator-token-000000000000000000",
}
REQUESTS = 30
WARMUP = 3
TARGET_MS = 200.0


def _config(directory: Path, log: auditlog.BuiltLog, url: str) -> Path:
    key = directory / "audit.pem"
    shutil.copy(log.directory / "audit.pem", key)
    key.chmod(0o600)
    cfg = {
        "node": {
            "party": auditlog.NODE,
            "name": "benchmark node",
            "signing_keys": [{"kid": auditlog.KID, "file": str(key)}],
            "active_kid": auditlog.KID,
            "audit_kid": auditlog.KID,
        },
        "database_url": url,
        "tokens": [
            {"name": f"{role}-1", "role": role, "sha256": hash_token(token)}
            for role, token in TOKENS.items()
        ],
    }
    path = directory / "node.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _sign_in(client: TestClient, role: str) -> None:
    client.cookies.clear()
    page = client.get("/console/sign-in").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    resp = client.post(
        "/console/sign-in", data={"token": TOKENS[role], "csrf": csrf}, follow_redirects=False
    )
    assert resp.status_code == 303, resp.text


def _time(client: TestClient, paths: list[str]) -> list[float]:
    for path in paths[:WARMUP]:
        client.get(path)
    times = []
    for path in paths:
        started = time.perf_counter()
        resp = client.get(path)
        times.append(time.perf_counter() - started)
        assert resp.status_code == 200, (path, resp.status_code)
    return times


def pages(size: int, rng: random.Random) -> dict[str, tuple[str, list[str]]]:
    """Per page name: the role that opens it and the paths to request."""
    end = auditlog.START + auditlog.SPAN_DAYS * 86400
    day = 86400.0

    def day_window() -> str:
        since = end - rng.random() * 30 * day
        return f"since={time.strftime('%Y-%m-%dT%H:%M', time.gmtime(since - day))}&until={time.strftime('%Y-%m-%dT%H:%M', time.gmtime(since))}"

    party = lambda: rng.choice(auditlog.PARTIES)  # noqa: E731
    return {
        "overview": ("auditor", ["/console/overview"] * REQUESTS),
        "log, newest page": ("auditor", ["/console/log"] * REQUESTS),
        "log, party and 1 day": (
            "auditor",
            [f"/console/log?party={party()}&{day_window()}" for _ in range(REQUESTS)],
        ),
        "log, an older page": (
            "auditor",
            [f"/console/log?cursor={rng.randrange(1, size)}" for _ in range(REQUESTS)],
        ),
        "entry with proof": (
            "auditor",
            [f"/console/log/{rng.randrange(size)}" for _ in range(REQUESTS)],
        ),
        "checkpoints": ("auditor", ["/console/checkpoints"] * REQUESTS),
        "consistency check": (
            "auditor",
            [f"/console/checkpoints?from={auditlog.CHECKPOINT_EVERY}&to={size}"] * REQUESTS,
        ),
        "outbox, failed": ("operator", ["/console/outbox?state=failed"] * REQUESTS),
        "outbox, pending": ("operator", ["/console/outbox?state=pending"] * REQUESTS),
        "outbox, delivered": ("operator", ["/console/outbox?state=delivered"] * REQUESTS),
        "inbox": ("operator", ["/console/inbox"] * REQUESTS),
        "partners": ("operator", ["/console/partners"] * REQUESTS),
        "statistics": ("operator", ["/console/statistics"] * REQUESTS),
    }


def measure(
    label: str, url: str, directory: Path, log: auditlog.BuiltLog, command: str
) -> list[Figure]:
    """Each page's p95 on the node whose database is `url` (the log and exchange rows)."""
    figures: list[Figure] = []
    config = load_config(_config(directory, log, url))
    clock = FixedClock(auditlog.START + auditlog.SPAN_DAYS * 86400)
    app = create_app(config, clock=clock, migrate_on_start=False, run_delivery=False)
    with TestClient(app) as client:
        signed_in = None
        for page, (role, paths) in pages(log.size, random.Random(20261201)).items():
            if role != signed_in:
                _sign_in(client, role)
                signed_in = role
            times = sorted(_time(client, paths))
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))] * 1000
            figure = Figure(
                NAME,
                f"{label}: {page} p95",
                p95,
                "ms",
                command,
                below(TARGET_MS),
                f"mean {statistics.fmean(times) * 1000:.1f} ms over {len(times)}",
            )
            print_figure(figure)
            figures.append(figure)
    return figures


def _counted(counts: dict[str, int]) -> None:
    print("    exchange rows: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()), flush=True)


def run(quick: bool = False) -> list[Figure]:
    size = 100_000 if quick else 1_000_000
    log = auditlog.ensure_log(size)
    command = f"bash benchmarks/run --only {NAME}" + (" --quick" if quick else "")
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="migex-console-bench-") as tmp:
        directory = Path(tmp)
        shutil.copy(log.directory / "node.db", directory / "node.db")
        _counted(exchangerows.add_sqlite(directory / "node.db", size))
        url = f"sqlite:///{directory / 'node.db'}"
        figures += measure(f"SQLite {size // 1000:,}k", url, directory, log, command)
        label = f"PostgreSQL {size // 1000:,}k"
        if not nodes.pg_available():
            figure = Figure(
                NAME,
                f"{label}: overview p95",
                None,
                "ms",
                command,
                below(TARGET_MS),
                "PostgreSQL not reachable",
            )
            print_figure(figure)
            return [*figures, figure]
        with nodes.pg_database("console") as url:
            copy_to_postgres(log, url)
            _counted(exchangerows.add_postgres(nodes.pg_dsn(url), size))
            figures += measure(label, url, directory, log, command)
    return figures


if __name__ == "__main__":
    run_alone(__doc__, run)
