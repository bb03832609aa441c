"""`migex audit prove-delivery FILE.tlog-proof`: offline, pinned keys and a policy only."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from service.cli import app
from tests.unit.witness.test_tlogproof import ASSETS, LOG_VKEY, POLICY_TEXT

runner = CliRunner()
VECTOR = ASSETS / "migex-delivery.tlog-proof"


def write_policy(tmp_path: Path, text: str = POLICY_TEXT) -> Path:
    path = tmp_path / "uz.policy"
    path.write_text(text)
    return path


def test_a_valid_proof_is_reported_with_what_it_proves(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    result = runner.invoke(app, ["audit", "prove-delivery", str(VECTOR), "--policy", str(policy)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "ok: UZ:MIA logged message 01a20e59-2c0f-7cb0-8484-9b18fcbbab03 from KZ:MIA"
        f" (sha-256:{'A' * 42}M) at 2026-11-24T16:17:16.458Z",
        "ok: entry 3 is in migex/UZ:MIA at tree size 7",
        "ok: the checkpoint meets the witness policy; cosigned by KG at 1795537054,"
        " KZ at 1795537054",
    ]


def test_an_explicit_log_key_from_a_file_is_used(tmp_path: Path) -> None:
    policy = write_policy(tmp_path, POLICY_TEXT.replace(f"log {LOG_VKEY}\n", ""))
    keyfile = tmp_path / "uz.vkey"
    keyfile.write_text(LOG_VKEY + "\n")
    args = ["audit", "prove-delivery", str(VECTOR), "--policy", str(policy)]
    assert runner.invoke(app, args).exit_code == 1
    result = runner.invoke(app, [*args, "--key", f"@{keyfile}"])
    assert result.exit_code == 0, result.output


def test_a_tampered_proof_fails(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    tampered = tmp_path / "bad.tlog-proof"
    tampered.write_text(VECTOR.read_text().replace("index 3", "index 4"))
    result = runner.invoke(app, ["audit", "prove-delivery", str(tampered), "--policy", str(policy)])
    assert result.exit_code == 1
    assert "FAILED: the entry is not proven in the checkpoint" in result.output


def test_a_policy_the_checkpoint_does_not_meet_fails(tmp_path: Path) -> None:
    policy = write_policy(tmp_path, POLICY_TEXT.replace("group partners 2", "group partners all"))
    result = runner.invoke(app, ["audit", "prove-delivery", str(VECTOR), "--policy", str(policy)])
    assert result.exit_code == 1
    assert "do not meet the policy" in result.output
