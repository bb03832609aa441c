"""Every file and directory argument of `migex`: an unusable one is one line, never a traceback.

The arguments fall into four classes: the node's configuration (`--config`), files
read (exports, checkpoints, keys, drafts), files written (new keys, JWKs) and
directories (schemas, quickstart). Each command taking one is tried with each way
the argument can be wrong; the answer must be exit status 1 and a single line on
standard error that names the path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from tests.robustness.federations import federation_in
from tests.support.nodes import Federation, example_body

runner = CliRunner()

VKEY = "migex/KZ:MIA+00000000+AAAA"


@dataclass
class Place:
    """A temporary directory with one valid file of each kind, and a federation."""

    tmp: Path
    federation: Federation
    config: Path
    draft: Path
    checkpoint: Path
    export: Path
    key: Path

    def path(self, how: str) -> Path:
        """A path that is wrong in the way `how` names."""
        target = self.tmp / f"wrong-{how}"
        if how == "missing":
            return target
        if how == "a-directory":
            target.mkdir(exist_ok=True)
        elif how == "not-utf8":
            target.write_bytes(b"\xff\xfe\x00garbage\x80")
        elif how == "under-a-file":
            plain = self.tmp / "plain-file"
            plain.write_text("x")
            return plain / "child"
        elif how == "a-file":
            target.write_text("x")
        return target


@pytest.fixture
def place(tmp_path: Path) -> Place:
    federation = federation_in(tmp_path)
    draft = tmp_path / "draft.json"
    draft.write_text(json.dumps(example_body("statistics.migration-flows")))
    checkpoint = tmp_path / "checkpoint.txt"
    checkpoint.write_text("migex/KZ:MIA\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
    export = tmp_path / "export.jsonl"
    export.write_text("")
    return Place(
        tmp_path,
        federation,
        federation.write_config(),
        draft,
        checkpoint,
        export,
        federation.uz.key_file,
    )


Args = Callable[[Place, Path], list[str]]

CONFIG_COMMANDS: dict[str, Args] = {
    "serve": lambda p, x: ["serve", "--config", str(x), "--port", "9"],
    "keys jwks": lambda p, x: ["keys", "jwks", "--config", str(x)],
    "config check": lambda p, x: ["config", "check", str(x)],
    "db upgrade": lambda p, x: ["db", "upgrade", "--config", str(x)],
    "audit key": lambda p, x: ["audit", "key", "--config", str(x)],
    "audit export": lambda p, x: ["audit", "export", "--config", str(x)],
    "audit messages": lambda p, x: [
        *("audit", "messages", "--config", str(x), "--export", str(p.export))
    ],
    "retention purge": lambda p, x: ["retention", "purge", "--config", str(x)],
    "privacy rotate-kek": lambda p, x: ["privacy", "rotate-kek", "--config", str(x)],
    "send --config": lambda p, x: [
        *("send", "--file", str(p.draft), "--to", "UZ:MIA", "--type"),
        *("statistics.migration-flows", "--agreement", "kz-uz-2019"),
        *("--purpose", "statistics", "--config", str(x)),
    ],
}

READ_COMMANDS: dict[str, Args] = {
    "audit verify --export": lambda p, x: [
        *("audit", "verify", "--export", str(x), "--checkpoint", str(p.checkpoint)),
        *("--key", VKEY),
    ],
    "audit verify --checkpoint": lambda p, x: [
        *("audit", "verify", "--export", str(p.export), "--checkpoint", str(x)),
        *("--key", VKEY),
    ],
    "audit verify --key @": lambda p, x: [
        *("audit", "verify", "--export", str(p.export), "--checkpoint", str(p.checkpoint)),
        *("--key", f"@{x}"),
    ],
    "audit messages --export": lambda p, x: [
        *("audit", "messages", "--config", str(p.config), "--export", str(x))
    ],
    "audit prove --checkpoint": lambda p, x: [
        *("audit", "prove", "--url", "http://127.0.0.1:9", "--message-id", "m"),
        *("--checkpoint", str(x), "--key", VKEY, "--token", "t"),
    ],
    "audit prove --key @": lambda p, x: [
        *("audit", "prove", "--url", "http://127.0.0.1:9", "--message-id", "m"),
        *("--checkpoint", str(p.checkpoint), "--key", f"@{x}", "--token", "t"),
    ],
    "send --file": lambda p, x: [
        *("send", "--file", str(x), "--to", "KZ:MIA", "--type"),
        *("statistics.migration-flows", "--agreement", "kz-uz-2019"),
        *("--purpose", "statistics", "--key", str(p.key), "--kid", "UZ:MIA#1"),
        *("--url", "http://127.0.0.1:9"),
    ],
    "send --key": lambda p, x: [
        *("send", "--file", str(p.draft), "--to", "KZ:MIA", "--type"),
        *("statistics.migration-flows", "--agreement", "kz-uz-2019"),
        *("--purpose", "statistics", "--key", str(x), "--kid", "UZ:MIA#1"),
        *("--url", "http://127.0.0.1:9"),
    ],
}

WRITE_COMMANDS: dict[str, Args] = {
    "keys generate --out": lambda p, x: ["keys", "generate", "--kid", "KZ:MIA#9", "--out", str(x)],
    "keys generate --jwk-out": lambda p, x: [
        *("keys", "generate", "--kid", "KZ:MIA#9", "--out", str(p.tmp / "new.pem")),
        *("--jwk-out", str(x)),
    ],
    "privacy new-kek": lambda p, x: ["privacy", "new-kek", str(x)],
}

DIRECTORY_COMMANDS: dict[str, Args] = {
    "schemas generate": lambda p, x: ["schemas", "generate", str(x)],
    "schemas check": lambda p, x: ["schemas", "check", str(x)],
    "quickstart --dir": lambda p, x: ["quickstart", "--dir", str(x), "--port", "9"],
}


def cases(commands: dict[str, Args], wrongs: list[str]) -> list[object]:
    return [
        pytest.param(commands[name], how, id=f"{name}-{how}") for name in commands for how in wrongs
    ]


def assert_one_line_naming(place: Place, args: Args, how: str) -> None:
    wrong = place.path(how)
    result = runner.invoke(app, args(place, wrong))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    named = str(wrong.parent if how == "under-a-file" else wrong)
    assert named in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "how"), cases(CONFIG_COMMANDS, ["missing", "a-directory", "not-utf8"])
)
def test_an_unusable_configuration_file_is_one_line(place: Place, args: Args, how: str) -> None:
    assert_one_line_naming(place, args, how)


@pytest.mark.parametrize(
    ("args", "how"), cases(READ_COMMANDS, ["missing", "a-directory", "under-a-file"])
)
def test_an_unreadable_input_file_is_one_line(place: Place, args: Args, how: str) -> None:
    assert_one_line_naming(place, args, how)


@pytest.mark.parametrize(
    ("args", "how"),
    [
        pytest.param(READ_COMMANDS[name], "not-utf8", id=f"{name}-not-utf8")
        for name in ("audit verify --checkpoint", "audit verify --key @", "audit prove --key @")
    ],
)
def test_a_text_input_that_is_not_text_is_one_line(place: Place, args: Args, how: str) -> None:
    assert_one_line_naming(place, args, how)


@pytest.mark.parametrize(("args", "how"), cases(WRITE_COMMANDS, ["under-a-file", "a-directory"]))
def test_an_unwritable_output_file_is_one_line(place: Place, args: Args, how: str) -> None:
    assert_one_line_naming(place, args, how)
    assert not (place.tmp / "new.pem").exists()  # nothing half done


def test_an_output_file_in_a_missing_directory_is_one_line(place: Place) -> None:
    args = WRITE_COMMANDS["keys generate --out"]
    assert_one_line_naming(place, lambda p, x: args(p, x / "key.pem"), "missing")


@pytest.mark.parametrize(
    ("args", "how"),
    [
        *cases(DIRECTORY_COMMANDS, ["a-file", "under-a-file"]),
        pytest.param(DIRECTORY_COMMANDS["schemas check"], "missing", id="schemas check-missing"),
    ],
)
def test_an_unusable_directory_is_one_line(place: Place, args: Args, how: str) -> None:
    assert_one_line_naming(place, args, how)
