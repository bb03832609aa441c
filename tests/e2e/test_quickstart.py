"""The README's walk-through, run as written: `migex quickstart` starts a node, the demo
partner signs and posts a message with `migex send`, and the auditor's token reads the
exchange back from the log."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from service.db.tables import messages
from tests.support.processes import child_environment, free_port, migex_command, poll

ROOT = Path(__file__).resolve().parents[2]
AUDITOR = {"Authorization": "Bearer kz-auditor-dev-token"}


@pytest.fixture
def quickstart(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    directory = tmp_path / "quickstart"
    log = (tmp_path / "quickstart.log").open("wb")
    proc = subprocess.Popen(
        [*migex_command(), "quickstart", "--dir", str(directory), "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=child_environment(None),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError((tmp_path / "quickstart.log").read_text())
        try:
            return httpx.get(f"{url}/v1/ready", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        poll(ready, timeout=60, what="quickstart node ready")
        yield url, directory
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_the_readme_walk_through_works_as_written(quickstart: tuple[str, Path]) -> None:
    url, directory = quickstart
    assert httpx.get(f"{url}/.well-known/jwks.json").json()["keys"][0]["kid"] == "KZ:MIA#dev-1"
    sent = subprocess.run(
        [
            *migex_command(),
            "send",
            "--key",
            str(directory / "keys" / "uz-demo.pem"),
            "--kid",
            "UZ:MIA#dev-1",
            "--url",
            url,
            "--to",
            "KZ:MIA",
            "--file",
            str(ROOT / "schemas" / "examples" / "statistics.migration-flows.json"),
            "--type",
            "statistics.migration-flows",
            "--agreement",
            "kz-uz-2019",
            "--purpose",
            "statistics",
        ],
        capture_output=True,
        env=child_environment(None),
        timeout=60,
        check=False,
    )
    assert sent.returncode == 0, sent.stderr.decode()
    answer = json.loads(sent.stdout)
    assert answer["status"] == 201
    checkpoint = httpx.get(f"{url}/v1/audit/checkpoint", headers=AUDITOR)
    assert checkpoint.status_code == 200
    assert checkpoint.text.startswith("migex/KZ:MIA\n")
    found = httpx.get(
        f"{url}/v1/audit/search", headers=AUDITOR, params={"message_id": answer["id"]}
    ).json()
    assert [e["entry"]["event"] for e in found["entries"]] == ["message.accepted"]
    # The quick start seals what it stores under the KEK it wrote (docs/privacy.md).
    engine = create_engine(f"sqlite:///{directory / 'migex.db'}")
    try:
        with engine.connect() as conn:
            kek_ids = conn.execute(select(messages.c.kek_id)).scalars().all()
    finally:
        engine.dispose()
    assert kek_ids == ["dev-1"]
    assert len((directory / "keys" / "kek-dev-1").read_bytes()) == 32
