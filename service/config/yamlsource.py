"""YAML with line numbers: the operator's file as plain values plus where each one is.

PyYAML's composer keeps a mark (line, column) on every node; this module turns the
node tree into dicts, lists and scalars itself so that it can remember, for every
path into the document, the line it starts on. Validation errors then name the line
the operator has to edit. Only the safe YAML types are built; duplicate keys, merge
keys, recursive aliases and non-string keys are refused rather than silently resolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Loc = tuple[str | int, ...]

MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
MERGE_TAG = "tag:yaml.org,2002:merge"
DEFAULT_MAX_NODES = 1_000_000


@dataclass(frozen=True)
class YamlIssue:
    line: int
    message: str


class YamlSourceError(ValueError):
    """The text is not a YAML document this loader accepts; `issues` name the lines."""

    def __init__(self, issues: list[YamlIssue]) -> None:
        super().__init__("; ".join(f"line {i.line}: {i.message}" for i in issues))
        self.issues = issues


@dataclass(frozen=True)
class YamlDocument:
    data: Any
    lines: Mapping[Loc, int]

    def line(self, loc: Loc) -> int:
        """The line of `loc`, or of its nearest ancestor present in the file."""
        for end in range(len(loc), -1, -1):
            found = self.lines.get(loc[:end])
            if found is not None:
                return found
        return 1


def render_loc(loc: Loc) -> str:
    """("partners", 0, "rules", 1, "id") -> "partners[0].rules[1].id"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def parse_yaml(text: str, *, max_nodes: int = DEFAULT_MAX_NODES) -> YamlDocument:
    """Parse one YAML document; raises YamlSourceError listing every problem found."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise YamlSourceError([YamlIssue(line, message)]) from exc
    except yaml.YAMLError as exc:
        raise YamlSourceError([YamlIssue(1, str(exc))]) from exc
    if root is None:
        raise YamlSourceError([YamlIssue(1, "the file holds no YAML document")])
    builder = _Builder(max_nodes)
    data = builder.build(root, ())
    if builder.issues:
        raise YamlSourceError(sorted(builder.issues, key=lambda i: i.line))
    return YamlDocument(data, builder.lines)


@dataclass
class _Builder:
    max_nodes: int
    lines: dict[Loc, int] = field(default_factory=lambda: {(): 1})
    issues: list[YamlIssue] = field(default_factory=list)
    count: int = 0
    active: set[int] = field(default_factory=set)
    scalars: SafeConstructor = field(default_factory=SafeConstructor)

    def build(self, node: Node, loc: Loc) -> Any:
        self.count += 1
        if self.count > self.max_nodes:
            if self.count == self.max_nodes + 1:
                self._issue(node, f"the document expands to more than {self.max_nodes} values")
            return None
        if id(node) in self.active:
            self._issue(node, "a recursive alias refers to itself")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, loc)
            if isinstance(node, SequenceNode):
                return self._sequence(node, loc)
            return self._scalar(node)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        if node.tag != MAP_TAG:
            self._issue(node, f"unsupported tag {node.tag}")
            return {}
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                self._issue(key_node, "merge keys (<<) are not supported: write the mapping out")
                continue
            key = self._scalar(key_node) if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str):
                self._issue(key_node, f"a mapping key must be a string, not {key_node.value!r}")
                continue
            if key in out:
                first = self.lines[(*loc, key)]
                self._issue(key_node, f"duplicate key {key!r} (first given on line {first})")
                continue
            self.lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*loc, key))
        return out

    def _sequence(self, node: SequenceNode, loc: Loc) -> list[Any]:
        if node.tag != SEQ_TAG:
            self._issue(node, f"unsupported tag {node.tag}")
            return []
        out: list[Any] = []
        for index, item in enumerate(node.value):
            self.lines[(*loc, index)] = item.start_mark.line + 1
            out.append(self.build(item, (*loc, index)))
        return out

    def _scalar(self, node: Node) -> Any:
        try:
            return self.scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self._issue(node, str(getattr(exc, "problem", None) or exc))
            return None

    def _issue(self, node: Node, message: str) -> None:
        self.issues.append(YamlIssue(node.start_mark.line + 1, message))
