"""An attachment transfer broken on the way, between two node processes: a connection
cut at exactly half of a 200 MiB file resumes from the receiver's offset (only the rest
is sent again), and a receiver killed (SIGKILL) mid-upload completes after its restart
with nothing stored twice. The files are generated and streamed, never held whole."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.protocol.b64 import b64url_encode
from tests.e2e.federation import running
from tests.support.attachment_pair import Pair, start_pair
from tests.support.cutting_proxy import CuttingProxy, proxied
from tests.support.nodes import example_body

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
HEAD = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\n"
TAIL = b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def pdf_stream(size: int, seed: int) -> Iterator[bytes]:
    """A `size`-byte PDF-like file, generated block by block (deterministic per seed)."""
    yield HEAD
    left = size - len(HEAD) - len(TAIL)
    block = hashlib.sha256(str(seed).encode()).digest() * (MIB // 32)
    while left > 0:
        part = block[:left]
        left -= len(part)
        yield part
    yield TAIL


def digest_of(size: int, seed: int) -> str:
    sha = hashlib.sha256()
    for part in pdf_stream(size, seed):
        sha.update(part)
    return "sha-256:" + b64url_encode(sha.digest())


def _send_large(pair: Pair, size: int, seed: int) -> str:
    resp = pair.kz.put_file(pdf_stream(size, seed), "application/pdf")
    assert resp.status_code == 201, resp.text
    held = resp.json()
    assert (held["size"], held["digest"]) == (size, digest_of(size, seed))
    named = {"name": "large.pdf", **held}
    body = {**example_body("migration.violation-notice"), "attachments": [named]}
    sent = pair.kz.send(pair.tj.party, "migration.violation-notice", body)
    assert sent.status_code == 202, sent.text
    message_id: str = sent.json()["id"]
    return message_id


def _staged(store: Path) -> list[Path]:
    return [p for p in (store / "staging").iterdir() if p.is_file()]


def _stored_once(pair: Pair, digest: str, message_id: str) -> None:
    name = digest.removeprefix("sha-256:")
    assert [p.name for p in pair.stored_objects("tj")] == [name]
    assert _staged(pair.stores["tj"]) == []
    [item] = [m for m in pair.tj.inbox("migration.violation-notice") if m["id"] == message_id]
    assert item["body"]["attachments"][0]["digest"] == digest


def _tj_audit(pair: Pair, event: str) -> list[dict[str, Any]]:
    from tests.support.attachment_pair import AUDITOR

    resp = httpx.get(
        f"{pair.tj.node.url}/v1/audit/search",
        params={"event": event, "limit": 100},
        headers={"Authorization": f"Bearer {AUDITOR}"},
    )
    assert resp.status_code == 200, resp.text
    return [e["entry"] for e in resp.json()["entries"]]


def test_a_connection_cut_at_half_of_200_mib_resumes_with_only_the_rest(tmp_path: Path) -> None:
    size = 200 * MIB
    proxies: list[CuttingProxy] = []

    def through_proxy(port: int) -> int:
        proxies.append(CuttingProxy(port, cut_at=size // 2))
        return proxies[0].port

    pair, processes = start_pair(
        tmp_path, lambda name: f"sqlite:///{tmp_path / name}.db", proxy_port=through_proxy
    )
    with proxied(proxies[0]) as proxy, running(processes):
        message_id = _send_large(pair, size, seed=11)
        status = pair.kz.delivered(message_id, timeout=300)
        digest = digest_of(size, seed=11)
        assert status["receipt"]["payload"]["body"]["attachments"] == [
            {"digest": digest, "size": size, "status": "stored"}
        ]
        assert proxy.cuts == 1
        # Everything sent towards the receiver: the file once, plus what was in flight
        # when the connection broke, plus the requests' heads and the message.
        assert size < proxy.upstream < size + 8 * MIB, proxy.upstream
        _stored_once(pair, digest, message_id)
        assert len(_tj_audit(pair, "attachment.stored")) == 1


def test_a_receiver_killed_mid_upload_completes_after_restart_with_nothing_stored_twice(
    tmp_path: Path,
) -> None:
    size = 24 * MIB
    proxies: list[CuttingProxy] = []

    def through_proxy(port: int) -> int:
        proxies.append(CuttingProxy(port, cut_at=10 * MIB, stall=True))
        return proxies[0].port

    pair, processes = start_pair(
        tmp_path, lambda name: f"sqlite:///{tmp_path / name}.db", proxy_port=through_proxy
    )
    with proxied(proxies[0]) as proxy, running(processes):
        message_id = _send_large(pair, size, seed=12)
        assert proxy.reached.wait(120), "the upload never reached the cut"
        processes["tj"].kill()  # SIGKILL, with part of the file staged
        staged = _staged(pair.stores["tj"])
        assert len(staged) == 1
        assert 0 < staged[0].stat().st_size < size
        proxy.release()
        processes["tj"].start()
        pair.kz.delivered(message_id, timeout=120)
        _stored_once(pair, digest_of(size, seed=12), message_id)
        assert size < proxy.upstream < size + 12 * MIB, proxy.upstream
        accepted = _tj_audit(pair, "message.accepted")
        assert [e["message_id"] for e in accepted] == [message_id]
