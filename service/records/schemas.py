"""Publication of the JSON Schemas (draft 2020-12) and example bodies.

    python -m service.records.schemas schemas          # write the files
    python -m service.records.schemas --check schemas  # list files that drifted

`schemas/<type>.schema.json` holds each body's schema, `schemas/envelope.schema.json`
the signed payload's (docs/protocol.md section 2), `schemas/examples/<type>.json` one
valid body per type.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from service.protocol.envelope import (
    AGREEMENT_RE,
    ENVELOPE_MEMBERS,
    MAX_IAT,
    PARTY_RE,
    PROTOCOL_VERSION,
    PURPOSE_RE,
    UUID_RE,
)
from service.records.examples import EXAMPLES
from service.records.registry import MESSAGE_TYPES, SCHEMA_DIALECT, body_json_schema, schema_id

EXAMPLES_DIR: Final = "examples"
SCHEMA_SUFFIX: Final = ".schema.json"


def envelope_schema() -> dict[str, Any]:
    """The schema of a message's JWS payload (docs/protocol.md section 2)."""
    uuid = {"type": "string", "pattern": UUID_RE}
    party = {"type": "string", "pattern": PARTY_RE}
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": schema_id("envelope"),
        "title": "envelope",
        "description": "The JWS payload of every migex message; body is valid against "
        "urn:migex:schema:<type>.",
        "type": "object",
        "additionalProperties": False,
        "required": list(ENVELOPE_MEMBERS),
        "properties": {
            "v": {"const": PROTOCOL_VERSION, "description": "protocol version"},
            "id": {**uuid, "description": "message id: lowercase hyphenated RFC 9562 UUID"},
            "iss": {**party, "description": "sending party"},
            "aud": {**party, "description": "receiving party"},
            "iat": {"type": "integer", "minimum": 0, "maximum": MAX_IAT, "description": "time of signing, Unix seconds"},
            "type": {"enum": list(MESSAGE_TYPES), "description": "message type"},
            "agreement": {"type": "string", "pattern": AGREEMENT_RE, "description": "agreement id, e.g. kz-uz-2019"},
            "purpose": {"type": "string", "pattern": PURPOSE_RE, "description": "purpose code, e.g. statistics"},
            "reply_to": {
                "anyOf": [uuid, {"type": "null"}],
                "description": "id of the message this one answers",
            },
            "body": {"type": "object", "description": "the type's content"},
        },
    }  # fmt: skip


def generate() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document, for every body type and the envelope."""
    documents = {f"{name}{SCHEMA_SUFFIX}": body_json_schema(name) for name in MESSAGE_TYPES}
    documents[f"envelope{SCHEMA_SUFFIX}"] = envelope_schema()
    return documents


def render(document: dict[str, Any], *, ascii_only: bool = True) -> str:
    """Pretty JSON: indent 2, sorted keys, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=ascii_only) + "\n"


def _expected_files() -> dict[Path, str]:
    files = {Path(name): render(doc) for name, doc in generate().items()}
    for name, body in EXAMPLES.items():
        files[Path(EXAMPLES_DIR) / f"{name}.json"] = render(body, ascii_only=False)
    return files


def write(directory: Path) -> list[Path]:
    """Write every schema and example under `directory`; return the paths written."""
    written = []
    for relative, text in _expected_files().items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def check(directory: Path) -> list[str]:
    """Files under `directory` that are missing, differ from the generated ones, or
    are stale schemas or examples no type produces (relative paths, sorted)."""
    expected = _expected_files()
    drifted = [
        str(relative)
        for relative, text in expected.items()
        if not (directory / relative).is_file()
        or (directory / relative).read_text(encoding="utf-8") != text
    ]
    present = [*directory.glob(f"*{SCHEMA_SUFFIX}"), *directory.glob(f"{EXAMPLES_DIR}/*.json")]
    drifted.extend(
        str(path.relative_to(directory))
        for path in present
        if path.relative_to(directory) not in expected
    )
    return sorted(drifted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service.records.schemas",
        description="Write the JSON Schemas and examples, or check them for drift.",
    )
    parser.add_argument("--check", action="store_true", help="report drift, write nothing")
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    if args.check:
        drifted = check(args.directory)
        for name in drifted:
            print(f"drifted: {name}")
        return 1 if drifted else 0
    for path in write(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
