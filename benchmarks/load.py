"""Inbound load: wrk posts pre-signed verification requests to `migex serve --workers 2`.

Each message is signed beforehand by the partner (UZ:MIA) with a fresh id, so every
request is a new message the node must verify, check, store with its audit entry and
receipt. The same wrk settings drive a bare FastAPI endpoint that only reads the body
(uvicorn, 2 workers, uvloop, httptools): the ratio shows what the node adds to the
HTTP stack. Accepted messages are counted in the node's database after each run.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from benchmarks import nodes
from benchmarks.figures import OUT, Figure, at_least, below, print_figure, run_alone
from service.protocol import envelope, jws
from service.protocol.envelope import Envelope
from service.protocol.keys import load_signing_key

NAME = "load"
CONNECTIONS = 32
THREADS = 2
WORKERS = 2
WARMUP_SECONDS = 2
# Messages signed per second of run: above any rate the node reaches here, so the
# list never runs out (a thread that runs out stops and is reported).
SIGNED_PER_SECOND = 4000
LUA = Path(__file__).resolve().parent / "post.lua"


def _sign_chunk(key_file: str, kid: str, party: str, count: int, iat: int) -> list[bytes]:
    key = load_signing_key(Path(key_file), kid)
    body = nodes.example_body()
    out = []
    for _ in range(count):
        env = Envelope(
            v=1,
            id=str(uuid.uuid4()),
            iss=party,
            aud="KZ:MIA",
            iat=iat,
            type=nodes.VERIFICATION,
            agreement="kz-uz-2019",
            purpose="identity-verification",
            reply_to=None,
            body=body,
        )
        out.append(jws.sign_compact(key, envelope.encode_payload(env)))
    return out


def sign_messages(sender: nodes.Party, count: int, path: Path) -> None:
    """Write `count` signed messages, one compact JWS per line, signed on every processor."""
    iat = int(time.time())
    procs = max(1, len(os.sched_getaffinity(0)))
    shares = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
    with ProcessPoolExecutor(procs) as pool:
        futures = [
            pool.submit(_sign_chunk, str(sender.key_file), sender.kid, sender.party, n, iat)
            for n in shares
        ]
        with path.open("wb") as f:
            for future in futures:
                for token in future.result():
                    f.write(token + b"\n")


def wrk(
    url: str, messages: Path, seconds: int, log: Path, *, cycle: bool = False
) -> dict[str, Any]:
    args = [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA),
        url,
        "--",
        str(messages),
        str(THREADS),
    ]
    if cycle:
        args.append("cycle")
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 120)
    with log.open("a") as f:
        f.write(" ".join(args) + "\n" + done.stdout + done.stderr + "\n")
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            result: dict[str, Any] = json.loads(line[len("BENCH ") :])
            return result
    raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")


def run_bare(tmp: Path, messages: Path, seconds: int, log: Path) -> dict[str, Any]:
    port = nodes.free_port()
    args = [
        str(nodes.BIN / "uvicorn"),
        "benchmarks.bare_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    url = f"http://127.0.0.1:{port}/v1/messages"
    with nodes.Server(args, tmp / "bare.log", f"http://127.0.0.1:{port}/v1/health"):
        wrk(url, messages, WARMUP_SECONDS, log, cycle=True)
        return wrk(url, messages, seconds, log, cycle=True)


def run_node(
    tmp: Path,
    label: str,
    database: AbstractContextManager[str],
    kz: nodes.Party,
    uz: nodes.Party,
    warm: Path,
    main: Path,
    seconds: int,
    log: Path,
    privacy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One run against `migex serve`; `privacy` is the configuration's privacy section."""
    with database as url:
        port = nodes.free_port()
        cfg = nodes.node_config(
            kz, uz, database_url=url, port=port, partner_port=9, inbound=True, outbound=False
        )
        if privacy is not None:
            cfg["privacy"] = privacy
        config = nodes.write_config(tmp / f"kz-{label}.yaml", cfg)
        target = f"http://127.0.0.1:{port}/v1/messages"
        with nodes.migex_server(config, port, tmp / f"node-{label}.log", WORKERS):
            wrk(target, warm, WARMUP_SECONDS, log)
            before = nodes.accepted_count(url)
            result = wrk(target, main, seconds, log)
            result["accepted"] = nodes.accepted_count(url) - before
        server_log = (tmp / f"node-{label}.log").read_text()
        (OUT / f"load-node-{label}.log").write_text(server_log)
        return result


def _node_figures(
    label: str, result: dict[str, Any], bare_rps: float | None, target_rate: float, command: str
) -> list[Figure]:
    seconds = result["duration_us"] / 1e6
    rps = result["requests"] / seconds
    accepted = result["accepted"] / seconds
    non201 = result["requests"] - result["created"]
    note = f"{result['accepted']:,} accepted in {seconds:.1f} s; {result['created']:,} answered 201"
    if result["exhausted_threads"]:
        note += "; the message list ran out"
    figures = [
        Figure(
            NAME,
            f"{label}: accepted messages/s",
            accepted,
            "msg/s",
            command,
            at_least(target_rate),
            note,
        ),
        Figure(NAME, f"{label}: p99 latency", result["p99_us"] / 1000, "ms", command, below(50)),
        Figure(NAME, f"{label}: p50 latency", result["p50_us"] / 1000, "ms", command),
        Figure(NAME, f"{label}: requests/s", rps, "req/s", command),
        Figure(NAME, f"{label}: non-201 responses", float(non201), "", command),
    ]
    if bare_rps:
        figures.append(
            Figure(NAME, f"{label}: ratio to bare FastAPI", rps / bare_rps, "x", command)
        )
    return figures


def run(quick: bool = False) -> list[Figure]:
    seconds = 5 if quick else 15
    command = "bash benchmarks/run --only load" + (" --quick" if quick else "")
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "load-wrk.log"
    log.write_text("")
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="migex-bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        kz = nodes.make_party(tmp, "KZ:MIA")
        uz = nodes.make_party(tmp, "UZ:MIA")
        warm, main = tmp / "warm.txt", tmp / "main.txt"
        started = time.monotonic()
        sign_messages(uz, SIGNED_PER_SECOND * WARMUP_SECONDS, warm)
        sign_messages(uz, SIGNED_PER_SECOND * seconds, main)
        print(
            f"  signed {SIGNED_PER_SECOND * (WARMUP_SECONDS + seconds):,} messages "
            f"({main.stat().st_size // (SIGNED_PER_SECOND * seconds)} bytes each) "
            f"in {time.monotonic() - started:.1f} s",
            flush=True,
        )

        bare = run_bare(tmp, warm, seconds, log)
        bare_rps = bare["requests"] / (bare["duration_us"] / 1e6)
        for figure in [
            Figure(NAME, "bare FastAPI: requests/s", bare_rps, "req/s", command),
            Figure(NAME, "bare FastAPI: p99 latency", bare["p99_us"] / 1000, "ms", command),
        ]:
            print_figure(figure)
            figures.append(figure)

        sqlite_db: AbstractContextManager[str] = nullcontext(f"sqlite:///{tmp / 'sqlite.db'}")
        result = run_node(tmp, "sqlite", sqlite_db, kz, uz, warm, main, seconds, log)
        for figure in _node_figures("SQLite", result, bare_rps, 1500, command):
            print_figure(figure)
            figures.append(figure)

        if nodes.pg_available():
            result = run_node(
                tmp, "postgres", nodes.pg_database("load"), kz, uz, warm, main, seconds, log
            )
            pg_figures = _node_figures("PostgreSQL", result, bare_rps, 1000, command)
        else:
            pg_figures = [
                Figure(
                    NAME,
                    "PostgreSQL: accepted messages/s",
                    None,
                    "msg/s",
                    command,
                    at_least(1000),
                    "PostgreSQL not reachable",
                )
            ]
        for figure in pg_figures:
            print_figure(figure)
            figures.append(figure)
    return figures


if __name__ == "__main__":
    run_alone(__doc__, run)
