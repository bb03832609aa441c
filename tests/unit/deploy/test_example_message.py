"""The message the deployment guide sends from KZ to UZ is valid and allowed."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from service.config import load_config
from service.config.build import registry_from_config
from service.partners.agreements import check_agreement
from service.partners.rules import decide
from service.records.registry import validate_body
from service.sending import Draft, read_draft
from tests.unit.deploy.conftest import KeyDirs

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def draft() -> Draft:
    return read_draft(
        ROOT / "docker" / "examples" / "statistics.json",
        to=None,
        msg_type=None,
        agreement=None,
        purpose=None,
        reply_to=None,
    )


def test_example_message_names_everything_send_needs(draft: Draft) -> None:
    assert (draft.to, draft.type, draft.agreement, draft.purpose) == (
        "UZ:MIA",
        "statistics.migration-flows",
        "kz-uz-2019",
        "statistics",
    )


def test_example_message_body_is_valid(draft: Draft) -> None:
    validate_body(draft.type, draft.body)


def test_example_message_is_allowed_by_the_kz_configuration(
    draft: Draft, generated_keys: KeyDirs, placed_configs: dict[str, Path]
) -> None:
    cfg = load_config(
        placed_configs["kz"],
        env={"MIGEX_PUBLIC_KEYS_DIR": str(generated_keys.public_dir)},
        check_key_files=False,
    )
    registry = registry_from_config(cfg)
    check_agreement(
        registry.agreements,
        agreement_id=draft.agreement,
        iss="KZ:MIA",
        aud=draft.to,
        msg_type=draft.type,
        purpose=draft.purpose,
        on=datetime.date(2026, 11, 24),
    )
    decide(
        registry.partner(draft.to),
        direction="outbound",
        msg_type=draft.type,
        agreement=draft.agreement,
        purpose=draft.purpose,
    )
