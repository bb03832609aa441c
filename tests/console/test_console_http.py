"""The console over HTTP: sign-in, cookies, roles, CSRF, headers, audit, operator actions."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.cookies import SimpleCookie

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from service.audit import entries as ev
from service.clock import FixedClock
from service.console.web import CSP
from service.db.tables import audit_entries, checkpoints, outbox
from tests.api.test_witness_api import URL as WITNESS_URL
from tests.api.test_witness_api import UZ_LOG, Mutate, as_witness
from tests.console.conftest import (
    History,
    console_node,
    csrf_of,
    node_of,
    sign_in,
)
from tests.support.nodes import (
    AUDITOR_TOKEN,
    CLIENT_TOKEN,
    OPERATOR_TOKEN,
    Federation,
    example_body,
)
from tests.support.tlog import MemoryLog
from tests.unit.console.test_sdmxcsv import read as read_sdmx_csv

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

AUDITOR_PAGES = ["/console/overview", "/console/log", "/console/checkpoints"]
OPERATOR_PAGES = ["/console/outbox", "/console/inbox", "/console/partners"]


def session_cookie(client: TestClient, token: str) -> SimpleCookie:
    page = client.get("/console/sign-in")
    resp = client.post(
        "/console/sign-in",
        data={"token": token, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    cookie: SimpleCookie = SimpleCookie()
    for header in resp.headers.get_list("set-cookie"):
        cookie.load(header)
    return cookie


def audit_rows(client: TestClient, event: str) -> list[dict[str, object]]:
    with node_of(client.app).engines.reader.connect() as conn:
        rows = conn.execute(
            select(audit_entries.c.leaf_data).where(audit_entries.c.event == event)
        ).all()
    return [json.loads(bytes(r.leaf_data)) for r in rows]


def outbox_state(client: TestClient, message_id: str) -> str:
    return {r.message_id: r.state for r in _outbox_rows(client)}[message_id]


def _outbox_rows(client: TestClient) -> list[object]:
    from service.db.tables import messages

    with node_of(client.app).engines.reader.connect() as conn:
        return list(
            conn.execute(
                select(messages.c.message_id, outbox.c.state).join(
                    outbox, outbox.c.message_pk == messages.c.pk
                )
            )
        )


@SQLITE_ONLY
def test_sign_in_sets_an_httponly_strict_expiring_cookie(console_client: TestClient) -> None:
    cookie = session_cookie(console_client, AUDITOR_TOKEN)["migex_console"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "strict"
    assert cookie["path"] == "/console"
    assert cookie["max-age"] == str(30 * 60)
    assert not cookie["secure"]


@SQLITE_ONLY
def test_the_session_cookie_is_secure_over_tls(federation: Federation, clock: FixedClock) -> None:
    with TestClient(console_node(federation, clock), base_url="https://testserver") as client:
        cookie = session_cookie(client, OPERATOR_TOKEN)["migex_console"]
    assert cookie["secure"] is True


@SQLITE_ONLY
def test_the_session_cookie_is_secure_when_configured_always(
    federation: Federation, clock: FixedClock
) -> None:
    federation.overrides = {"console": {"secure_cookies": "always"}}
    with TestClient(console_node(federation, clock)) as client:
        resp = client.get("/console/sign-in")
    cookie: SimpleCookie = SimpleCookie(resp.headers["set-cookie"])
    assert cookie["migex_console_pre"]["secure"] is True


@SQLITE_ONLY
def test_an_invalid_token_is_refused_on_the_sign_in_page(console_client: TestClient) -> None:
    page = console_client.get("/console/sign-in")
    resp = console_client.post(
        "/console/sign-in", data={"token": "wrong", "csrf": csrf_of(page.text)}
    )
    assert resp.status_code == 401
    assert "The token is not valid." in resp.text
    assert "migex_console=" not in resp.headers.get("set-cookie", "")


@SQLITE_ONLY
def test_a_client_token_cannot_sign_in(console_client: TestClient) -> None:
    page = console_client.get("/console/sign-in")
    resp = console_client.post(
        "/console/sign-in", data={"token": CLIENT_TOKEN, "csrf": csrf_of(page.text)}
    )
    assert resp.status_code == 403
    assert "this page is not for your role" in resp.text


@SQLITE_ONLY
def test_sign_in_without_its_csrf_token_is_refused(console_client: TestClient) -> None:
    console_client.get("/console/sign-in")
    resp = console_client.post("/console/sign-in", data={"token": AUDITOR_TOKEN})
    assert resp.status_code == 403
    assert "request refused" in resp.text


@SQLITE_ONLY
@pytest.mark.parametrize("path", AUDITOR_PAGES + OPERATOR_PAGES + ["/console/statistics"])
def test_pages_without_a_session_redirect_to_sign_in(console_client: TestClient, path: str) -> None:
    resp = console_client.get(path, follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/console/sign-in?next=")


@SQLITE_ONLY
@pytest.mark.parametrize("path", OPERATOR_PAGES)
def test_an_auditor_gets_a_403_page_on_operator_pages(
    console_client: TestClient, history: History, path: str
) -> None:
    sign_in(console_client, AUDITOR_TOKEN)
    resp = console_client.get(path)
    assert resp.status_code == 403
    assert resp.headers["content-type"].startswith("text/html")
    assert "This page needs the role: operator." in resp.text
    assert history.failed[0] not in resp.text


@SQLITE_ONLY
@pytest.mark.parametrize("path", [*AUDITOR_PAGES, "/console/log/0", "/console/export"])
def test_an_operator_gets_a_403_page_on_auditor_pages(
    console_client: TestClient, history: History, path: str
) -> None:
    sign_in(console_client, OPERATOR_TOKEN)
    resp = console_client.get(path)
    assert resp.status_code == 403
    assert "This page needs the role: auditor." in resp.text
    assert "leaf" not in resp.text


@SQLITE_ONLY
def test_a_session_expires(console_client: TestClient, clock: FixedClock) -> None:
    sign_in(console_client, AUDITOR_TOKEN)
    assert console_client.get("/console/overview").status_code == 200
    clock.advance(30 * 60)
    resp = console_client.get("/console/overview", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/console/sign-in")


@SQLITE_ONLY
def test_a_forged_session_cookie_is_not_a_session(console_client: TestClient) -> None:
    value = session_cookie(console_client, AUDITOR_TOKEN)["migex_console"].value
    body, _, mac = value.partition(".")
    forged = body.replace("a", "b", 1) + "." + mac
    console_client.cookies.clear()
    console_client.cookies.set("migex_console", forged, path="/console")
    resp = console_client.get("/console/overview", follow_redirects=False)
    assert resp.status_code == 303


@SQLITE_ONLY
@pytest.mark.parametrize(
    "path", ["/console/sign-in", "/console/static/console.css", "/console/static/proof.js"]
)
def test_every_console_response_carries_the_strict_csp(
    console_client: TestClient, path: str
) -> None:
    resp = console_client.get(path)
    assert resp.status_code == 200
    assert resp.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"


@SQLITE_ONLY
def test_the_api_is_left_without_the_console_headers(console_client: TestClient) -> None:
    assert "content-security-policy" not in console_client.get("/v1/health").headers


@SQLITE_ONLY
def test_pages_hold_no_inline_script_or_style(console_client: TestClient, history: History) -> None:
    sign_in(console_client, AUDITOR_TOKEN)
    for path in [*AUDITOR_PAGES, "/console/log/3", "/console/statistics"]:
        html = console_client.get(path).text
        assert "<script>" not in html, path
        assert "style=" not in html, path
        assert "<style" not in html, path
        assert "http://" not in html.replace("http://127.0.0.1:9", ""), path


def test_a_log_search_is_audited_like_the_api_search(
    console_client: TestClient, history: History
) -> None:
    sign_in(console_client, AUDITOR_TOKEN)
    resp = console_client.get(f"/console/log?message_id={history.received[1]}")
    assert resp.status_code == 200
    assert resp.text.count("<td>message.accepted</td>") == 1
    queries = [
        e for e in audit_rows(console_client, ev.AUDIT_QUERY) if e["detail"]["endpoint"] == "search"
    ]
    assert queries[-1]["detail"] == {
        "endpoint": "search",
        "auditor": "auditor-1",
        "via": "console",
        "message_id": history.received[1],
    }


@SQLITE_ONLY
def test_a_malformed_filter_is_shown_on_the_form_not_searched(
    console_client: TestClient, history: History
) -> None:
    sign_in(console_client, AUDITOR_TOKEN)
    before = len(audit_rows(console_client, ev.AUDIT_QUERY))
    resp = console_client.get("/console/log?party=%00&since=yesterday")
    assert resp.status_code == 422
    assert resp.text.count('aria-invalid="true"') == 2
    assert len(audit_rows(console_client, ev.AUDIT_QUERY)) == before


@SQLITE_ONLY
def test_the_log_pages_with_a_cursor(console_client: TestClient, history: History) -> None:
    sign_in(console_client, AUDITOR_TOKEN)
    first = console_client.get("/console/log?event=message.refused")
    assert first.text.count('href="/console/log/') == 50
    assert "cursor=" in first.text
    cursor = first.text.split("cursor=")[1].split('"')[0]
    second = console_client.get(f"/console/log?event=message.refused&cursor={cursor}")
    assert second.text.count('href="/console/log/') == 5


def test_resend_requeues_failed_messages_and_audits_it(
    console_client: TestClient, history: History
) -> None:
    sign_in(console_client, OPERATOR_TOKEN)
    page = console_client.get("/console/outbox?state=failed")
    assert all(i in page.text for i in history.failed)
    resp = console_client.post(
        "/console/outbox/resend",
        data={"csrf": csrf_of(page.text), "id": history.failed},
    )
    assert resp.status_code == 200
    assert resp.text.count("queued for delivery again") == 2
    assert [outbox_state(console_client, i) for i in history.failed] == ["pending", "pending"]
    requeued = audit_rows(console_client, ev.MESSAGE_REQUEUED)
    assert sorted(e["message_id"] for e in requeued) == sorted(history.failed)
    assert {e["detail"]["operator"] for e in requeued} == {"operator-1"}


@SQLITE_ONLY
def test_resend_without_the_csrf_token_changes_nothing(
    console_client: TestClient, history: History
) -> None:
    sign_in(console_client, OPERATOR_TOKEN)
    resp = console_client.post("/console/outbox/resend", data={"id": history.failed[0]})
    assert resp.status_code == 403
    assert outbox_state(console_client, history.failed[0]) == "failed"


@SQLITE_ONLY
def test_a_cross_site_resend_is_refused_even_with_a_token(
    console_client: TestClient, history: History
) -> None:
    sign_in(console_client, OPERATOR_TOKEN)
    token = csrf_of(console_client.get("/console/outbox").text)
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}):
        resp = console_client.post(
            "/console/outbox/resend", data={"csrf": token, "id": history.failed[0]}, headers=headers
        )
        assert resp.status_code == 403
    assert outbox_state(console_client, history.failed[0]) == "failed"


@SQLITE_ONLY
def test_the_csrf_token_of_another_session_is_refused(
    console_client: TestClient, history: History
) -> None:
    sign_in(console_client, OPERATOR_TOKEN)
    other = csrf_of(console_client.get("/console/outbox").text)
    console_client.cookies.clear()
    sign_in(console_client, OPERATOR_TOKEN)
    resp = console_client.post(
        "/console/outbox/resend", data={"csrf": other, "id": history.failed[0]}
    )
    assert resp.status_code == 403


@SQLITE_ONLY
def test_resending_a_message_that_is_not_failed_says_why(
    console_client: TestClient, history: History
) -> None:
    sign_in(console_client, OPERATOR_TOKEN)
    token = csrf_of(console_client.get("/console/outbox").text)
    resp = console_client.post(
        "/console/outbox/resend", data={"csrf": token, "id": history.received[0]}
    )
    assert resp.status_code == 200
    assert f"no outbound message {history.received[0]}" in resp.text


@SQLITE_ONLY
def test_the_outbox_message_page_lists_its_attempts(
    console_client: TestClient, history: History
) -> None:
    sign_in(console_client, OPERATOR_TOKEN)
    resp = console_client.get(f"/console/outbox/{history.failed[0]}")
    assert resp.status_code == 200
    assert "<td>refused</td><td>403</td>" in resp.text


@SQLITE_ONLY
def test_the_partners_page_shows_agreement_states_and_endpoint_health(
    console_client: TestClient, history: History
) -> None:
    sign_in(console_client, OPERATOR_TOKEN)
    html = console_client.get("/console/partners").text
    assert 'class="state-in-force">in force' in html
    assert 'class="state-not-yet">not yet in force' in html
    assert "2026-11-18" in html  # the refused delivery is the last failure


@SQLITE_ONLY
def test_the_language_choice_is_remembered_in_a_cookie(console_client: TestClient) -> None:
    page = console_client.get("/console/sign-in")
    resp = console_client.post(
        "/console/language",
        data={"csrf": csrf_of(page.text), "lang": "ru", "next": "/console/sign-in"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    again = console_client.get("/console/sign-in")
    assert '<html lang="ru">' in again.text
    assert "Вход в консоль" in again.text


@SQLITE_ONLY
def test_the_browser_language_is_the_default(console_client: TestClient) -> None:
    resp = console_client.get("/console/sign-in", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert '<html lang="ru">' in resp.text


@SQLITE_ONLY
def test_sign_in_redirects_only_inside_the_console(console_client: TestClient) -> None:
    page = console_client.get("/console/sign-in")
    resp = console_client.post(
        "/console/sign-in",
        data={"token": AUDITOR_TOKEN, "csrf": csrf_of(page.text), "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert resp.headers["location"] == "/console/overview"


@SQLITE_ONLY
def test_a_received_dataset_downloads_as_sdmx_csv_that_sdmx1_reads(
    console_client: TestClient, history: History
) -> None:
    sign_in(console_client, AUDITOR_TOKEN)
    listing = console_client.get("/console/statistics")
    link = f"/console/statistics/UZ:MIA/{history.dataset}/sdmx.csv"
    assert link in listing.text
    resp = console_client.get(link)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/vnd.sdmx.data+csv")
    [dataset] = read_sdmx_csv(resp.text).data
    body = example_body("statistics.migration-flows")
    assert len(dataset.obs) == len(body["observations"])
    page = console_client.get(f"/console/statistics/UZ:MIA/{history.dataset}")
    assert body["dataset_id"] in page.text


@SQLITE_ONLY
def test_a_disabled_console_is_not_served(federation: Federation, clock: FixedClock) -> None:
    federation.overrides = {"console": {"enabled": False}}
    with TestClient(console_node(federation, clock)) as client:
        assert client.get("/console/sign-in").status_code == 404
        assert client.get("/console/static/console.css").status_code == 404


def test_every_page_answers_on_each_database(console_client: TestClient, history: History) -> None:
    sign_in(console_client, AUDITOR_TOKEN)
    overview = console_client.get("/console/overview")
    assert overview.status_code == 200
    assert "<title>malformed: 55</title>" in overview.text  # refusals by code
    for path in [
        "/console/log?party=UZ:MIA&since=2026-11-18&until=2026-11-19",
        "/console/log/3",
        "/console/checkpoints?from=3&to=10",
        f"/console/statistics/UZ:MIA/{history.dataset}",
    ]:
        assert console_client.get(path).status_code == 200, path
    console_client.cookies.clear()
    sign_in(console_client, OPERATOR_TOKEN)
    for path in [*OPERATOR_PAGES, f"/console/outbox/{history.failed[0]}"]:
        assert console_client.get(path).status_code == 200, path


@SQLITE_ONLY
def test_the_consistency_check_fails_for_an_altered_checkpoint(
    console_client: TestClient, history: History
) -> None:
    sign_in(console_client, AUDITOR_TOKEN)
    c = checkpoints.c
    engines = node_of(console_client.app).engines
    with engines.reader.connect() as conn:
        sizes = sorted({int(s) for s in conn.execute(select(c.size)).scalars()})
    old, new = sizes[2], sizes[-1]
    good = console_client.get(f"/console/checkpoints?from={old}&to={new}")
    assert f"Consistent: the log of {new} entries extends the log of {old} entries" in good.text
    with engines.writer.begin() as conn:
        conn.execute(update(checkpoints).where(c.size == old).values(root=b"\x00" * 32))
    bad = console_client.get(f"/console/checkpoints?from={old}&to={new}")
    assert f"NOT consistent: the proof between {old} and {new} entries does not verify." in bad.text


@SQLITE_ONLY
def test_the_overview_shows_the_logs_this_node_witnesses(
    federation: Federation, client_factory: Callable[[Mutate], TestClient]
) -> None:
    client = client_factory(as_witness(federation))
    private = federation.uz.key.private
    assert isinstance(private, Ed25519PrivateKey)
    uz_log = MemoryLog(UZ_LOG, private)
    assert client.post(WITNESS_URL, content=uz_log.request(0, 5)).status_code == 200
    sign_in(client, AUDITOR_TOKEN)
    html = client.get("/console/overview").text
    assert "This node&#39;s log has no witness policy." in html
    assert '<tr><th scope="row">migex/UZ:MIA</th><td>5</td>' in html
