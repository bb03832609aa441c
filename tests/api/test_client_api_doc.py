"""docs/client-api.md against the running node's `/openapi.json`: every local endpoint has
a section with a curl example; every parameter, field, type, status value and error
status of the document is the one the node declares, and every JSON example of an
answer is valid against its schema. The reference cannot drift from the code."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from service.api.models import MessageStatus, OutboxState
from service.api.openapi import PROBLEM_SCHEMA
from service.protocol.problems import KINDS

DOC = Path(__file__).resolve().parents[2] / "docs" / "client-api.md"
SCHEMA_REF = re.compile(r"schema `(\w+)`")
OPERATION = re.compile(r"^### `(GET|POST|PUT|PATCH|DELETE) (/\S+)`$")
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class Table:
    caption: str
    operation: tuple[str, str] | None
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    """A `### METHOD /path` section of the document: its text and tables."""

    text: list[str] = field(default_factory=list)


@dataclass
class Doc:
    tables: list[Table]
    examples: list[tuple[str, str]]  # (caption, JSON text)
    sections: dict[tuple[str, str], Section]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _parse(text: str) -> Doc:
    tables: list[Table] = []
    examples: list[tuple[str, str]] = []
    sections: dict[tuple[str, str], Section] = {}
    operation: tuple[str, str] | None = None
    caption = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            operation = None
        if match := OPERATION.match(line):
            operation = (match[1].lower(), match[2])
            sections[operation] = Section()
        end = i + 1
        if line.startswith("|"):
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            rows = [_cells(row) for row in lines[i + 2 : end]]
            tables.append(Table(caption, operation, _cells(line), rows))
            caption = ""
        elif line.startswith("```"):
            while lines[end] != "```":
                end += 1
            if line == "```json":
                examples.append((caption, "\n".join(lines[i + 1 : end])))
            end += 1
        elif line.strip():
            # A caption is the paragraph before a table or an example.
            follows = i > 0 and lines[i - 1].strip() and not lines[i - 1].startswith(("|", "`"))
            caption = f"{caption} {line}" if follows else line
        if operation is not None:
            sections[operation].text.extend(lines[i:end])
        i = end
    return Doc(tables, examples, sections)


def _code(cell: str) -> str:
    return cell.strip("`")


def type_text(schema: dict[str, Any]) -> str:
    """A schema as the document's type column writes it."""
    if "$ref" in schema:
        return f"`{schema['$ref'].rsplit('/', 1)[-1]}`"
    if "anyOf" in schema:
        parts = [type_text(s) for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = any(s.get("type") == "null" for s in schema["anyOf"])
        return " or ".join(parts) + (" or null" if nullable else "")
    if "const" in schema:
        return f"`{_literal(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{_literal(v)}`" for v in schema["enum"])
    kind = schema["type"]
    if kind == "array":
        return f"list of {type_text(schema['items'])}"
    return str(kind)


def _literal(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@pytest.fixture(scope="module")
def doc() -> Doc:
    return _parse(DOC.read_text("utf-8"))


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    answer: dict[str, Any] = client.get("/openapi.json").json()
    return answer


def _operations(spec: dict[str, Any], *tags: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS and set(op.get("tags", ())) & set(tags)
    }


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"].rsplit("/", 1)[-1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _reachable(spec: dict[str, Any], roots: list[str]) -> set[str]:
    schemas = spec["components"]["schemas"]
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_refs(schemas[name]))
    return seen


def _field_tables(doc: Doc) -> dict[str, Table]:
    found: dict[str, Table] = {}
    for table in doc.tables:
        if table.header[0] == "field":
            match = SCHEMA_REF.search(table.caption)
            assert match, f"a field table without its schema: {table.caption!r}"
            assert match[1] not in found, f"schema {match[1]} documented twice"
            found[match[1]] = table
    return found


def test_every_local_endpoint_has_a_section_with_a_curl_example(
    doc: Doc, spec: dict[str, Any]
) -> None:
    local = _operations(spec, "local")
    assert set(doc.sections) == set(local)
    for (method, path), section in doc.sections.items():
        assert f"Operation id `{local[method, path]['operationId']}`." in section.text, path
        url = re.sub(r"\\\{\w+\\\}", "[^/?' ]+", re.escape(path)) + r"(\?|'|\s|$)"
        curls = [line for line in section.text if re.search(r"https://node\.example" + url, line)]
        assert curls, f"no curl example for {method.upper()} {path}"
        if method == "post":
            start = section.text.index(curls[0])
            command = " ".join(section.text[max(0, start - 3) : start + 1])
            assert "-X POST" in command, f"the example of POST {path} is not a POST"


def test_every_schema_of_the_local_api_has_a_field_table_matching_openapi(
    doc: Doc, spec: dict[str, Any]
) -> None:
    schemas = spec["components"]["schemas"]
    roots: list[str] = []
    for op in _operations(spec, "local").values():
        success = [r for code, r in op["responses"].items() if code.startswith("2")]
        roots.extend(_refs([op.get("requestBody", {}), success]))
    tables = _field_tables(doc)
    assert set(tables) == _reachable(spec, roots)
    for name, table in tables.items():
        schema = schemas[name]
        assert table.header[:3] == ["field", "type", "required"], name
        documented = {_code(row[0]): (row[1], row[2]) for row in table.rows}
        declared = {
            prop: (type_text(sub), "yes" if prop in schema.get("required", ()) else "no")
            for prop, sub in schema["properties"].items()
        }
        assert documented == declared, name


def test_every_parameter_is_documented_with_its_type_and_default(
    doc: Doc, spec: dict[str, Any]
) -> None:
    documented: dict[tuple[str, str], dict[str, tuple[str, str, str]]] = {}
    for table in doc.tables:
        if table.header[0] == "parameter":
            assert table.operation is not None
            assert table.header[:4] == ["parameter", "in", "type", "default"]
            documented[table.operation] = {
                _code(row[0]): (row[1], row[2], _code(row[3])) for row in table.rows
            }
    declared: dict[tuple[str, str], dict[str, tuple[str, str, str]]] = {}
    for key, op in _operations(spec, "local").items():
        params = op.get("parameters", [])
        if params:
            declared[key] = {
                p["name"]: (
                    p["in"],
                    type_text(p["schema"]),
                    _literal(p["schema"]["default"]) if "default" in p["schema"] else "",
                )
                for p in params
            }
    assert documented == declared


def _problem_rows(table: Table) -> list[tuple[int, str]]:
    return [(int(row[0]), _code(row[1])) for row in table.rows]


def test_every_error_table_names_the_statuses_openapi_declares_with_valid_codes(
    doc: Doc, spec: dict[str, Any]
) -> None:
    local = _operations(spec, "local")
    per_operation: dict[tuple[str, str], set[int]] = {}
    for table in doc.tables:
        if table.header[:2] != ["status", "code"]:
            continue
        rows = _problem_rows(table)
        for status, code in rows:
            assert code in KINDS, code
            assert KINDS[code].status == status, (status, code)
        if table.operation is not None:
            assert table.operation not in per_operation, table.operation
            per_operation[table.operation] = {status for status, _ in rows}
    declared = {
        key: {int(code) for code in op["responses"] if not code.startswith("2")}
        for key, op in local.items()
    }
    assert per_operation == declared


def test_the_common_errors_are_declared_by_every_local_and_audit_endpoint(
    doc: Doc, spec: dict[str, Any]
) -> None:
    [common] = [t for t in doc.tables if t.header[:2] == ["status", "code"] and not t.operation]
    rows = _problem_rows(common)
    assert {code for _, code in rows} >= {"unauthorized", "insufficient-role"}
    for (method, path), op in _operations(spec, "local", "audit").items():
        for status, _ in rows:
            assert str(status) in op["responses"], f"{method.upper()} {path} lacks {status}"


def test_the_status_table_holds_every_status_and_delivery_state(doc: Doc) -> None:
    [table] = [t for t in doc.tables if t.header[:2] == ["`status`", "`state`"]]
    statuses = [_code(row[0]) for row in table.rows]
    states = {_code(row[1]) for row in table.rows}
    assert statuses == list(get_args(MessageStatus))
    assert states == set(get_args(OutboxState))


def test_every_json_example_is_valid_against_its_schema(doc: Doc, spec: dict[str, Any]) -> None:
    components = {"components": spec["components"]}
    assert doc.examples
    for caption, text in doc.examples:
        example = json.loads(text)
        match = SCHEMA_REF.search(caption)
        if match:
            schema = {**components, "$ref": f"#/components/schemas/{match[1]}"}
        else:
            # A problem document: its code is one the node has, with its status.
            schema = PROBLEM_SCHEMA
            assert KINDS[example["code"]].status == example["status"], example
        errors = list(Draft202012Validator(schema).iter_errors(example))
        assert errors == [], (caption, [e.message for e in errors])
