"""A client generated from a running node's `/openapi.json` by openapi-python-client (as an
agency developer would generate one, offline) drives the whole local API between two
node processes on loopback: KZ sends a verification request, KG reads and acknowledges
it and replies, KZ follows delivery, receipt and reply. Every call goes through the
generated functions and models, so an answer outside its declared schema fails here."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.e2e.federation import NODES, init_keys, local_config, node_env, running
from tests.support.nodes import example_body
from tests.support.processes import NodeProcess, free_ports, poll

pytestmark = pytest.mark.slow

PACKAGE = "migex_local_client"
EXCHANGE = {"agreement": "cis-1998", "purpose": "identity-verification"}
REQUEST = "citizenship.verification-request"
RESPONSE = "citizenship.verification-response"


@dataclass
class Generated:
    """The generated package: its endpoint modules and models."""

    package: ModuleType

    def op(self, name: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.local.{name}")

    def model(self, name: str) -> Any:
        return getattr(importlib.import_module(f"{PACKAGE}.models"), name)

    def client(self, url: str, token: str) -> Any:
        return self.package.AuthenticatedClient(
            base_url=url, token=token, raise_on_unexpected_status=True
        )


def generate(spec: Path, out: Path) -> None:
    """Run the generator as an agency developer would: its own command, no network."""
    config = spec.with_name("generator.yaml")
    config.write_text("post_hooks: []\n", "utf-8")  # no formatter needed to import it
    command = Path(sys.executable).with_name("openapi-python-client")
    subprocess.run(
        [
            str(command),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(out),
            "--config",
            str(config),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


@dataclass
class Pair:
    kz: NodeProcess
    kg: NodeProcess
    gen: Generated

    def agency(self, name: str, role: str = "client") -> Any:
        node = self.kz if name == "kz" else self.kg
        return self.gen.client(node.url, f"{name}-{role}-dev-token")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("generated-client")
    init_keys(tmp / "secrets", tmp / "public")
    ports = dict(zip(NODES, free_ports(len(NODES)), strict=True))
    processes = {}
    for name in ("kz", "kg"):
        path = tmp / f"{name}.yaml"
        path.write_text(local_config(name, ports, tmp / f"{name}.db"), "utf-8")
        processes[name] = NodeProcess(
            name, path, port=ports[name], env=node_env(tmp, name), log_dir=tmp / "logs"
        )
    with running(processes):
        spec = tmp / "openapi.json"
        spec.write_bytes(httpx.get(f"{processes['kz'].url}/openapi.json").content)
        generate(spec, tmp / "client" / PACKAGE)
        sys.path.insert(0, str(tmp / "client"))
        try:
            yield Pair(
                processes["kz"], processes["kg"], Generated(importlib.import_module(PACKAGE))
            )
        finally:
            sys.path.remove(str(tmp / "client"))
            for module in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
                del sys.modules[module]


def _send(pair: Pair, sender: str, **item: Any) -> Any:
    outbound_in = pair.gen.model("OutboundIn")
    with pair.agency(sender) as client:
        answer = pair.gen.op("submit").sync_detailed(
            client=client, body=outbound_in.from_dict(item)
        )
    return answer


def _status(pair: Pair, sender: str, message_id: str) -> Any:
    with pair.agency(sender) as client:
        return pair.gen.op("outbound_status").sync(client=client, message_id=message_id)


def _delivered(pair: Pair, sender: str, message_id: str) -> Any:
    delivered = pair.gen.model("OutboundStatusStatus").DELIVERED

    def check() -> Any:
        status = _status(pair, sender, message_id)
        assert status.status.value in ("queued", "delivered"), status.to_dict()
        return status if status.status == delivered else None

    return poll(check, timeout=30.0, what=f"{message_id} delivered")


def _inbox(pair: Pair, name: str, **params: Any) -> list[Any]:
    found: list[Any] = []
    cursor = None
    with pair.agency(name) as client:
        while True:
            page = pair.gen.op("read_inbox").sync(client=client, limit=2, cursor=cursor, **params)
            found.extend(page.messages)
            cursor = page.next_cursor
            if cursor is None:
                return found


def test_a_generated_client_sends_reads_acknowledges_and_follows_a_reply(pair: Pair) -> None:
    accepted_model = pair.gen.model("Accepted")
    sent = _send(pair, "kz", to="KG:SRS", type=REQUEST, body=example_body(REQUEST), **EXCHANGE)
    assert sent.status_code == 202
    assert isinstance(sent.parsed, accepted_model)
    request_id = sent.parsed.id
    assert sent.headers["location"] == sent.parsed.status_url == f"/v1/outbox/{request_id}"

    status = _delivered(pair, "kz", request_id)
    assert status.receipt.payload["iss"] == "KG:SRS"
    assert status.receipt.payload["reply_to"] == request_id
    assert [a.outcome.value for a in status.attempts][-1] == "delivered"

    unacked = _inbox(pair, "kg", unacked=True, type_=REQUEST)
    [question] = [m for m in unacked if m.id == request_id]
    assert (question.from_, question.agreement, question.reply_to) == ("KZ:MIA", "cis-1998", None)
    assert question.body.to_dict() == example_body(REQUEST)

    ack = pair.gen.op("acknowledge")
    with pair.agency("kg") as client:
        first = ack.sync(client=client, sender="KZ:MIA", message_id=request_id)
        again = ack.sync(client=client, sender="KZ:MIA", message_id=request_id)
    assert (first.acked, first.changed, again.changed) == (True, True, False)
    assert request_id not in {m.id for m in _inbox(pair, "kg", unacked=True)}

    asked = question.body.to_dict()["person"]
    answer = {
        "result": "confirmed",
        "checked_on": "2026-11-20",
        "matched_fields": ["names.latin", "birth_date"],
        "person": {"names": asked["names"], "birth_date": asked["birth_date"]},
    }
    reply = _send(
        pair, "kg", to="KZ:MIA", type=RESPONSE, reply_to=request_id, body=answer, **EXCHANGE
    )
    assert reply.status_code == 202, reply.content
    _delivered(pair, "kg", reply.parsed.id)

    [at_kz] = [m for m in _inbox(pair, "kz", type_=RESPONSE) if m.id == reply.parsed.id]
    assert (at_kz.from_, at_kz.reply_to, at_kz.body.to_dict()) == ("KG:SRS", request_id, answer)
    replies = _status(pair, "kz", request_id).replies
    assert [(r.id, r.from_, r.type_) for r in replies] == [(reply.parsed.id, "KG:SRS", RESPONSE)]

    state = pair.gen.model("OperatorOutboxState")
    with pair.agency("kz", role="operator") as operator:
        listed = pair.gen.op("operator_outbox").sync(client=operator, state=state.DELIVERED)
    assert listed.state == state.DELIVERED
    [item] = [m for m in listed.messages if m.message_id == request_id]
    assert (item.recipient, item.status.value, item.attempts) == ("KG:SRS", "delivered", 1)


def test_a_generated_client_reads_refusals_as_problems(pair: Pair) -> None:
    problem = pair.gen.model("Problem")
    refused = _send(
        pair,
        "kz",
        to="KG:SRS",
        type=REQUEST,
        body=example_body(REQUEST),
        agreement="kz-kg-2091",
        purpose="identity-verification",
    )
    assert refused.status_code == 403
    assert isinstance(refused.parsed, problem)
    assert refused.parsed.code == "agreement"

    stray = _send(
        pair,
        "kz",
        to="KG:SRS",
        type=RESPONSE,
        body=example_body(RESPONSE),
        reply_to="01935c2e-6c58-70f8-843f-ecca6ffc2c2b",
        **EXCHANGE,
    )
    assert (stray.status_code, stray.parsed.code) == (422, "invalid-parameters")

    with pair.agency("kz", role="operator") as operator:
        wrong_role = pair.gen.op("read_inbox").sync_detailed(client=operator)
        unknown = pair.gen.op("operator_retry").sync_detailed(
            client=operator, message_id="01935c2e-6c58-70f8-843f-ecca6ffc2c2b"
        )
    assert (wrong_role.status_code, wrong_role.parsed.code) == (403, "insufficient-role")
    assert (unknown.status_code, unknown.parsed.code) == (404, "not-found")
