"""Memory: each worker's resident set after many accepted messages against after 10,000.

`migex serve --workers 2` on SQLite takes the `load` benchmark's traffic (wrk, 32
connections, pre-signed unique verification requests) in rounds of
`ROUND_SECONDS`; after each round the accepted messages are counted in the database
and each worker's VmRSS is read from /proc. The first reading at or past `BASELINE`
accepted messages is the baseline; the last is compared with it. A round's messages
are signed while the node is idle, between rounds.

The full run goes on to 1,000,000 accepted messages (about 20 minutes at 1,000/s);
`MIGEX_BENCH_MEMORY_MESSAGES` sets another goal and `MIGEX_BENCH_MEMORY_MINUTES`
bounds the time spent driving (the figure then says how far it got).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks import load, nodes
from benchmarks.figures import OUT, Figure, below, print_figure, run_alone

NAME = "memory"
BASELINE = 10_000
GOAL = 1_000_000
QUICK_GOAL = 100_000
ROUND_SECONDS = 20
GOAL_ENV = "MIGEX_BENCH_MEMORY_MESSAGES"
MINUTES_ENV = "MIGEX_BENCH_MEMORY_MINUTES"


def worker_pids(server_pid: int) -> list[int]:
    """The worker processes of a `migex serve --workers N` (the children running the app)."""
    found = []
    for pid in _children(server_pid):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"resource_tracker" not in cmdline:
            found.append(pid)
    return sorted(found)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out.extend(int(c) for c in (task / "children").read_text().split())
    return out


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def drive(
    tmp: Path, url: str, goal: int, minutes: float, log: Path
) -> tuple[list[tuple[int, list[int], float]], float]:
    """Post rounds until `goal` messages are accepted or `minutes` pass.

    Returns the readings (accepted so far, RSS of each worker in KiB, load average)
    and the accepted rate over the driven time."""
    kz = nodes.make_party(tmp, "KZ:MIA")
    uz = nodes.make_party(tmp, "UZ:MIA")
    port = nodes.free_port()
    cfg = nodes.node_config(
        kz, uz, database_url=url, port=port, partner_port=9, inbound=True, outbound=False
    )
    config = nodes.write_config(tmp / "kz.yaml", cfg)
    target = f"http://127.0.0.1:{port}/v1/messages"
    readings: list[tuple[int, list[int], float]] = []
    driven = 0.0
    messages = tmp / "round.txt"
    with nodes.migex_server(config, port, tmp / "node.log", load.WORKERS) as server:
        pids = worker_pids(server.pid)
        readings.append((0, [rss_kib(p) for p in pids], os.getloadavg()[0]))
        deadline = time.monotonic() + minutes * 60
        accepted = 0
        rate = float(load.SIGNED_PER_SECOND)
        while accepted < goal and time.monotonic() < deadline:
            # Short rounds up to the baseline, so that it is read close to it.
            seconds = ROUND_SECONDS if accepted >= BASELINE else 5
            # Twice the rate of the round before (the list must not run out), no more:
            # signing takes the processors from the node between rounds.
            count = min(load.SIGNED_PER_SECOND, int(rate * 2) + 100) * seconds
            load.sign_messages(uz, count, messages)
            began = time.monotonic()
            load.wrk(target, messages, seconds, log)
            driven += time.monotonic() - began
            before, accepted = accepted, nodes.accepted_count(url)
            rate = (accepted - before) / seconds
            rss = [rss_kib(p) for p in pids]
            readings.append((accepted, rss, os.getloadavg()[0]))
            print(
                f"    {accepted:,} accepted: worker RSS "
                + ", ".join(f"{r / 1024:.1f}" for r in rss)
                + f" MiB (load average {readings[-1][2]:.2f})",
                flush=True,
            )
        (OUT / "memory-node.log").write_text((tmp / "node.log").read_text())
    return readings, (readings[-1][0] / driven if driven else 0.0)


def run(quick: bool = False) -> list[Figure]:
    goal = int(os.environ.get(GOAL_ENV, QUICK_GOAL if quick else GOAL))
    minutes = float(os.environ.get(MINUTES_ENV, "60"))
    command = "bash benchmarks/run --only memory" + (" --quick" if quick else "")
    if GOAL_ENV in os.environ or MINUTES_ENV in os.environ:
        command = f"{GOAL_ENV}={goal} {MINUTES_ENV}={minutes:g} {command}"
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "memory-wrk.log"
    log.write_text("")
    with tempfile.TemporaryDirectory(prefix="migex-bench-memory-") as tmp_name:
        tmp = Path(tmp_name)
        readings, rate = drive(tmp, f"sqlite:///{tmp / 'node.db'}", goal, minutes, log)
    return _figures(readings, rate, goal, command)


def _figures(
    readings: list[tuple[int, list[int], float]], rate: float, goal: int, command: str
) -> list[Figure]:
    base = next((r for r in readings if r[0] >= BASELINE), None)
    last = readings[-1]
    curve = "; ".join(
        f"{n:,}: " + "/".join(f"{k / 1024:.0f}" for k in rss) + " MiB" for n, rss, _ in readings
    )
    loads = f"load average {min(r[2] for r in readings):.1f}-{max(r[2] for r in readings):.1f}"
    figures: list[Figure] = []
    reached = "" if last[0] >= goal else f"goal {goal:,} not reached; "
    for worker in range(len(last[1])):
        growth = None if base is None else last[1][worker] / base[1][worker] - 1
        note = f"{reached}{last[0]:,} accepted; RSS {last[1][worker] / 1024:.1f} MiB, " + (
            f"{base[1][worker] / 1024:.1f} MiB at {base[0]:,}" if base else "no baseline"
        )
        figures.append(
            Figure(
                NAME,
                f"worker {worker + 1}: RSS growth from {BASELINE:,} to {last[0]:,} messages",
                None if growth is None else growth * 100,
                "%",
                command,
                below(20),
                note,
            )
        )
    figures.append(
        Figure(NAME, "accepted messages/s while driven", rate, "msg/s", command, note=curve)
    )
    figures.append(Figure(NAME, "load average during the run", last[2], "", command, note=loads))
    for figure in figures:
        print_figure(figure)
    return figures


if __name__ == "__main__":
    run_alone(__doc__, run)
