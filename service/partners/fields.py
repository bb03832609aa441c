"""Field allow-lists: what of a record an outbound rule lets a partner receive.

An allow-list holds dotted paths into the body ("result", "person.names"); "*" keeps
the whole body. A path keeps the whole subtree it names. Through a list, a path
applies to every element: "documents.number" keeps `number` in each document.
Everything else is removed, and the removed paths (dotted, without list indices)
are returned so the removal can be recorded.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

WHOLE_BODY = "*"

# A node of the allow-list tree: None keeps the whole subtree, a dict keeps only
# the listed children.
_Tree = dict[str, "_Tree | None"]


def filter_fields(
    body: Mapping[str, Any], allowed: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """A filtered deep copy of `body` and the sorted dotted paths that were removed."""
    if WHOLE_BODY in allowed:
        return copy.deepcopy(dict(body)), []
    removed: set[str] = set()
    filtered = _filter_mapping(body, _tree(allowed), "", removed)
    return filtered, sorted(removed)


def _tree(allowed: Sequence[str]) -> _Tree:
    root: _Tree = {}
    for path in allowed:
        node = root
        parts = path.split(".")
        for depth, part in enumerate(parts):
            if part not in node:
                node[part] = None if depth == len(parts) - 1 else {}
            child = node[part]
            if child is None:  # an ancestor is kept whole
                break
            if depth == len(parts) - 1:
                node[part] = None  # this path keeps the whole subtree
            else:
                node = child
    return root


def _filter_mapping(
    value: Mapping[str, Any], tree: _Tree, prefix: str, removed: set[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if key not in tree:
            removed.add(path)
            continue
        subtree = tree[key]
        if subtree is None:
            out[key] = copy.deepcopy(item)
            continue
        kept = _filter_value(item, subtree, path, removed)
        if kept is not _REMOVED:
            out[key] = kept
    return out


_REMOVED = object()


def _filter_value(item: Any, tree: _Tree, path: str, removed: set[str]) -> Any:
    """Filter a value whose allow-list names only some of its children."""
    if isinstance(item, Mapping):
        return _filter_mapping(item, tree, f"{path}.", removed)
    if isinstance(item, list):
        kept = [_filter_value(element, tree, path, removed) for element in item]
        return [element for element in kept if element is not _REMOVED]
    # A scalar where the allow-list expects children: none of it is allowed.
    removed.add(path)
    return _REMOVED
