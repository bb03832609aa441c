"""Property tests: validate_body answers any JSON-like input with a result or a Problem."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from service.protocol.problems import Problem
from service.records.examples import EXAMPLES
from service.records.registry import MESSAGE_TYPES, Validated, body_json_schema, validate_body

_SCHEMA_VALIDATORS = {
    msg_type: Draft202012Validator(
        body_json_schema(msg_type), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    for msg_type in MESSAGE_TYPES
}

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.sampled_from(["", "1991-03-14", "KAZ", "M", "KZ-IIN", "791028302728", "2024-Q1"])
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
JSON_OBJECTS = st.dictionaries(st.text(max_size=20), JSON_VALUES, max_size=8)


def _outcome(msg_type: str, body: Any) -> Validated | Problem:
    try:
        return validate_body(msg_type, body)
    except Problem as problem:
        refused = problem
    assert refused.code == "schema"
    assert all(e["path"].startswith("/body") for e in refused.extra["errors"])
    return refused


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(MESSAGE_TYPES), JSON_OBJECTS)
def test_arbitrary_objects_yield_a_result_or_a_schema_problem(
    msg_type: str, body: dict[str, Any]
) -> None:
    _outcome(msg_type, body)


def _leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [prefix] + [p for k, v in value.items() for p in _leaf_paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [prefix] + [p for i, v in enumerate(value) for p in _leaf_paths(v, (*prefix, i))]
    return [prefix]


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


@st.composite
def _mutated_examples(draw: st.DrawFn) -> tuple[str, Any]:
    msg_type = draw(st.sampled_from(MESSAGE_TYPES))
    body = copy.deepcopy(EXAMPLES[msg_type])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_leaf_paths(body)))
        body = _replace(body, path, draw(JSON_VALUES))
    return msg_type, body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_examples())
def test_mutated_examples_yield_a_result_or_a_schema_problem(case: tuple[str, Any]) -> None:
    msg_type, body = case
    _outcome(msg_type, body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_examples())
def test_a_body_the_models_accept_also_passes_the_published_schema(case: tuple[str, Any]) -> None:
    msg_type, body = case
    if isinstance(_outcome(msg_type, body), Validated):
        assert [e.message for e in _SCHEMA_VALIDATORS[msg_type].iter_errors(body)] == []
