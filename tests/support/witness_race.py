"""One process of the witness race test: submit a log's checkpoints to a witness that
shares its database with another process doing the same.

    python -m tests.support.witness_race URL LOG_KEY WITNESS_KEY FIRST STEP LAST

Submits the checkpoints of sizes FIRST, FIRST + STEP, ... up to LAST, each from the
latest cosigned size this process knows (learned from 409 answers), and prints one
JSON line per cosigned request: {"old": ..., "new": ...}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.note import verifier_key
from service.db.engine import create_engines
from service.ledger.committer import GroupCommitter
from service.protocol.keys import load_signing_key
from service.witness.checks import Refusal
from service.witness.cosigner import Cosigner, WitnessSettings
from service.witness.protocol import render_request
from tests.support.tlog import MemoryLog

ORIGIN = "migex/UZ:MIA"


def _ed25519(path: str, kid: str) -> Ed25519PrivateKey:
    private = load_signing_key(Path(path), kid).private
    assert isinstance(private, Ed25519PrivateKey)
    return private


def main(url: str, log_key: str, witness_key: str, first: int, step: int, last: int) -> None:
    log = MemoryLog(ORIGIN, _ed25519(log_key, "UZ:MIA#log"))
    engines = create_engines(url)
    committer = GroupCommitter(
        engines,
        node="KZ:MIA",
        clock=time.time,
        sign_checkpoint=lambda s, r: "",
        checkpoint_interval=1,
    )
    settings = WitnessSettings(
        name="migex/KZ:MIA/witness",
        key=_ed25519(witness_key, "KZ:MIA#witness"),
        logs={ORIGIN: (verifier_key(ORIGIN, log.key.public_key()),)},
        per_second=1e6,
        burst=1_000_000,
    )
    cosigner = Cosigner(settings, engines, committer, time.time)
    old = 0
    for size in range(first, last + 1, step):
        while old < size:
            body = render_request(old, log.proof(old, size), log.checkpoint(size))
            try:
                cosigner.add_checkpoint(body)
            except Refusal as refusal:
                if refusal.status != 409 or refusal.latest_size is None:
                    raise
                old = refusal.latest_size
                continue
            print(json.dumps({"old": old, "new": size}), flush=True)
            old = size
    engines.dispose()


if __name__ == "__main__":
    url, log_key, witness_key, *numbers = sys.argv[1:]
    main(url, log_key, witness_key, *(int(n) for n in numbers))
