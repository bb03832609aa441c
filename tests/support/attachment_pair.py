"""Two node processes on loopback that exchange messages with attachments (protocol
v1.1): KZ:MIA and TJ:MIA under the kz-tj-2018 agreement, each with its own database
and attachment store, each agency with a client token."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from service.api.tokens import hash_token
from tests.support.nodes import Party, make_party
from tests.support.processes import NodeProcess, free_ports, poll

AGREEMENT = "kz-tj-2018"
PURPOSES = {
    "experience.document": "experience-exchange",
    "readmission.request": "readmission",
    "readmission.response": "readmission",
    "migration.violation-notice": "illegal-migration-control",
    "statistics.migration-flows": "statistics",
}
MEDIA_TYPES = ["application/pdf", "image/jpeg", "image/png", "application/json"]
CLIENT = "attach-client-token-0000000000000000000000"
OPERATOR = "attach-operator-token-00000000000000000000"
AUDITOR = "attach-auditor-token-000000000000000000000"


def pdf_bytes(size: int, seed: int = 0) -> bytes:
    """A file that a content detector takes for a PDF, `size` bytes long."""
    head = (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Seed " + str(seed).encode() + b" >>\nendobj\n"
    )
    tail = b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    filler = size - len(head) - len(tail)
    assert filler >= 0
    body = (b"%" + bytes(str(seed), "ascii") + b" migex test filler\n") * (filler // 20 + 1)
    return head + body[:filler] + tail


def png_bytes() -> bytes:
    """A one-pixel PNG."""
    raw = b"\x00\x00\x00\x00"

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + kind + data + crc

    ihdr = (1).to_bytes(4, "big") * 2 + bytes([8, 6, 0, 0, 0])
    buf = io.BytesIO()
    buf.write(b"\x89PNG\r\n\x1a\n")
    buf.write(chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return buf.getvalue()


def _rules(prefix: str) -> list[dict[str, Any]]:
    rules = []
    for direction in ("inbound", "outbound"):
        for index, (msg_type, purpose) in enumerate(PURPOSES.items()):
            rule: dict[str, Any] = {
                "id": f"{prefix}-{direction[:3]}-{index}",
                "direction": direction,
                "types": [msg_type],
                "agreements": [AGREEMENT],
                "purposes": [purpose],
            }
            if direction == "outbound":
                rule["fields"] = ["*"]
            rules.append(rule)
    return rules


def node_config(
    me: Party,
    other: Party,
    *,
    port: int,
    other_port: int,
    database_url: str,
    store: Path,
    attachments: dict[str, Any] | None,
) -> dict[str, Any]:
    partner: dict[str, Any] = {
        "party": other.party,
        "name": f"{other.party} (test)",
        "endpoint": f"http://127.0.0.1:{other_port}",
        "keys": [{"kid": other.kid, "jwk": other.key.public().jwk(), "algs": ["Ed25519"]}],
        "rate_limit": {"per_second": 1000, "burst": 1000},
        "rules": _rules(other.party.split(":")[0].lower()),
    }
    if attachments is not None:
        partner["attachments"] = attachments
    return {
        "node": {
            "party": me.party,
            "name": f"{me.party} (test)",
            "signing_keys": [{"kid": me.kid, "file": str(me.key_file)}],
            "active_kid": me.kid,
            "audit_kid": me.kid,
        },
        "database_url": database_url,
        "listen": {"host": "127.0.0.1", "port": port},
        "audit": {"checkpoint_interval_seconds": 0},
        "delivery": {
            "max_attempts": 60,
            "backoff_initial_seconds": 0.2,
            "backoff_max_seconds": 1.0,
            "timeout_seconds": 10.0,
        },
        "attachments": {"directory": str(store)},
        "agreements": [
            {
                "id": AGREEMENT,
                "title": "Agreement between Kazakhstan and Tajikistan (test)",
                "parties": ["KZ", "TJ"],
                "signed": "2018-03-14",
                "in_force": "2019-02-22",
                "covers": [{"types": [t], "purposes": [p]} for t, p in PURPOSES.items()],
            }
        ],
        "partners": [partner],
        "tokens": [
            {"name": "client-1", "role": "client", "sha256": hash_token(CLIENT)},
            {"name": "operator-1", "role": "operator", "sha256": hash_token(OPERATOR)},
            {"name": "auditor-1", "role": "auditor", "sha256": hash_token(AUDITOR)},
        ],
    }


DEFAULT_LIMITS: dict[str, Any] = {
    "max_count": 3,
    "max_bytes": 300 * 1024 * 1024,
    "max_total_bytes": 400 * 1024 * 1024,
    "media_types": MEDIA_TYPES,
}


@dataclass
class Agency:
    """One agency's systems, talking to their node's local API."""

    node: NodeProcess
    party: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {CLIENT}"}

    def put_file(self, content: bytes | Iterator[bytes], media_type: str) -> httpx.Response:
        return httpx.post(
            f"{self.node.url}/v1/files",
            content=content,
            headers={**self.headers, "Content-Type": media_type},
            timeout=120,
        )

    def attach(self, content: bytes, media_type: str, name: str) -> dict[str, Any]:
        resp = self.put_file(content, media_type)
        assert resp.status_code == 201, resp.text
        held = resp.json()
        return {"name": name, "media_type": held["media_type"], "size": held["size"],
                "digest": held["digest"]}  # fmt: skip

    def send(self, to: str, msg_type: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
        item = {"to": to, "type": msg_type, "agreement": AGREEMENT,
                "purpose": PURPOSES[msg_type], "body": body, **kw}  # fmt: skip
        return httpx.post(f"{self.node.url}/v1/outbox", json=item, headers=self.headers)

    def status(self, message_id: str) -> dict[str, Any]:
        resp = httpx.get(f"{self.node.url}/v1/outbox/{message_id}", headers=self.headers)
        assert resp.status_code == 200, resp.text
        found: dict[str, Any] = resp.json()
        return found

    def delivered(self, message_id: str, timeout: float = 60.0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            status = self.status(message_id)
            assert status["status"] in ("queued", "delivered"), status
            return status if status["status"] == "delivered" else None

        return poll(check, timeout=timeout, what=f"{message_id} delivered")

    def inbox(self, msg_type: str) -> list[dict[str, Any]]:
        resp = httpx.get(
            f"{self.node.url}/v1/inbox", params={"type": msg_type, "limit": 100},
            headers=self.headers,
        )  # fmt: skip
        assert resp.status_code == 200, resp.text
        found: list[dict[str, Any]] = resp.json()["messages"]
        return found

    def attachment(self, sender: str, message_id: str, digest: str) -> httpx.Response:
        url = f"{self.node.url}/v1/inbox/{sender}/{message_id}/attachments/{digest}"
        return httpx.get(url, headers=self.headers, timeout=120)


@dataclass
class Pair:
    kz: Agency
    tj: Agency
    stores: dict[str, Path]

    def stored_objects(self, name: str) -> list[Path]:
        return sorted(p for p in (self.stores[name] / "objects").rglob("*") if p.is_file())


def start_pair(
    tmp: Path,
    database_urls: Callable[[str], str],
    *,
    limits_at_tj: dict[str, Any] | None = DEFAULT_LIMITS,
    limits_at_kz: dict[str, Any] | None = DEFAULT_LIMITS,
    proxy_port: Callable[[int], int] | None = None,
) -> tuple[Pair, dict[str, NodeProcess]]:
    """Write both configurations and make (unstarted) processes. `limits_at_tj` are TJ's
    limits on what KZ sends it (and KZ's idea of them, unless `limits_at_kz` differs);
    `proxy_port` maps TJ's port to the one KZ delivers to (a cutting proxy)."""
    kz, tj = make_party(tmp, "KZ:MIA"), make_party(tmp, "TJ:MIA")
    kz_port, tj_port = free_ports(2)
    stores = {"kz": tmp / "kz-files", "tj": tmp / "tj-files"}
    configs = {
        "kz": node_config(
            kz, tj, port=kz_port,
            other_port=proxy_port(tj_port) if proxy_port else tj_port,
            database_url=database_urls("kz"), store=stores["kz"], attachments=limits_at_kz,
        ),
        "tj": node_config(
            tj, kz, port=tj_port, other_port=kz_port, database_url=database_urls("tj"),
            store=stores["tj"], attachments=limits_at_tj,
        ),
    }  # fmt: skip
    processes = {}
    for name, cfg in configs.items():
        path = tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False), "utf-8")
        port = cfg["listen"]["port"]
        processes[name] = NodeProcess(name, path, port=port, log_dir=tmp / "logs")
    pair = Pair(Agency(processes["kz"], kz.party), Agency(processes["tj"], tj.party), stores)
    return pair, processes
