"""Console sessions end on the server: a cookie copied before its holder signed out,
or whose token left the configuration, is refused by every process of the node."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.audit import entries as ev
from service.clock import FixedClock
from service.db.tables import console_sessions
from tests.console.conftest import console_node, csrf_of, node_of, sign_in
from tests.console.test_console_http import audit_rows
from tests.support.nodes import AUDITOR_TOKEN, OPERATOR_TOKEN, Federation

COOKIE = "migex_console"


def signed_in_cookie(client: TestClient, token: str) -> str:
    sign_in(client, token)
    value = client.cookies.get(COOKIE)
    assert value is not None
    return value


def with_cookie(client: TestClient, value: str) -> TestClient:
    client.cookies.clear()
    client.cookies.set(COOKIE, value, path="/console")
    return client


def opens(client: TestClient, path: str = "/console/overview") -> bool:
    resp = client.get(path, follow_redirects=False)
    if resp.status_code == 303:
        assert resp.headers["location"].startswith("/console/sign-in")
        return False
    assert resp.status_code == 200, resp.text
    return True


def sign_out(client: TestClient, path: str = "/console/overview") -> None:
    resp = client.post(
        "/console/sign-out", data={"csrf": csrf_of(client.get(path).text)}, follow_redirects=False
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == "/console/sign-in"


def session_rows(client: TestClient) -> int:
    with node_of(client.app).engines.reader.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(console_sessions)).scalar_one())


def test_a_cookie_copied_before_sign_out_is_refused_after_it(
    console_client: TestClient,
) -> None:
    copied = signed_in_cookie(console_client, AUDITOR_TOKEN)
    assert opens(console_client)
    sign_out(console_client)
    assert not opens(with_cookie(console_client, copied))
    assert not opens(console_client, "/console/statistics")
    assert session_rows(console_client) == 0


def test_sign_out_on_one_process_holds_on_another(
    federation: Federation, clock: FixedClock
) -> None:
    with (
        TestClient(console_node(federation, clock)) as first,
        TestClient(console_node(federation, clock)) as second,
    ):
        copied = signed_in_cookie(first, OPERATOR_TOKEN)
        assert opens(with_cookie(second, copied), "/console/outbox")
        sign_out(first, "/console/outbox")
        assert not opens(with_cookie(second, copied), "/console/outbox")


def test_sign_in_and_sign_out_are_audited_with_the_token_name(
    console_client: TestClient,
) -> None:
    signed_in_cookie(console_client, OPERATOR_TOKEN)
    sign_out(console_client, "/console/outbox")
    wanted = {"token": "operator-1", "role": "operator"}
    assert [r["detail"] for r in audit_rows(console_client, ev.CONSOLE_SIGN_IN)] == [wanted]
    assert [r["detail"] for r in audit_rows(console_client, ev.CONSOLE_SIGN_OUT)] == [wanted]


def test_signing_in_again_ends_the_session_signed_in_before(
    console_client: TestClient,
) -> None:
    first = signed_in_cookie(console_client, AUDITOR_TOKEN)
    second = signed_in_cookie(console_client, AUDITOR_TOKEN)
    assert first != second
    assert opens(with_cookie(console_client, second))
    assert not opens(with_cookie(console_client, first))
    assert session_rows(console_client) == 1


def test_expired_sessions_are_deleted_at_the_next_sign_in(
    console_client: TestClient, clock: FixedClock
) -> None:
    signed_in_cookie(console_client, AUDITOR_TOKEN)
    console_client.cookies.clear()
    signed_in_cookie(console_client, OPERATOR_TOKEN)
    assert session_rows(console_client) == 2
    clock.advance(30 * 60)
    console_client.cookies.clear()
    signed_in_cookie(console_client, OPERATOR_TOKEN)
    assert session_rows(console_client) == 1


def _without_auditor(cfg: dict[str, Any]) -> None:
    cfg["tokens"] = [t for t in cfg["tokens"] if t["role"] != "auditor"]


def test_removing_a_token_ends_its_sessions_for_good(
    federation: Federation, clock: FixedClock
) -> None:
    with TestClient(console_node(federation, clock)) as client:
        auditor = signed_in_cookie(client, AUDITOR_TOKEN)
        client.cookies.clear()
        operator = signed_in_cookie(client, OPERATOR_TOKEN)
    federation.mutate = _without_auditor
    with TestClient(console_node(federation, clock)) as client:
        assert not opens(with_cookie(client, auditor))
        assert opens(with_cookie(client, operator), "/console/outbox")
    federation.mutate = None  # the same token configured again: its old sessions stay ended
    with TestClient(console_node(federation, clock)) as client:
        assert not opens(with_cookie(client, auditor))
        assert opens(with_cookie(client, operator), "/console/outbox")
