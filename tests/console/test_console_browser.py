"""The console in a real headless Chromium (Debian's `chromium`, driven by Playwright).

Each test serves a node with some history on a free loopback port. Screenshots of every
page go to MIGEX_SCREENSHOTS_DIR when it is set (docs/console.md is made that way), else
to the test's temporary directory.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from service.clock import FixedClock
from service.db.tables import audit_entries, messages, outbox
from tests.console.conftest import GARBAGE, History, LiveNode, console_node, populate
from tests.support.nodes import AUDITOR_TOKEN, OPERATOR_TOKEN, Federation

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
VIEWPORT = {"width": 1100, "height": 760}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        # Root in a container has no user namespaces for Chromium's sandbox.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield launched
        launched.close()


class Live:
    def __init__(self, server: LiveNode, history: History) -> None:
        self.server = server
        self.url = server.url
        self.history = history


@pytest.fixture
def live(federation: Federation, clock: FixedClock) -> Iterator[Live]:
    with LiveNode(console_node(federation, clock)) as server:
        with httpx.Client(base_url=server.url) as http:
            history = populate(http, federation)
        assert server.deliver() == 2
        yield Live(server, history)


class Watched:
    """A page that keeps every console message, page error and CSP violation."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on(
            "console",
            lambda m: (
                self.problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))


@pytest.fixture
def page(browser: Any) -> Iterator[Watched]:
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    watched = Watched(context.new_page())
    yield watched
    context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = os.environ.get("MIGEX_SCREENSHOTS_DIR")
    path = Path(target) if target else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sign_in(page: Any, live: Live, token: str) -> None:
    page.goto(f"{live.url}/console")
    page.get_by_label("Token").fill(token)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def proof_result(page: Any) -> Any:
    result = page.locator("#proof-result[data-verified]")
    result.wait_for()
    return result


@pytest.mark.parametrize(
    ("token", "name", "home", "heading"),
    [
        (AUDITOR_TOKEN, "auditor-1", "/console/overview", "Overview"),
        (OPERATOR_TOKEN, "operator-1", "/console/outbox", "Outbox"),
    ],
)
def test_sign_in_as_each_role(
    page: Watched, live: Live, token: str, name: str, home: str, heading: str
) -> None:
    sign_in(page.page, live, token)
    assert page.page.url == live.url + home
    assert page.page.locator("h1").inner_text() == heading
    assert name in page.page.locator(".who").inner_text()
    assert page.problems == []


def test_search_and_page_the_log(page: Watched, live: Live) -> None:
    p = page.page
    sign_in(p, live, AUDITOR_TOKEN)
    p.get_by_role("link", name="Log").click()
    p.get_by_label("Event").fill("message.refused")
    p.get_by_role("button", name="Search").click()
    rows = p.locator("table.entries tbody tr")
    assert rows.count() == 50
    p.get_by_role("link", name="Older entries").click()
    assert rows.count() == GARBAGE - 50
    assert p.get_by_role("link", name="Older entries").count() == 0
    assert page.problems == []


def open_entry(p: Any, live: Live, message_id: str) -> None:
    p.goto(f"{live.url}/console/log?message_id={message_id}")
    p.locator("table.entries tbody a").first.click()


def test_an_entry_shows_its_proof_verified(page: Watched, live: Live) -> None:
    p = page.page
    sign_in(p, live, AUDITOR_TOKEN)
    open_entry(p, live, live.history.received[1])
    result = proof_result(p)
    assert result.get_attribute("data-verified") == "yes"
    assert result.inner_text().startswith("Verified")
    assert page.problems == []


def test_a_tampered_entry_fails_its_proof_in_the_page(page: Watched, live: Live) -> None:
    p = page.page
    sign_in(p, live, AUDITOR_TOKEN)
    open_entry(p, live, live.history.received[1])
    assert proof_result(p).get_attribute("data-verified") == "yes"
    index = int(p.locator("h1").inner_text().split()[-1])
    t = audit_entries.c
    with live.server.node.engines.writer.begin() as conn:
        leaf = bytes(conn.execute(select(t.leaf_data).where(t.idx == index)).scalar_one())
        forged = leaf.replace(b'"accepted"', b'"refused"')
        assert forged != leaf
        conn.execute(update(audit_entries).where(t.idx == index).values(leaf_data=forged))
    p.reload()
    result = proof_result(p)
    assert result.get_attribute("data-verified") == "no"
    assert result.inner_text().startswith("NOT verified")


def test_a_checkpoint_not_signed_by_the_node_fails_in_the_page(page: Watched, live: Live) -> None:
    p = page.page
    sign_in(p, live, AUDITOR_TOKEN)
    open_entry(p, live, live.history.received[1])
    assert proof_result(p).get_attribute("data-verified") == "yes"

    # Every request issues a fresh checkpoint here (interval 0), so the forgery is made
    # on the way to the browser: the page's checkpoint names another root.
    def forge(route: Any) -> None:
        html = route.fetch().text()
        forged = re.sub(
            r'(data-note="[^\n"]*\n[0-9]+\n)[A-Za-z0-9+/=]+', r"\g<1>" + "A" * 43 + "=", html
        )
        assert forged != html
        route.fulfill(body=forged, content_type="text/html; charset=utf-8")

    p.route(f"{live.url}/console/log/*", forge)
    p.reload()
    result = proof_result(p)
    assert result.get_attribute("data-verified") == "no"
    assert "not signed by the verifier key" in result.inner_text()


def outbox_states(live: Live) -> dict[str, str]:
    m = messages.c
    with live.server.node.engines.reader.connect() as conn:
        rows = conn.execute(
            select(m.message_id, outbox.c.state).join(outbox, outbox.c.message_pk == m.pk)
        )
        return {r.message_id: r.state for r in rows}


def test_resend_a_failed_message_as_operator(page: Watched, live: Live) -> None:
    p = page.page
    sign_in(p, live, OPERATOR_TOKEN)
    first, second = live.history.failed
    p.get_by_label(f"Select {first}").check()
    p.get_by_role("button", name="Resend the selected messages").click()
    assert "queued for delivery again" in p.locator(".results").inner_text()
    assert outbox_states(live) == {first: "pending", second: "failed"}
    # One message, from its own page.
    p.goto(f"{live.url}/console/outbox/{second}")
    p.get_by_role("button", name="Resend this message").click()
    assert outbox_states(live)[second] == "pending"
    assert page.problems == []


def test_a_cross_site_post_without_the_csrf_token_is_refused(page: Watched, live: Live) -> None:
    p = page.page
    sign_in(p, live, OPERATOR_TOKEN)
    target = live.history.failed[0]
    attacker = (
        f'<form method="post" action="{live.url}/console/outbox/resend">'
        f'<input type="hidden" name="id" value="{target}">'
        '<button type="submit">win a prize</button></form>'
    )
    p.route(
        "http://attacker.test/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=attacker),
    )
    p.goto("http://attacker.test/")
    with p.expect_navigation():
        p.get_by_role("button", name="win a prize").click()
    assert "/console/sign-in" in p.url or p.locator("h1").inner_text().startswith("403")
    assert outbox_states(live)[target] == "failed"


def test_the_language_switch(page: Watched, live: Live) -> None:
    p = page.page
    sign_in(p, live, AUDITOR_TOKEN)
    p.get_by_label("Language").select_option("ru")
    p.get_by_role("button", name="Apply").click()
    assert p.locator("html").get_attribute("lang") == "ru"
    assert p.locator("h1").inner_text() == "Обзор"
    p.get_by_role("link", name="Журнал").click()
    assert p.locator("h1").inner_text() == "Журнал аудита"
    assert page.problems == []


def visit(page: Watched, url: str, shots: Path, name: str, *, status: int = 200) -> None:
    response = page.page.goto(url)
    assert response.status == status, name
    page.page.wait_for_load_state("networkidle")
    if page.page.locator("#proof").count():
        proof_result(page.page)
    page.page.screenshot(path=str(shots / f"{name}.png"))
    # Chromium reports the status of a refused page itself as a console error.
    expected = f"status of {status}" if status != 200 else None
    problems = [p for p in page.problems if expected is None or expected not in p]
    assert problems == [], f"{name}: {problems}"
    page.problems.clear()


def test_no_csp_violation_or_console_error_on_any_page(
    browser: Any, live: Live, shots: Path
) -> None:
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    page = Watched(context.new_page())
    u = live.url
    visit(page, f"{u}/console/sign-in", shots, "sign-in")
    sign_in(page.page, live, AUDITOR_TOKEN)
    accepted = live.history.received[0]
    page.page.goto(f"{u}/console/log?message_id={accepted}")
    index = page.page.locator("table.entries tbody a").first.inner_text()
    for name, path in [
        ("overview", "/console/overview"),
        ("log", "/console/log"),
        ("entry", f"/console/log/{index}"),
        ("checkpoints", "/console/checkpoints?from=3&to=20"),
        ("statistics", "/console/statistics"),
        ("dataset", f"/console/statistics/UZ:MIA/{live.history.dataset}"),
    ]:
        visit(page, u + path, shots, name)
    visit(page, f"{u}/console/outbox", shots, "forbidden", status=403)
    context.clear_cookies()
    sign_in(page.page, live, OPERATOR_TOKEN)
    for name, path in [
        ("outbox", "/console/outbox?state=failed"),
        ("outbox-message", f"/console/outbox/{live.history.failed[0]}"),
        ("inbox", "/console/inbox"),
        ("partners", "/console/partners"),
    ]:
        visit(page, u + path, shots, name)
    context.close()


def test_a_cookie_copied_before_sign_out_is_refused_after_it(
    browser: Any, page: Watched, live: Live
) -> None:
    p = page.page
    sign_in(p, live, AUDITOR_TOKEN)
    copied = [c for c in p.context.cookies() if c["name"] == "migex_console"]
    assert len(copied) == 1
    with p.expect_navigation():
        p.get_by_role("button", name="Sign out").click()
    assert p.url == f"{live.url}/console/sign-in"
    other = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    try:
        other.add_cookies(copied)
        stolen = other.new_page()
        stolen.goto(f"{live.url}/console/overview")
        assert stolen.url.startswith(f"{live.url}/console/sign-in")
        assert stolen.get_by_label("Token").count() == 1
    finally:
        other.close()
    assert page.problems == []


def test_the_keyboard_reaches_every_control_with_a_visible_focus(page: Watched, live: Live) -> None:
    p = page.page
    sign_in(p, live, AUDITOR_TOKEN)
    p.goto(f"{live.url}/console/log")
    p.keyboard.press("Tab")
    skip = p.locator("a.skip")
    assert skip.evaluate("e => e === document.activeElement")
    box = skip.bounding_box()
    assert box is not None
    assert box["x"] >= 0  # moved into view when focused
    controls = p.locator("main input:not([type=hidden]), main button, main select")
    wanted = {
        controls.nth(i).evaluate("e => e.id || e.textContent") for i in range(controls.count())
    }
    reached: set[str] = set()
    for _ in range(60):
        p.keyboard.press("Tab")
        focused = p.evaluate(
            """() => {
                const e = document.activeElement;
                const s = getComputedStyle(e);
                return [e.id || e.textContent, s.outlineStyle, s.outlineWidth];
            }"""
        )
        name, style, width = focused
        assert style != "none", f"no visible focus on {name}"
        assert width != "0px", f"no visible focus on {name}"
        reached.add(name)
        if wanted <= reached:
            break
    assert wanted <= reached, wanted - reached
    assert page.problems == []
