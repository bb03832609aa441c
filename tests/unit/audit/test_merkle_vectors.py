"""Every RFC 6962/9162 proof vector of transparency-dev/merkle (tests/assets/rfc9162)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from service.audit.merkle import ProofError, verify_consistency, verify_inclusion

VECTORS = Path(__file__).parents[2] / "assets" / "rfc9162" / "testdata"
INCLUSION = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((VECTORS / "consistency").rglob("*.json"))


def case_id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text())
    return case


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def hashes(values: list[str] | None) -> list[bytes]:
    return [b64(v) for v in values or []]


def test_vector_sets_are_present() -> None:
    assert (len(INCLUSION), len(CONSISTENCY)) == (98, 98)


@pytest.mark.parametrize("path", INCLUSION, ids=case_id)
def test_inclusion_vector(path: Path) -> None:
    case = load(path)
    args = (case["leafIdx"], case["treeSize"], b64(case["leafHash"]), hashes(case["proof"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args, b64(case["root"]))
    else:
        verify_inclusion(*args, b64(case["root"]))


@pytest.mark.parametrize("path", CONSISTENCY, ids=case_id)
def test_consistency_vector(path: Path) -> None:
    case = load(path)
    args = (case["size1"], case["size2"], b64(case["root1"]), b64(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args, hashes(case["proof"]))
    else:
        verify_consistency(*args, hashes(case["proof"]))
