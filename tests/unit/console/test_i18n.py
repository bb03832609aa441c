"""The console's catalogs: every message of the templates translated, and the shipped
.mo built from the .po."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from service.console import i18n

PACKAGE = Path(i18n.__file__).parent
BABEL_CFG = PACKAGE / "babel.cfg"


def extracted() -> set[str]:
    from babel.messages.frontend import parse_mapping_cfg

    with BABEL_CFG.open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(PACKAGE), method_map, options_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def catalog(lang: str) -> dict[str, str]:
    with (PACKAGE / "locale" / lang / "LC_MESSAGES" / "console.po").open("rb") as f:
        return {m.id: m.string for m in read_po(f) if m.id and not m.fuzzy}


@pytest.mark.parametrize("lang", [lang for lang in i18n.LANGUAGES if lang != i18n.DEFAULT])
def test_every_console_message_is_translated(lang: str) -> None:
    messages = extracted()
    assert len(messages) > 100
    translated = catalog(lang)
    missing = sorted(m for m in messages if not translated.get(m))
    assert missing == []


@pytest.mark.parametrize("lang", [lang for lang in i18n.LANGUAGES if lang != i18n.DEFAULT])
def test_the_shipped_mo_is_built_from_the_po(lang: str) -> None:
    folder = PACKAGE / "locale" / lang / "LC_MESSAGES"
    with (folder / "console.po").open("rb") as f:
        built = io.BytesIO()
        write_mo(built, read_po(f), use_fuzzy=False)
    shipped = (folder / "console.mo").read_bytes()
    assert shipped == built.getvalue(), "run: python -m service.console.i18n compile"
    with (folder / "console.mo").open("rb") as f:
        assert {m.id: m.string for m in read_mo(f) if m.id} == catalog(lang)


@pytest.mark.parametrize(
    ("cookie", "accept", "chosen"),
    [
        ("ru", "en", "ru"),
        (None, "ru-RU,ru;q=0.9,en;q=0.5", "ru"),
        (None, "de-DE,de;q=0.9", "en"),
        ("xx", None, "en"),
        (None, None, "en"),
    ],
)
def test_the_language_comes_from_the_cookie_then_the_browser(
    cookie: str | None, accept: str | None, chosen: str
) -> None:
    assert i18n.choose(cookie, accept) == chosen


def test_russian_is_served_from_the_catalog() -> None:
    assert i18n.translations("ru").gettext("Sign in") == "Войти"
