"""`migex privacy rotate-kek` killed with SIGKILL after two committed batches, then run
again: the second run does exactly the rows left, and every body opens under the new
KEK (SQLite and PostgreSQL, the command as a real process).

The command is made to stop at a known point by MIGEX_TEST_ROTATE_HOLD_AFTER (it hangs
after that many committed batches); the test waits for the batches' audit entries in
the database, then kills it.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from sqlalchemy import func, select

from service.clock import FixedClock
from service.db.engine import create_engines
from service.db.tables import audit_entries, messages
from tests.support.atrest import CLIENT, configure, node_of, receive, start, write_kek
from tests.support.nodes import Federation
from tests.support.processes import child_environment, migex_command, poll

MESSAGES = 10
BATCH = 2
HOLD_AFTER = 2


def rotated_entries(database_url: str) -> int:
    engines = create_engines(database_url)
    try:
        with engines.reader.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(audit_entries)
                    .where(audit_entries.c.event == "privacy.kek-rotated")
                ).scalar_one()
            )
    finally:
        engines.dispose()


def under(database_url: str, kek_id: str) -> int:
    engines = create_engines(database_url)
    try:
        with engines.reader.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(messages).where(messages.c.kek_id == kek_id)
                ).scalar_one()
            )
    finally:
        engines.dispose()


def test_rotation_killed_mid_run_resumes_with_the_rows_left(
    federation: Federation, clock: FixedClock, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    keks = {"k1": write_kek(secrets, "k1.kek", 1), "k2": write_kek(secrets, "k2.kek", 2)}
    with start(federation, clock, {"k1": keks["k1"]}) as client:
        for _ in range(MESSAGES):
            receive(client, federation)
    with start(federation, clock, keks, active="k2"):  # the node restarted with k2 active
        config = configure(federation, keks, active="k2")
    command = [*migex_command(), "privacy", "rotate-kek", "-c", str(config)]
    url = federation.database_url

    held = subprocess.Popen(
        [*command, "--batch-size", str(BATCH)],
        env=child_environment({"MIGEX_TEST_ROTATE_HOLD_AFTER": str(HOLD_AFTER)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        poll(
            lambda: rotated_entries(url) >= HOLD_AFTER,
            timeout=60,
            what="two committed rotation batches",
        )
        assert held.poll() is None, held.communicate()
        held.send_signal(signal.SIGKILL)
        held.wait(timeout=30)
    finally:
        if held.poll() is None:
            held.kill()
            held.wait(timeout=30)
        held.communicate()
    assert held.returncode == -signal.SIGKILL
    assert rotated_entries(url) == HOLD_AFTER
    assert under(url, "k1") == MESSAGES - HOLD_AFTER * BATCH

    resumed = subprocess.run(
        command, env=child_environment({}), capture_output=True, timeout=120, check=False
    )

    assert resumed.returncode == 0, resumed.stderr.decode()
    report = json.loads(resumed.stdout)
    assert report["rewrapped"]["messages"] == MESSAGES - HOLD_AFTER * BATCH
    assert report["left"] == {"messages": 0, "signed_versions": 0, "pending_messages": 0}
    assert report["retired"] == ["k1"]
    assert under(url, "k1") == 0
    assert under(url, "k2") == MESSAGES
    with start(federation, clock, {"k2": keks["k2"]}) as client:
        inbox = client.get("/v1/inbox", headers=CLIENT).json()["messages"]
        assert node_of(client).bodies.sealer is not None
    assert len(inbox) == MESSAGES
    assert all(m["body"]["person"]["identifiers"] for m in inbox)
