"""Every control of every console page has a label, in English and in Russian."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from tests.console.conftest import History, sign_in
from tests.support.nodes import AUDITOR_TOKEN, OPERATOR_TOKEN

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class Controls(HTMLParser):
    """The page's form controls and the ids its labels name."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labelled: set[str] = set()
        self._label_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label":
            self._label_depth += 1
            if a.get("for"):
                self.labelled.add(str(a["for"]))
        elif tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append({**a, "_tag": tag, "_wrapped": "1" if self._label_depth else None})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label_depth -= 1


def unlabelled(html: str) -> list[dict[str, str | None]]:
    parser = Controls()
    parser.feed(html)
    return [
        c
        for c in parser.controls
        if not (c.get("aria-label") or c["_wrapped"] or (c.get("id") in parser.labelled))
    ]


@SQLITE_ONLY
@pytest.mark.parametrize("lang", ["en", "ru"])
def test_every_control_of_every_page_has_a_label(
    console_client: TestClient, history: History, lang: str
) -> None:
    console_client.cookies.set("migex_console_lang", lang, path="/console")
    pages = {
        "/console/sign-in": None,
        "/console/overview": AUDITOR_TOKEN,
        "/console/log": AUDITOR_TOKEN,
        "/console/log/3": AUDITOR_TOKEN,
        "/console/checkpoints": AUDITOR_TOKEN,
        "/console/statistics": AUDITOR_TOKEN,
        f"/console/statistics/UZ:MIA/{history.dataset}": AUDITOR_TOKEN,
        "/console/outbox?state=failed": OPERATOR_TOKEN,
        f"/console/outbox/{history.failed[0]}": OPERATOR_TOKEN,
        "/console/inbox": OPERATOR_TOKEN,
        "/console/partners": OPERATOR_TOKEN,
    }
    seen = 0
    for path, token in pages.items():
        if token is not None:
            sign_in(console_client, token)
        resp = console_client.get(path)
        assert resp.status_code == 200, path
        assert f'<html lang="{lang}"' in resp.text
        parser = Controls()
        parser.feed(resp.text)
        seen += len(parser.controls)
        assert unlabelled(resp.text) == [], path
    assert seen > 20  # the language select on each page, the filters, the checkboxes
