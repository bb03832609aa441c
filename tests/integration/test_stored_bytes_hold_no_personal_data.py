"""What a database administrator's copy holds: after traffic with encryption on, a
`pg_dump` of the PostgreSQL database, or the SQLite file with its journal, and every
file of the attachment store, hold no IIN, PINFL, name or document number of the
messages and files exchanged. The same traffic
without a KEK shows that the scan finds them when they are there: it reads through
the JWS's base64url and PostgreSQL's hex bytea, not only raw text."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from service.clock import FixedClock
from service.protocol.receipts import sha256_digest
from tests.support.atrest import (
    CLIENT,
    PERSONAL_VALUES,
    deliver,
    node_of,
    personal_pdf,
    personal_values_in,
    receive_with_file,
    start,
    stored_files,
    traffic,
    write_kek,
)
from tests.support.nodes import Federation
from tests.unit.exchange.partner import FakePartner


def stored_bytes(database_url: str) -> bytes:
    """What a copy of the database holds: a pg_dump, or the SQLite files themselves."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        files = sorted(path.parent.glob(path.name + "*"))
        assert files
        return b"".join(f.read_bytes() for f in files)
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    dump = subprocess.run(
        ["pg_dump", "--no-owner", f"--dbname={plain}"],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return dump.stdout


@pytest.mark.parametrize("encrypted", [True, False], ids=["with-kek", "without-kek"])
def test_a_copy_of_the_database_names_nobody_when_bodies_are_sealed(
    federation: Federation, clock: FixedClock, tmp_path: Path, encrypted: bool
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    keks = {"k1": write_kek(secrets, "k1.kek", 9)} if encrypted else {}
    partner = FakePartner(federation.uz, federation.kz.key.public(), clock)
    with start(federation, clock, keks) as client:
        for seed in range(3):  # a day of traffic, in small: each kind several times
            traffic(client, federation)
            with_file = receive_with_file(client, federation, personal_pdf(seed))
        assert deliver(node_of(client), partner, clock) == 3
        inbox = client.get("/v1/inbox", headers=CLIENT).json()["messages"]
        files = stored_files(node_of(client))
        read_back = client.get(
            f"/v1/inbox/UZ:MIA/{with_file}/attachments/{sha256_digest(personal_pdf(2))}",
            headers=CLIENT,
        )
    # The node itself reads every body and file it holds.
    assert len(inbox) == 9
    assert all(m["body"]["person"] for m in inbox)
    assert read_back.content == personal_pdf(2)
    assert len(files) == 3  # the three files stored, no staged upload left

    found = personal_values_in(stored_bytes(federation.database_url))
    in_files = set().union(*(personal_values_in(f.read_bytes()) for f in files))

    if encrypted:
        assert found == set()
        assert in_files == set()
    else:
        assert found == set(PERSONAL_VALUES)
        assert in_files == set(PERSONAL_VALUES)
