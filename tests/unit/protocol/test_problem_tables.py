"""The problem tables of docs/protocol.md name the node's codes with their statuses."""

from __future__ import annotations

import re
from pathlib import Path

from service.protocol.problems import KINDS

PROTOCOL = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"


def _section(title: str) -> str:
    text = PROTOCOL.read_text("utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_the_attachment_problems_are_the_nodes_codes_with_their_statuses() -> None:
    rows = re.findall(r"^\| `([a-z-]+)` \| (\d{3}) \|", _section("Attachments (v1.1)"), re.M)
    documented = {code: int(status) for code, status in rows}
    attachment_codes = {
        code: kind.status
        for code, kind in KINDS.items()
        if code.startswith(("attachment", "upload-"))
    }
    assert documented == attachment_codes


def test_the_refusal_table_of_section_6_uses_the_nodes_codes_and_statuses() -> None:
    rows = re.findall(r"^\| \d+ \| `([a-z-]+)` \| (\d{3}) \|", _section("6. Refusals"), re.M)
    assert rows
    for code, status in rows:
        assert KINDS[code].status == int(status), code
