"""Encryption at rest in tests: KEK files, a KZ node configured with them, its traffic
(received, queued, delivered to a `FakePartner`), and a scan for personal values in
stored bytes that sees through the encodings a body is stored in (base64url JWS
payloads, PostgreSQL's hex bytea, JSON escapes)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.clock import FixedClock
from service.config import load_config
from service.main import create_app
from service.protocol.receipts import sha256_digest
from service.runtime import Node
from tests.support.attachment_pair import pdf_bytes
from tests.support.nodes import CLIENT_TOKEN, Federation, envelope_for, example_body
from tests.unit.exchange.conftest import sending_rules
from tests.unit.exchange.partner import FakePartner
from tests.unit.exchange.sender import Sender

CLIENT = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
JOSE = {"Content-Type": "application/jose"}
# Values of the example bodies the traffic carries (schemas/examples).
PERSONAL_VALUES = (
    "910314401230",  # IIN of the verification request
    "N07654321",  # its passport number
    "ZHAKSYBEKOVA",
    "Жаксыбекова",
    "32207950260457",  # PINFL of the violation notice
    "FA1234567",  # its passport number
    "KARIMOV",
    "Каримов",
)


def write_kek(directory: Path, name: str, seed: int) -> Path:
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(bytes((seed + i) % 256 for i in range(32)))
    return path


def kek_config(keks: dict[str, Path], active: str | None) -> Callable[[dict[str, Any]], None]:
    """The test federation's KZ configuration with these KEKs (none: no encryption)."""

    def mutate(cfg: dict[str, Any]) -> None:
        sending_rules(cfg)
        allow_notices(cfg)
        if keks:
            cfg["privacy"] = {
                "kek_files": [{"id": k, "file": str(f)} for k, f in keks.items()],
                "active_kek": active,
            }

    return mutate


def configure(federation: Federation, keks: dict[str, Path], active: str | None = None) -> Path:
    federation.mutate = kek_config(keks, active)
    return federation.write_config()


def start(
    federation: Federation, clock: FixedClock, keks: dict[str, Path], active: str | None = None
) -> TestClient:
    config = load_config(configure(federation, keks, active))
    app = create_app(config, clock=clock, run_delivery=False, run_witnessing=False)
    return TestClient(app, raise_server_exceptions=False)


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def receive(client: TestClient, federation: Federation, **kw: Any) -> tuple[str, bytes, bytes]:
    """UZ sends KZ a message; its id, the bytes sent and KZ's receipt."""
    env = envelope_for(federation.uz, **kw)
    token = federation.uz.sign(env)
    resp = client.post("/v1/messages", content=token, headers=JOSE)
    assert resp.status_code == 201, resp.text
    return env.id, token, resp.content


def send_request(client: TestClient) -> str:
    """KZ queues a verification request to UZ (all fields sent); its id."""
    resp = client.post(
        "/v1/outbox",
        json={
            "to": "UZ:MIA",
            "type": "citizenship.verification-request",
            "agreement": "kz-uz-2019",
            "purpose": "identity-verification",
            "body": example_body("citizenship.verification-request"),
        },
        headers=CLIENT,
    )
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def traffic(client: TestClient, federation: Federation) -> dict[str, str]:
    """A verification request and a violation notice in, a request out; their ids."""
    request_id, _, _ = receive(client, federation)
    notice_id, _, _ = receive(
        client,
        federation,
        msg_type="migration.violation-notice",
        purpose="illegal-migration-control",
        body=example_body("migration.violation-notice"),
    )
    return {"request": request_id, "notice": notice_id, "sent": send_request(client)}


def allow_notices(cfg: dict[str, Any]) -> None:
    uz = next(p for p in cfg["partners"] if p["party"] == "UZ:MIA")
    uz["attachments"] = {
        "max_count": 2,
        "max_bytes": 1_000_000,
        "max_total_bytes": 2_000_000,
        "media_types": ["application/pdf"],
    }
    uz["rules"].append(
        {
            "id": "uz-in-violation",
            "direction": "inbound",
            "types": ["migration.violation-notice"],
            "agreements": ["kz-uz-2019"],
            "purposes": ["illegal-migration-control"],
        }
    )


def personal_pdf(seed: int = 0) -> bytes:
    """A PDF of about 200 KB (several sealed chunks) naming the persons of PERSONAL_VALUES."""
    pdf = pdf_bytes(200_000, seed)
    names = " ".join(PERSONAL_VALUES).encode()
    return pdf[:100] + b"\n% " + names + b"\n" + pdf[100:]


def receive_with_file(client: TestClient, federation: Federation, data: bytes) -> str:
    """UZ sends KZ a violation notice with `data` as its PDF; its id once accepted."""
    message_id, token, offer = offer_file(client, federation, data)
    upload_and_accept(client, token, offer, data)
    return message_id


def offer_file(
    client: TestClient, federation: Federation, data: bytes
) -> tuple[str, bytes, dict[str, Any]]:
    """UZ posts KZ a violation notice naming `data` as its PDF: its id, the signed
    message, and KZ's upload offer (the message awaits its file)."""
    file = {"name": "decision.pdf", "media_type": "application/pdf", "size": len(data),
            "digest": sha256_digest(data)}  # fmt: skip
    body = {**example_body("migration.violation-notice"), "attachments": [file]}
    env = envelope_for(federation.uz, msg_type="migration.violation-notice",
                       purpose="illegal-migration-control", body=body)  # fmt: skip
    token = federation.uz.sign(env)
    offer = client.post("/v1/messages", content=token, headers=JOSE)
    assert offer.status_code == 202, offer.text
    return env.id, token, offer.json()


def upload(client: TestClient, offer: dict[str, Any], data: bytes) -> Any:
    """UZ uploads `data` as the offered message's first file, from offset 0."""
    return client.patch(
        offer["attachments"][0]["url"],
        content=data,
        headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                 "Authorization": f"Bearer {offer['upload_token']}",
                 "Content-Type": "application/offset+octet-stream"},
    )  # fmt: skip


def upload_and_accept(client: TestClient, token: bytes, offer: dict[str, Any], data: bytes) -> None:
    uploaded = upload(client, offer, data)
    assert uploaded.status_code == 204, uploaded.text
    accepted = client.post("/v1/messages", content=token, headers=JOSE)
    assert accepted.status_code == 201, accepted.text


def stored_files(node: Node) -> list[Path]:
    """Every file under the node's attachment directory (staging included)."""
    root = Path(node.config.attachments.directory)
    return sorted(p for p in root.rglob("*") if p.is_file())


def deliver(node: Node, partner: FakePartner, clock: FixedClock) -> int:
    """One delivery round of the node's worker (its bodies opened as the node does)."""
    return Sender(node, partner, clock).deliver()


# -- finding personal values in stored bytes ----------------------------------------
_HEX = re.compile(rb"\\x([0-9a-f]{32,})")
_PAYLOAD = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}")


def readable_forms(data: bytes) -> Iterable[str]:
    """`data` and every JWS payload in it (also inside hex bytea), decoded as text."""
    blobs = [data]
    for match in _HEX.finditer(data):
        try:
            blobs.append(binascii.unhexlify(match.group(1)[: len(match.group(1)) // 2 * 2]))
        except binascii.Error:
            continue
    for blob in blobs:
        yield blob.decode("utf-8", "replace")
        for match in _PAYLOAD.finditer(blob):
            yield _decoded_payload(match.group(0))


def _decoded_payload(segment: bytes) -> str:
    if len(segment) % 4 == 1:  # not a whole base64 text: its last character is stray
        segment = segment[:-1]
    raw = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    text = raw.decode("utf-8", "replace")
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


def personal_values_in(data: bytes) -> set[str]:
    """Which of PERSONAL_VALUES can be read from `data` (case ignored)."""
    found: set[str] = set()
    for text in readable_forms(data):
        upper = text.upper()
        found |= {v for v in PERSONAL_VALUES if v.upper() in upper}
    return found
