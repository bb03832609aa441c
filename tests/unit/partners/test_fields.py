"""filter_fields: the outbound allow-list of body fields, and what it removed."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from service.partners.fields import filter_fields

RESPONSE: dict[str, Any] = {
    "result": "confirmed",
    "checked_on": "2026-11-20",
    "matched_fields": ["names.latin", "birth_date"],
    "needed_fields": [],
    "person": {
        "names": {"latin": {"surname": "ERIKSSON", "given_names": "ANNA MARIA"}, "cyrillic": None},
        "birth_date": "1974-08-12",
        "identifiers": [{"scheme": "KZ-IIN", "value": "740812400017"}],
        "sex": "F",
    },
    "documents": [
        {"type": "passport", "number": "L898902C3", "issuing_state": "UTO"},
        {"type": "id-card", "number": "D23145890", "issuing_state": "UTO"},
    ],
    "remarks": "checked against the population register",
}
LIMITED = [
    "result",
    "checked_on",
    "matched_fields",
    "needed_fields",
    "person.names",
    "person.birth_date",
]


def test_wildcard_keeps_the_whole_body_and_removes_nothing() -> None:
    assert filter_fields(RESPONSE, ["*"]) == (RESPONSE, [])


def test_known_answer_for_a_verification_response() -> None:
    filtered, removed = filter_fields(RESPONSE, LIMITED)
    assert filtered == {
        "result": "confirmed",
        "checked_on": "2026-11-20",
        "matched_fields": ["names.latin", "birth_date"],
        "needed_fields": [],
        "person": {
            "names": {
                "latin": {"surname": "ERIKSSON", "given_names": "ANNA MARIA"},
                "cyrillic": None,
            },
            "birth_date": "1974-08-12",
        },
    }
    assert removed == ["documents", "person.identifiers", "person.sex", "remarks"]


def test_path_through_a_list_applies_to_every_element() -> None:
    filtered, removed = filter_fields(RESPONSE, ["documents.number"])
    assert filtered == {"documents": [{"number": "L898902C3"}, {"number": "D23145890"}]}
    assert removed == [
        "checked_on",
        "documents.issuing_state",
        "documents.type",
        "matched_fields",
        "needed_fields",
        "person",
        "remarks",
        "result",
    ]


def test_deeper_path_keeps_only_that_leaf() -> None:
    filtered, removed = filter_fields(RESPONSE, ["person.names.latin.surname"])
    assert filtered == {"person": {"names": {"latin": {"surname": "ERIKSSON"}}}}
    assert "person.names.latin.given_names" in removed
    assert "person.names.cyrillic" in removed


def test_a_path_and_its_prefix_keep_the_whole_prefix() -> None:
    short, _ = filter_fields(RESPONSE, ["person"])
    both, _ = filter_fields(RESPONSE, ["person.sex", "person"])
    assert short == both == {"person": RESPONSE["person"]}


def test_scalar_where_the_allow_list_expects_children_is_removed() -> None:
    filtered, removed = filter_fields({"result": "confirmed"}, ["result.code"])
    assert filtered == {}
    assert removed == ["result"]


def test_allowed_path_absent_from_the_body_changes_nothing() -> None:
    assert filter_fields({"result": "confirmed"}, ["result", "person.names"]) == (
        {"result": "confirmed"},
        [],
    )


def test_empty_allow_list_removes_everything() -> None:
    filtered, removed = filter_fields({"a": 1, "b": {"c": 2}}, [])
    assert filtered == {}
    assert removed == ["a", "b"]


def test_removed_paths_are_sorted_and_unique() -> None:
    _, removed = filter_fields(RESPONSE, ["documents.type"])
    assert removed == sorted(set(removed))
    assert removed.count("documents.number") == 1


def test_input_is_not_modified_and_output_shares_nothing() -> None:
    original = copy.deepcopy(RESPONSE)
    filtered, _ = filter_fields(RESPONSE, ["person.names", "documents"])
    filtered["person"]["names"]["latin"]["surname"] = "CHANGED"
    filtered["documents"].clear()
    assert original == RESPONSE


def test_lists_of_lists_apply_the_path_to_inner_elements() -> None:
    body = {"rows": [[{"a": 1, "b": 2}], [{"a": 3, "b": 4}]]}
    filtered, removed = filter_fields(body, ["rows.a"])
    assert filtered == {"rows": [[{"a": 1}], [{"a": 3}]]}
    assert removed == ["rows.b"]


_KEYS = st.sampled_from(["a", "b", "c", "person", "names", "number"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=20,
)
_PATHS = st.lists(st.lists(_KEYS, min_size=1, max_size=3).map(".".join), max_size=4)


@given(body=st.dictionaries(_KEYS, _JSON, max_size=5), allowed=_PATHS)
def test_every_top_level_member_is_kept_or_reported_removed(
    body: dict[str, Any], allowed: list[str]
) -> None:
    filtered, removed = filter_fields(body, allowed)
    for key in body:
        assert key in filtered or key in removed or any(r.startswith(f"{key}.") for r in removed)
    assert set(filtered) <= set(body)


@given(body=st.dictionaries(_KEYS, _JSON, max_size=5), allowed=_PATHS)
def test_filtering_twice_changes_nothing_more(body: dict[str, Any], allowed: list[str]) -> None:
    once, _ = filter_fields(body, allowed)
    assert filter_fields(once, allowed) == (once, [])
