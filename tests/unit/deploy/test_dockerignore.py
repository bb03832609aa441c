""".dockerignore: tests, environments, local databases, git and keys stay out of the context."""

from __future__ import annotations

import re

import pytest

from tests.unit.deploy.conftest import DOCKERIGNORE


def _regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in DOCKERIGNORE.read_text("utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rules.append((negated, _regex(pattern)))
    return rules


def excluded(path: str) -> bool:
    """Whether the build context leaves `path` out: the last matching rule decides, and a
    rule matching a parent directory matches everything under it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negated, rx in _rules():
        if any(rx.fullmatch(p) for p in prefixes):
            result = not negated
    return result


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        "tests/unit/test_config.py",
        "tests/assets/compose-spec.json",
        "migex.db",
        "var/kz/node.db",
        "service/local.db-wal",
        "service/__pycache__/cli.cpython-311.pyc",
        "docker/secrets/kz_signing_key",
        "kz.pem",
        ".env",
    ],
)
def test_dockerignore_leaves_out(path: str) -> None:
    assert excluded(path)


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "service/cli.py",
        "service/db/migrations/versions/0001_initial_schema.py",
        "service/db/migrations/script.py.mako",
        "service/sample/node.yaml.tmpl",
        "service/py.typed",
        "docker/constraints.txt",
        "docker/keys-init.sh",
    ],
)
def test_dockerignore_keeps_the_build_inputs(path: str) -> None:
    assert not excluded(path)
