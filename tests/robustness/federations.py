"""A test federation built outside pytest fixtures, for module-level strategies and schemas."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.support.nodes import Federation, make_party

# Directories that must outlive the module that asked for them; removed at exit.
_KEPT: list[tempfile.TemporaryDirectory[str]] = []


def federation_in(tmp: Path) -> Federation:
    """The KZ node with partners UZ and KG, keys in `tmp`, on SQLite in `tmp`."""
    keys = tmp / "keys"
    keys.mkdir()
    return Federation(
        tmp=tmp,
        database_url=f"sqlite:///{tmp / 'node.db'}",
        kz=make_party(keys, "KZ:MIA"),
        uz=make_party(keys, "UZ:MIA"),
        kg=make_party(keys, "KG:SRS", kind="p256"),
    )


def module_federation() -> Federation:
    """A federation in a temporary directory kept until the interpreter exits."""
    directory = tempfile.TemporaryDirectory(prefix="migex-test-")
    _KEPT.append(directory)
    return federation_in(Path(directory.name))
