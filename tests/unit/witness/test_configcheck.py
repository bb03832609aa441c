"""The witnessing parts of the configuration: what is refused, with the line to edit."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.note import verifier_key
from service.config import ConfigError, load_config
from service.witness.cosignature import CosignerKey
from tests.support.nodes import Federation, make_party

Mutate = Callable[[dict[str, Any]], None]


def with_witness_key(federation: Federation, kind: str = "ed25519") -> Mutate:
    key = make_party(federation.tmp, "KZ:MIA", kind=kind, label="witness")

    def mutate(cfg: dict[str, Any]) -> None:
        cfg["node"]["signing_keys"].append({"kid": key.kid, "file": str(key.key_file)})
        cfg["node"]["witness_kid"] = key.kid

    return mutate


def load(federation: Federation, *mutations: Mutate) -> None:
    def mutate(cfg: dict[str, Any]) -> None:
        for m in mutations:
            m(cfg)

    federation.mutate = mutate
    load_config(federation.write_config(), env={})


def refused(federation: Federation, *mutations: Mutate) -> str:
    with pytest.raises(ConfigError) as info:
        load(federation, *mutations)
    return str(info.value)


def policy_file(tmp: Path, text: str) -> Path:
    path = tmp / "witnesses.policy"
    path.write_text(text)
    return path


def witness_vkey(name: str = "uz.example/witness") -> str:
    return CosignerKey(name, Ed25519PrivateKey.generate().public_key()).vkey


def test_a_witness_key_and_policy_load(federation: Federation) -> None:
    path = policy_file(
        federation.tmp, f"witness uz {witness_vkey()} http://127.0.0.1:9/v1/witness\nquorum uz\n"
    )
    load(
        federation,
        with_witness_key(federation),
        lambda cfg: cfg.update(witnessed_by={"policy_file": str(path)}),
    )


def test_witness_kid_must_be_a_signing_key(federation: Federation) -> None:
    message = refused(federation, lambda cfg: cfg["node"].update(witness_kid="KZ:MIA#nope"))
    assert "node.witness_kid: KZ:MIA#nope is not one of node.signing_keys" in message


def test_witness_kid_may_not_be_the_audit_key(federation: Federation) -> None:
    message = refused(
        federation, lambda cfg: cfg["node"].update(witness_kid=cfg["node"]["audit_kid"])
    )
    assert "a witness key must sign only cosignatures" in message


def test_witness_key_must_be_ed25519(federation: Federation) -> None:
    message = refused(federation, with_witness_key(federation, kind="p256"))
    assert "cosignatures need Ed25519" in message


def test_witness_section_needs_a_witness_key(federation: Federation) -> None:
    message = refused(federation, lambda cfg: cfg.update(witness={"partners": ["UZ:MIA"]}))
    assert "witnessing other logs needs node.witness_kid" in message


def test_witnessed_partners_must_be_configured(federation: Federation) -> None:
    message = refused(
        federation,
        with_witness_key(federation),
        lambda cfg: cfg.update(witness={"partners": ["TJ:MIA"]}),
    )
    assert "witness.partners[0]: TJ:MIA is not a configured partner" in message


def test_extra_logs_need_keys_named_by_their_origin(federation: Federation) -> None:
    wrong = verifier_key("other.example/log", Ed25519PrivateKey.generate().public_key())
    message = refused(
        federation,
        with_witness_key(federation),
        lambda cfg: cfg.update(
            witness={
                "logs": [
                    {"origin": "example.com/log", "vkeys": [wrong, "garbage"]},
                    {"origin": "migex/UZ:MIA", "vkeys": [wrong]},
                ]
            }
        ),
    )
    assert "the key is named other.example/log, not the origin" in message
    assert "witness.logs[0].vkeys[1]" in message
    assert "witness.logs[1].origin: migex/UZ:MIA is given twice" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("quorum nobody\n", "'nobody' is not defined"),
        (f"witness uz {witness_vkey()}\nquorum uz\n", "witness uz has no URL"),
        (
            f"witness me {witness_vkey('migex/KZ:MIA/witness')} http://x\nquorum me\n",
            "this node's own key name",
        ),
    ],
)
def test_bad_policies_are_refused(federation: Federation, text: str, message: str) -> None:
    path = policy_file(federation.tmp, text)
    found = refused(federation, lambda cfg: cfg.update(witnessed_by={"policy_file": str(path)}))
    assert message in found


def test_a_missing_policy_file_is_refused(federation: Federation) -> None:
    found = refused(
        federation,
        lambda cfg: cfg.update(witnessed_by={"policy_file": str(federation.tmp / "none")}),
    )
    assert "witnessed_by.policy_file" in found


def test_backoffs_must_be_in_order(federation: Federation) -> None:
    path = policy_file(federation.tmp, "quorum none\n")
    found = refused(
        federation,
        lambda cfg: cfg.update(
            witnessed_by={
                "policy_file": str(path),
                "backoff_initial_seconds": 10,
                "backoff_max_seconds": 1,
            }
        ),
    )
    assert "must be at least backoff_initial_seconds" in found


def test_module_imports_first_in_a_fresh_interpreter() -> None:
    # `migex audit verify` imports it before anything has imported service.config,
    # which imports it in turn: that order must not be an import cycle.
    result = subprocess.run(
        [sys.executable, "-c", "import service.witness.configcheck"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
