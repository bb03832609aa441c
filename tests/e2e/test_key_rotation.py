"""Rotating KZ's signing key as docs/key-rotation.md says, with KZ and UZ running as
`migex serve` processes configured from docker/config.

The `rotation` fixture performs the procedure once (add and publish the new key,
UZ pins it, switch `active_kid`, UZ revokes the old key), restarting the nodes with
each new configuration and recording what it observed; the tests check one fact each.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, select

from service.config import load_config
from service.db.tables import messages
from service.protocol import jws
from service.protocol.keys import load_signing_key
from service.runtime import load_bodies
from service.sending import Draft, sign_draft
from tests.e2e.federation import (
    NODES,
    Agency,
    init_keys,
    local_config,
    node_env,
    running,
)
from tests.support.nodes import example_body
from tests.support.processes import NodeProcess, free_ports, migex_command

pytestmark = pytest.mark.slow

OLD = "KZ:MIA#2026-01"
NEW = "KZ:MIA#2026-07"
STATISTICS = "statistics.migration-flows"


@dataclass
class Observed:
    """What the rotation showed, step by step."""

    published: dict[str, list[str]] = field(default_factory=dict)
    sent_kid: str = ""
    sent_status: dict[str, Any] = field(default_factory=dict)
    receipt_status: dict[str, Any] = field(default_factory=dict)
    old_key_while_pinned: httpx.Response | None = None
    old_key_after_revocation: httpx.Response | None = None
    new_key_after_revocation: dict[str, Any] = field(default_factory=dict)
    kz_changes: list[dict[str, Any]] = field(default_factory=list)
    uz_changes: list[dict[str, Any]] = field(default_factory=list)


class Configs:
    """The configuration files of KZ and UZ, edited as an operator would."""

    def __init__(self, tmp: Path, ports: dict[str, int]) -> None:
        self.paths = {name: tmp / f"{name}.yaml" for name in ("kz", "uz")}
        for name, path in self.paths.items():
            path.write_text(local_config(name, ports, tmp / f"{name}.db"), "utf-8")

    def edit(self, name: str, change: Any) -> None:
        path = self.paths[name]
        data = yaml.safe_load(path.read_text("utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")


def add_new_signing_key(data: dict[str, Any]) -> None:
    """docs/key-rotation.md, step 1: the new key in `signing_keys`, and in
    `published_kids` as the file sets it (its witness key is not published)."""
    node = data["node"]
    node["signing_keys"].append({"kid": NEW, "file": "/run/secrets/kz_signing_key_2026_07"})
    node["published_kids"].append(NEW)


def kz_key_at_uz(data: dict[str, Any], kid: str) -> dict[str, Any]:
    kz = next(p for p in data["partners"] if p["party"] == "KZ:MIA")
    key: dict[str, Any] = next(k for k in kz["keys"] if k["kid"] == kid)
    return key


def post_signed_with(key_file: Path, kid: str, url: str) -> httpx.Response:
    """A statistics message from KZ signed with the given key, posted straight to UZ."""
    draft = Draft("UZ:MIA", STATISTICS, "kz-uz-2019", "statistics", example_body(STATISTICS), None)
    _, token = sign_draft(draft, load_signing_key(key_file, kid), now=time.time())
    return httpx.post(
        f"{url}/v1/messages", content=token, headers={"Content-Type": "application/jose"}
    )


def stored_kid(config: Path, env: dict[str, str], message_id: str) -> str:
    """The kid of the message as the receiving node stored it (sealed under its KEK)."""
    cfg = load_config(config, env=env)
    engine = create_engine(cfg.database_url)
    m = messages.c
    try:
        with engine.connect() as conn:
            row = conn.execute(select(messages).where(m.message_id == message_id)).mappings().one()
    finally:
        engine.dispose()
    token = load_bodies(cfg).open_message(row, row["sender"], message_id)
    assert token is not None
    return jws.parse_compact(token).kid


def config_changes(agency: Agency) -> list[dict[str, Any]]:
    resp = agency.audit_get("/v1/audit/search", event="config.changed", limit=100)
    return [item["entry"] for item in resp.json()["entries"]]


def statistics_to(to: str, agreement: str = "kz-uz-2019") -> dict[str, Any]:
    return {
        "to": to,
        "type": STATISTICS,
        "agreement": agreement,
        "purpose": "statistics",
        "body": example_body(STATISTICS),
    }


@pytest.fixture(scope="module")
def rotation(tmp_path_factory: pytest.TempPathFactory) -> Observed:
    tmp = tmp_path_factory.mktemp("rotation")
    init_keys(tmp / "secrets", tmp / "public")
    ports = dict(
        zip(NODES, free_ports(len(NODES)), strict=True)
    )  # KG and TJ stay down: not needed here
    configs = Configs(tmp, ports)
    procs = {
        name: NodeProcess(
            name, configs.paths[name], port=ports[name], env=node_env(tmp, name), log_dir=tmp
        )
        for name in ("kz", "uz")
    }
    kz, uz = Agency("kz", procs["kz"].url), Agency("uz", procs["uz"].url)
    seen = Observed()
    old_key_file = tmp / "secrets" / "kz" / "kz_signing_key"

    def jwks() -> list[str]:
        return [k["kid"] for k in kz.public("/.well-known/jwks.json").json()["keys"]]

    with running(procs):
        seen.published["before"] = jwks()
        # 1. Generate the new key; KZ adds it (still signing with the old one) and
        #    publishes both; UZ pins the new key beside the old one.
        subprocess.run(
            [
                *migex_command(),
                "keys",
                "generate",
                "--kid",
                NEW,
                "--out",
                str(tmp / "secrets" / "kz" / "kz_signing_key_2026_07"),
                "--jwk-out",
                str(tmp / "public" / "kz-2026-07.jwk.json"),
            ],
            check=True,
            capture_output=True,
        )
        configs.edit("kz", add_new_signing_key)
        configs.edit(
            "uz",
            lambda d: next(p for p in d["partners"] if p["party"] == "KZ:MIA")["keys"].append(
                {
                    "kid": NEW,
                    "jwk_file": "/etc/migex/public/kz-2026-07.jwk.json",
                    "algs": ["Ed25519"],
                }
            ),
        )
        for proc in procs.values():
            proc.stop()
        for proc in procs.values():
            proc.start(wait=False)
        for proc in procs.values():
            proc.wait_ready()
        seen.published["both"] = jwks()
        # 2. KZ switches to the new key.
        configs.edit("kz", lambda d: d["node"].update(active_kid=NEW))
        procs["kz"].restart()
        sent = kz.queue(**statistics_to("UZ:MIA"))["id"]
        seen.sent_status = kz.delivered(sent)
        seen.sent_kid = stored_kid(configs.paths["uz"], node_env(tmp, "uz"), sent)
        reply = uz.queue(**statistics_to("KZ:MIA"))["id"]
        seen.receipt_status = uz.delivered(reply)
        seen.old_key_while_pinned = post_signed_with(old_key_file, OLD, uz.url)
        # 3. UZ revokes the old key.
        configs.edit(
            "uz", lambda d: kz_key_at_uz(d, OLD).update(revoked=True, revoked_at="2026-11-24")
        )
        procs["uz"].restart()
        seen.old_key_after_revocation = post_signed_with(old_key_file, OLD, uz.url)
        seen.new_key_after_revocation = kz.delivered(kz.queue(**statistics_to("UZ:MIA"))["id"])
        seen.kz_changes = config_changes(kz)
        seen.uz_changes = config_changes(uz)
    return seen


def test_new_key_is_published_beside_the_old_one_before_it_is_used(rotation: Observed) -> None:
    assert rotation.published == {"before": [OLD], "both": [OLD, NEW]}


def test_partner_pinning_both_keys_accepts_messages_signed_with_the_new_key(
    rotation: Observed,
) -> None:
    assert rotation.sent_kid == NEW
    assert rotation.sent_status["status"] == "delivered"


def test_partner_pinning_both_keys_accepts_receipts_signed_with_the_new_key(
    rotation: Observed,
) -> None:
    assert rotation.receipt_status["status"] == "delivered"
    assert jws.parse_compact(rotation.receipt_status["receipt"]["jws"].encode()).kid == NEW


def test_message_signed_with_the_old_key_is_accepted_while_it_is_pinned(
    rotation: Observed,
) -> None:
    assert rotation.old_key_while_pinned is not None
    assert rotation.old_key_while_pinned.status_code == 201


def test_partner_that_revoked_the_old_key_refuses_messages_signed_with_it(
    rotation: Observed,
) -> None:
    resp = rotation.old_key_after_revocation
    assert resp is not None
    assert (resp.status_code, resp.json()["code"]) == (401, "unknown-key")
    assert "revoked" in resp.json()["detail"]
    assert rotation.new_key_after_revocation["status"] == "delivered"


def test_audit_logs_record_the_key_added_and_the_key_revoked(rotation: Observed) -> None:
    added = [e["detail"]["own_keys"]["added"] for e in rotation.kz_changes]
    assert [NEW] in added
    switched = [e["detail"]["active_kid"] for e in rotation.kz_changes]
    assert {"added": [NEW], "removed": [OLD]} in switched
    revoked = [e["detail"]["partner_keys"] for e in rotation.uz_changes]
    assert {
        "added": [f"{OLD} (revoked)"],
        "removed": [OLD],
    } in revoked
