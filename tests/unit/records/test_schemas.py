"""Published JSON Schemas and examples: drift, validity, and agreement with the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from service.records.examples import EXAMPLES
from service.records.registry import MESSAGE_TYPES, validate_body
from service.records.schemas import check, envelope_schema, generate, main, render, write

PUBLISHED = Path(__file__).resolve().parents[3] / "schemas"


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_published_schemas_match_the_models() -> None:
    assert check(PUBLISHED) == []


def test_generate_covers_every_type_and_the_envelope() -> None:
    names = set(generate())
    assert names == {f"{t}.schema.json" for t in MESSAGE_TYPES} | {"envelope.schema.json"}


@pytest.mark.parametrize("name", sorted(generate()))
def test_each_generated_schema_is_valid_draft_2020_12(name: str) -> None:
    document = generate()[name]
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == "urn:migex:schema:" + name.removesuffix(".schema.json")


@pytest.mark.parametrize("msg_type", MESSAGE_TYPES)
def test_each_published_example_passes_its_schema_and_validate_body(msg_type: str) -> None:
    body = _load(PUBLISHED / "examples" / f"{msg_type}.json")
    schema = _load(PUBLISHED / f"{msg_type}.schema.json")
    errors = [e.message for e in _validator(schema).iter_errors(body)]
    assert errors == []
    validate_body(msg_type, body)


def test_written_files_are_sorted_indented_and_end_with_a_newline(tmp_path: Path) -> None:
    written = write(tmp_path)
    receipt = tmp_path / "receipt.schema.json"
    assert receipt in written
    text = receipt.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_fresh_output_has_no_drift(tmp_path: Path) -> None:
    write(tmp_path)
    assert check(tmp_path) == []


def test_edited_schema_is_reported_as_drift(tmp_path: Path) -> None:
    write(tmp_path)
    path = tmp_path / "receipt.schema.json"
    path.write_text(path.read_text(encoding="utf-8").replace("accepted", "taken"), encoding="utf-8")
    assert check(tmp_path) == ["receipt.schema.json"]


def test_missing_example_is_reported_as_drift(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "examples" / "receipt.json").unlink()
    assert check(tmp_path) == ["examples/receipt.json"]


def test_stale_schema_is_reported_as_drift(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "old.type.schema.json").write_text("{}\n", encoding="utf-8")
    assert check(tmp_path) == ["old.type.schema.json"]


def test_module_entry_point_writes_then_checks(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    assert main(["--check", str(tmp_path)]) == 0
    (tmp_path / "receipt.schema.json").unlink()
    assert main(["--check", str(tmp_path)]) == 1


ENVELOPE: dict[str, Any] = {
    "v": 1,
    "id": "01890a5d-ac96-774b-bcce-b302099a8057",
    "iss": "UZ:MIA",
    "aud": "KZ:MIA",
    "iat": 1767225600,
    "type": "statistics.migration-flows",
    "agreement": "kz-uz-2019",
    "purpose": "statistics",
    "reply_to": None,
    "body": {},
}


def test_envelope_schema_accepts_a_protocol_payload() -> None:
    assert list(_validator(envelope_schema()).iter_errors(ENVELOPE)) == []


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("v", 2),
        ("id", "01890A5D-AC96-774B-BCCE-B302099A8057"),
        ("iss", "UZ-MIA"),
        ("iat", -1),
        ("type", "unknown.type"),
        ("reply_to", "x"),
        ("body", []),
        ("extra", 1),
    ],
)
def test_envelope_schema_refuses_a_bad_member(member: str, value: Any) -> None:
    payload = {**ENVELOPE, member: value}
    assert list(_validator(envelope_schema()).iter_errors(payload)) != []


def test_envelope_schema_requires_reply_to_even_when_null() -> None:
    payload = {k: v for k, v in ENVELOPE.items() if k != "reply_to"}
    assert list(_validator(envelope_schema()).iter_errors(payload)) != []


@pytest.mark.parametrize("msg_type", MESSAGE_TYPES)
def test_records_documentation_shows_the_current_example(msg_type: str) -> None:
    text = (PUBLISHED.parent / "docs" / "records.md").read_text(encoding="utf-8")
    assert render(EXAMPLES[msg_type], ascii_only=False) in text
