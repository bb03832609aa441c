"""Attachments between two node processes (protocol v1.1), on SQLite and PostgreSQL:
every type that carries files is sent with them, delivered, its files checked by the
receiver and listed in the receipt, and read back from the receiver's inbox byte for
byte; a large statistics dataset travels as its attachment."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from service.protocol.b64 import b64url_encode
from tests.e2e.federation import running
from tests.support.attachment_pair import Pair, pdf_bytes, png_bytes, start_pair
from tests.support.databases import fresh_pg_database
from tests.support.nodes import example_body

pytestmark = pytest.mark.slow


def digest(data: bytes) -> str:
    return "sha-256:" + b64url_encode(hashlib.sha256(data).digest())


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("attachments")
    if request.param == "sqlite":
        made, processes = start_pair(tmp, lambda name: f"sqlite:///{tmp / name}.db")
        with running(processes):
            yield made
        return
    from tests.conftest import PG_URL

    if not PG_URL:
        pytest.skip("set MIGEX_TEST_PG_URL to run the PostgreSQL suite")
    with fresh_pg_database(PG_URL) as kz_url, fresh_pg_database(PG_URL) as tj_url:
        urls = {"kz": kz_url, "tj": tj_url}
        made, processes = start_pair(tmp, urls.__getitem__)
        with running(processes):
            yield made


def _round_trip(
    pair: Pair, msg_type: str, body: dict[str, Any], files: dict[str, bytes], **kw: Any
) -> dict[str, Any]:
    """KZ sends `body` naming `files`; return TJ's inbox item once delivered."""
    sent = pair.kz.send(pair.tj.party, msg_type, body, **kw)
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["id"]
    status = pair.kz.delivered(message_id)
    receipt_body = status["receipt"]["payload"]["body"]
    assert receipt_body["attachments"] == [
        {"digest": a["digest"], "size": a["size"], "status": "stored"} for a in body["attachments"]
    ]
    [item] = [m for m in pair.tj.inbox(msg_type) if m["id"] == message_id]
    assert item["body"] == body
    for attachment in body["attachments"]:
        got = pair.tj.attachment(pair.kz.party, message_id, attachment["digest"])
        assert got.status_code == 200, got.text
        assert got.content == files[attachment["digest"]]
        assert got.headers["content-type"].startswith(attachment["media_type"])
    return item


def _with_files(
    pair: Pair, *files: tuple[bytes, str, str]
) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    named = [pair.kz.attach(data, media_type, name) for data, media_type, name in files]
    return named, {digest(data): data for data, _, _ in files}


def test_an_experience_document_travels_with_its_pdf(pair: Pair) -> None:
    pdf = pdf_bytes(300_000, seed=1)
    named, files = _with_files(pair, (pdf, "application/pdf", "methodology.pdf"))
    assert named[0]["digest"] == digest(pdf)
    body = {**example_body("experience.document"), "attachments": named}
    body["serves"] = {**body["serves"], "agreement": "kz-tj-2018"}
    _round_trip(pair, "experience.document", body, files)


def test_a_readmission_request_carries_passport_copies(pair: Pair) -> None:
    named, files = _with_files(
        pair,
        (pdf_bytes(50_000, seed=2), "application/pdf", "passport.pdf"),
        (png_bytes(), "image/png", "passport-page-2.png"),
    )
    body = {**example_body("readmission.request"), "attachments": named}
    _round_trip(pair, "readmission.request", body, files)


def test_a_violation_notice_carries_its_decision(pair: Pair) -> None:
    named, files = _with_files(pair, (pdf_bytes(20_000, seed=3), "application/pdf", "decision.pdf"))
    body = {**example_body("migration.violation-notice"), "attachments": named}
    _round_trip(pair, "migration.violation-notice", body, files)


def test_a_readmission_response_carries_its_documents(pair: Pair) -> None:
    request = pair.kz.send(
        pair.tj.party, "readmission.request", example_body("readmission.request")
    )
    assert request.status_code == 202, request.text
    request_id = request.json()["id"]
    pair.kz.delivered(request_id)
    pdf = pdf_bytes(40_000, seed=4)
    named = [pair.tj.attach(pdf, "application/pdf", "certificate.pdf")]
    body = {**example_body("readmission.response"), "attachments": named}
    sent = pair.tj.send(pair.kz.party, "readmission.response", body, reply_to=request_id)
    assert sent.status_code == 202, sent.text
    status = pair.tj.delivered(sent.json()["id"])
    assert status["receipt"]["payload"]["body"]["attachments"][0]["digest"] == digest(pdf)
    got = pair.kz.attachment(pair.tj.party, sent.json()["id"], digest(pdf))
    assert got.content == pdf


def test_a_statistics_dataset_travels_as_its_attachment(pair: Pair) -> None:
    body = example_body("statistics.migration-flows")
    observations = json.dumps(body.pop("observations")).encode()
    named, files = _with_files(pair, (observations, "application/json", "observations.json"))
    body["attachments"] = named
    _round_trip(pair, "statistics.migration-flows", body, files)


def test_an_invalid_attached_dataset_is_refused_as_an_inline_one_would_be(pair: Pair) -> None:
    body = example_body("statistics.migration-flows")
    observations = body.pop("observations")
    observations[0]["OBS_VALUE"] = -1
    data = json.dumps(observations).encode()
    body["attachments"] = [pair.kz.attach(data, "application/json", "observations.json")]
    refused = pair.kz.send(pair.tj.party, "statistics.migration-flows", body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "schema"
    assert [e["path"] for e in refused.json()["errors"]] == ["/body/observations/0/OBS_VALUE"]


def test_the_same_file_in_two_messages_is_stored_once_at_the_receiver(pair: Pair) -> None:
    pdf = pdf_bytes(10_000, seed=5)
    for _ in range(2):
        named, files = _with_files(pair, (pdf, "application/pdf", "same.pdf"))
        body = {**example_body("migration.violation-notice"), "attachments": named}
        _round_trip(pair, "migration.violation-notice", body, files)
    name = digest(pdf).removeprefix("sha-256:")
    assert [p.name for p in pair.stored_objects("tj")].count(name) == 1


def _large_dataset() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A monthly dataset of 28,800 observations (about 5 MB of JSON): over the 1 MiB
    message limit."""
    periods = [f"{year}-{month:02d}" for year in range(2000, 2025) for month in range(1, 13)]
    partners = ["UZB", "TJK", "KGZ", "RUS", "CHN", "TUR", "AFG", "IRN"]
    indicators = ["ENTRY", "EXIT", "WORK_PERMIT", "EXPELLED"]
    sexes = ["M", "F", "_T"]
    body = example_body("statistics.migration-flows")
    del body["observations"]
    body["structure"]["dimensions"].update(
        FREQ=["M"], TIME_PERIOD=periods, COUNTERPART_AREA=partners, INDICATOR=indicators,
        SEX=sexes,
    )  # fmt: skip
    observations = [
        {
            "FREQ": "M",
            "REF_AREA": "KAZ",
            "COUNTERPART_AREA": area,
            "INDICATOR": indicator,
            "SEX": sex,
            "AGE": "_T",
            "TIME_PERIOD": period,
            "OBS_VALUE": 1000 + n % 977,
            "UNIT_MEASURE": "PS",
            "OBS_STATUS": "A",
            "CONF_STATUS": "F",
        }
        for n, (period, area, indicator, sex) in enumerate(
            (p, a, i, s) for p in periods for a in partners for i in indicators for s in sexes
        )
    ]
    return body, observations


def test_a_dataset_larger_than_the_message_limit_travels_as_its_attachment(pair: Pair) -> None:
    body, observations = _large_dataset()
    data = json.dumps(observations).encode()
    assert len(data) > 1024 * 1024
    inline = pair.kz.send(pair.tj.party, "statistics.migration-flows",
                          {**body, "observations": observations})  # fmt: skip
    assert (inline.status_code, inline.json()["code"]) == (413, "too-large")
    named, files = _with_files(pair, (data, "application/json", "observations.json"))
    _round_trip(pair, "statistics.migration-flows", {**body, "attachments": named}, files)
