"""The OpenAPI document: every operation has a summary, an example and its problem responses."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    doc: dict[str, Any] = client.get("/openapi.json").json()
    return doc


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "delete", "patch")
    ]


def test_every_operation_has_a_summary(spec: dict[str, Any]) -> None:
    missing = [f"{m.upper()} {p}" for p, m, op in operations(spec) if not op.get("summary")]
    assert missing == []


def test_every_operation_documents_problem_responses(spec: dict[str, Any]) -> None:
    missing = [
        f"{m.upper()} {p}"
        for p, m, op in operations(spec)
        if not any(
            code[0] in "45" and "application/problem+json" in resp.get("content", {})
            for code, resp in op["responses"].items()
        )
    ]
    assert missing == []


def _has_example(node: Any) -> bool:
    if isinstance(node, dict):
        if "example" in node or "examples" in node:
            return True
        return any(_has_example(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_example(v) for v in node)
    return False


def test_every_operation_has_an_example(spec: dict[str, Any]) -> None:
    schemas = spec.get("components", {}).get("schemas", {})

    def resolved(op: dict[str, Any]) -> Any:
        # Examples of what succeeds: the request body and the 2xx responses.
        parts = [op.get("requestBody", {})] + [
            r for code, r in op["responses"].items() if code.startswith("2")
        ]
        refs = [r.split("/")[-1] for r in _refs(parts)]
        return [parts, *[schemas.get(name, {}) for name in refs]]

    missing = [
        f"{m.upper()} {p}" for p, m, op in operations(spec) if not _has_example(resolved(op))
    ]
    assert missing == []


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_json_answer_is_described_by_a_model(spec: dict[str, Any]) -> None:
    """A 2xx JSON answer names its schema (a response model), never an open object."""
    loose = [
        f"{m.upper()} {p} {code}"
        for p, m, op in operations(spec)
        for code, resp in op["responses"].items()
        if code.startswith("2")
        for media, content in resp.get("content", {}).items()
        if media == "application/json" and "$ref" not in content.get("schema", {})
    ]
    assert loose == []


def test_every_answer_names_the_one_media_type_it_is_sent_as(spec: dict[str, Any]) -> None:
    """No 2xx answer is described as two media types when the node sends one."""
    doubled = {
        f"{m.upper()} {p} {code}": sorted(resp["content"])
        for p, m, op in operations(spec)
        for code, resp in op["responses"].items()
        if code.startswith("2") and len(resp.get("content", {})) > 1
    }
    assert doubled == {}
