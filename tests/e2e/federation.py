"""The four-country federation of docker/config on loopback: keys, configuration files,
node processes, and each agency's client of its node's local API.

The configuration files are docker/config/<node>.yaml with only these lines changed:
partner endpoints (`http://kz:8000` -> `http://127.0.0.1:<port>`), the listen
address, `database_url` (a SQLite file), the delivery timing (see
`DELIVERY_TIMING`), and the witness policy file: the one keys-init wrote, with the
witnesses' URLs changed the same way. `changed_lines` lets a test check exactly that.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import NodeProcess, migex_command, poll

ROOT = Path(__file__).resolve().parents[2]
DOCKER_CONFIG = ROOT / "docker" / "config"
KEYS_INIT = ROOT / "docker" / "keys-init.sh"
NODES = ("kz", "kg", "uz", "tj")
PARTY = {"kz": "KZ:MIA", "kg": "KG:SRS", "uz": "UZ:MIA", "tj": "TJ:MIA"}

# The docker files wait 1 s before the first retry and double up to 10 min, giving up
# after 10 attempts. A partner restarted in a test comes back within seconds, so the
# retry timing is shortened (and more attempts allowed, so that an outage of a few
# seconds cannot exhaust them); nothing else about delivery changes.
DELIVERY_TIMING = {
    "max_attempts": ("10", "60"),
    "backoff_initial_seconds": ("1.0", "0.25"),
    "backoff_max_seconds": ("600.0", "1.0"),
}


def init_keys(secrets_root: Path, public_dir: Path) -> None:
    """Run docker/keys-init.sh: a signing and a witness key per node, the public JWKs
    and the witness policies."""
    migex_dir = str(Path(migex_command()[0]).parent)
    env = {
        "PATH": f"{migex_dir}:/usr/bin:/bin",
        "MIGEX_SECRETS_ROOT": str(secrets_root),
        "MIGEX_PUBLIC_DIR": str(public_dir),
        "MIGEX_PYTHON": sys.executable,
    }
    subprocess.run(
        ["/bin/bash", str(KEYS_INIT)], env=env, check=True, capture_output=True, timeout=120
    )


def loopback(text: str, ports: Mapping[str, int]) -> str:
    """`text` with the compose network's node addresses replaced by loopback ports."""
    for other, port in ports.items():
        text = text.replace(f"http://{other}:8000", f"http://127.0.0.1:{port}")
    return text


def local_config(name: str, ports: Mapping[str, int], database: Path) -> str:
    """docker/config/<name>.yaml for loopback ports and a SQLite database. The node's
    witness policy, from keys-init's public directory (`public` beside the database),
    is written beside the database with loopback URLs."""
    policy = database.parent / f"{name}.witness-policy"
    public = database.parent / "public" / policy.name
    policy.write_text(loopback(public.read_text("utf-8"), ports), "utf-8")
    text = loopback((DOCKER_CONFIG / f"{name}.yaml").read_text("utf-8"), ports)
    text = _sub_once(r"(?m)^  policy_file: .*$", f"  policy_file: {policy}", text)
    text = _sub_once(r"(?m)^database_url: .*$", f'database_url: "sqlite:///{database}"', text)
    attachments = database.parent / f"{name}-attachments"
    text = _sub_once(
        r"(?m)^  directory: /var/lib/migex/attachments$", f"  directory: {attachments}", text
    )
    text = _sub_once(
        r"(?m)^listen: .*$", f'listen: {{host: "127.0.0.1", port: {ports[name]}}}', text
    )
    for key, (old, new) in DELIVERY_TIMING.items():
        text = _sub_once(rf"(?m)^(\s+{key}): {re.escape(old)}$", rf"\1: {new}", text)
    return text


def changed_lines(name: str, text: str) -> list[tuple[str, str]]:
    """The (original, substituted) pairs of lines that differ from the docker file."""
    original = (DOCKER_CONFIG / f"{name}.yaml").read_text("utf-8").splitlines()
    substituted = text.splitlines()
    assert len(original) == len(substituted)
    return [(a, b) for a, b in zip(original, substituted, strict=True) if a != b]


def only_addresses_and_timing_changed(name: str, text: str) -> bool:
    return all(
        re.match(
            r"^\s*(endpoint|database_url|listen|policy_file|directory|"
            + "|".join(DELIVERY_TIMING)
            + "):",
            a,
        )
        for a, _ in changed_lines(name, text)
    )


def _sub_once(pattern: str, replacement: str, text: str) -> str:
    result, count = re.subn(pattern, replacement, text)
    assert count == 1, f"{pattern!r} matched {count} times"
    return result


def node_env(tmp: Path, name: str) -> dict[str, str]:
    """Where the configuration's key paths resolve: the node's secrets, the shared JWKs."""
    return {
        "MIGEX_SECRETS_DIR": str(tmp / "secrets" / name),
        "MIGEX_PUBLIC_KEYS_DIR": str(tmp / "public"),
    }


@contextmanager
def running(nodes: Mapping[str, NodeProcess], timeout: float = 90.0) -> Iterator[None]:
    """Start the nodes in parallel, wait until each is ready; stop them all at the end."""
    try:
        for node in nodes.values():
            node.start(wait=False)
        for node in nodes.values():
            node.wait_ready(timeout=timeout)
        yield
    finally:
        for node in nodes.values():
            node.stop()


@dataclass
class Agency:
    """One agency's systems and staff, talking to their own node with dev tokens."""

    name: str
    url: str

    @property
    def party(self) -> str:
        return PARTY[self.name]

    def _headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.name}-{role}-dev-token"}

    def send(self, **item: Any) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/outbox", json=item, headers=self._headers("client"))

    def queue(self, **item: Any) -> dict[str, Any]:
        resp = self.send(**item)
        assert resp.status_code == 202, resp.text
        accepted: dict[str, Any] = resp.json()
        return accepted

    def status(self, message_id: str) -> dict[str, Any]:
        resp = httpx.get(f"{self.url}/v1/outbox/{message_id}", headers=self._headers("client"))
        assert resp.status_code == 200, resp.text
        doc: dict[str, Any] = resp.json()
        return doc

    def delivered(self, message_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """Poll the message's status until it is delivered; fail if it ends otherwise."""

        def check() -> dict[str, Any] | None:
            status = self.status(message_id)
            assert status["status"] in ("queued", "delivered"), status
            return status if status["status"] == "delivered" else None

        return poll(check, timeout=timeout, what=f"{message_id} delivered by {self.name}")

    def inbox(self, **params: Any) -> list[dict[str, Any]]:
        """Every message in the inbox (all pages)."""
        found: list[dict[str, Any]] = []
        cursor: int | None = None
        while True:
            query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
            resp = httpx.get(f"{self.url}/v1/inbox", params=query, headers=self._headers("client"))
            assert resp.status_code == 200, resp.text
            page = resp.json()
            found.extend(page["messages"])
            cursor = page["next_cursor"]
            if cursor is None:
                return found

    def received(self, message_id: str) -> dict[str, Any]:
        [message] = [m for m in self.inbox() if m["id"] == message_id]
        return message

    def audit_get(self, path: str, **params: Any) -> httpx.Response:
        resp = httpx.get(f"{self.url}{path}", params=params, headers=self._headers("auditor"))
        assert resp.status_code == 200, resp.text
        return resp

    def public(self, path: str) -> httpx.Response:
        resp = httpx.get(f"{self.url}{path}")
        assert resp.status_code == 200, resp.text
        return resp
