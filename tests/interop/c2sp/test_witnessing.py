"""The independent log and witness agree with each other over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.interop.c2sp import notes, proofs, tree, witnessing

NOW = 1_767_225_600


@pytest.fixture
def pair() -> Iterator[tuple[witnessing.TinyLog, witnessing.TinyWitness, str]]:
    log = witnessing.TinyLog("example.test/log")
    for i in range(5):
        log.append(f"entry {i}".encode())
    witness = witnessing.TinyWitness("example.test/witness", {log.origin: log.vkey}, lambda: NOW)
    url = witness.start()
    try:
        yield log, witness, url + "/add-checkpoint"
    finally:
        witness.stop()


def test_log_learns_the_witnessed_size_and_gets_a_cosignature(
    pair: tuple[witnessing.TinyLog, witnessing.TinyWitness, str],
) -> None:
    log, witness, url = pair
    with httpx.Client() as client:
        _, first = log.witness(client, url, witness.vkey, old=0)
        for i in range(6):
            log.append(f"more {i}".encode())
        line, timestamp = log.witness(client, url, witness.vkey, old=0)
    assert (first, timestamp) == (NOW, NOW)
    assert witness.statuses == [200, 409, 200]
    cosigned = log.checkpoint() + line
    bundle = (
        f"{proofs.HEADER}\nindex 7\n"
        + "".join(notes.b64encode(h) + "\n" for h in tree.path(7, log.leaves))
        + "\n"
        + cosigned
    )
    cp = proofs.verify(bundle, log.leaves[7], log.vkey, [witness.vkey], 1)
    assert cp.size == 11


def test_every_refusal_status(pair: tuple[witnessing.TinyLog, witnessing.TinyWitness, str]) -> None:
    log, _, url = pair
    stranger = witnessing.TinyLog("example.test/other")
    stranger.append(b"x")
    impostor = witnessing.TinyLog(log.origin)
    impostor.leaves = list(log.leaves)
    with httpx.Client() as client:
        assert stranger.submit(client, url, 0).status == 404
        assert impostor.submit(client, url, 0).status == 403
        assert log.submit(client, url, 6).status == 400
        assert log.submit(client, url, 0, size=3).status == 200
        conflict = log.submit(client, url, 0)
        assert (conflict.status, conflict.body) == (409, "3\n")
        assert conflict.content_type == "text/x.tlog.size"
        forked = witnessing.TinyLog(log.origin, private=log.private)
        forked.leaves = [*log.leaves[:2], b"rewritten", *log.leaves[3:]]
        assert forked.submit(client, url, 3).status == 422
        assert log.submit(client, url, 3).status == 200
