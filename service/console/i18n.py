"""The console's languages: gettext catalogs under locale/, read with Babel.

`locale/<lang>/LC_MESSAGES/console.po` is the source; `console.mo` next to it is built
from it by `python -m service.console.i18n compile` and a test checks the two agree.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from babel.core import Locale, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "console"
LANGUAGES = ("en", "ru")
DEFAULT = "en"


def N_(message: str) -> str:
    """Marks a message the templates translate from a variable (extracted, not translated)."""
    return message


# Values the templates pass through `_()`: roles, delivery states, key states.
DYNAMIC_MESSAGES = (
    N_("auditor"),
    N_("operator"),
    N_("failed"),
    N_("pending"),
    N_("delivered"),
    N_("active"),
    N_("published"),
    N_("pinned"),
    N_("revoked"),
    N_("retired"),
)


@cache
def translations(lang: str) -> NullTranslations:
    if lang == DEFAULT:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [lang], domain=DOMAIN)


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's language if it is one of ours, else the browser's, else English."""
    if cookie in LANGUAGES:
        return cookie
    preferred = []
    for part in (accept_language or "").split(","):
        tag = part.split(";", 1)[0].strip().replace("-", "_")
        if tag:
            preferred.append(tag)
    found = negotiate_locale(preferred, list(LANGUAGES)) if preferred else None
    return found or DEFAULT


def locale(lang: str) -> Locale:
    return Locale.parse(lang)


def compile_catalogs() -> list[Path]:
    """Write console.mo next to every console.po; returns the files written."""
    written = []
    for po in sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        with po.open("rb") as f:
            catalog = read_po(f)
        target = po.with_suffix(".mo")
        with target.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)
        written.append(target)
    return written


if __name__ == "__main__":  # pragma: no cover - build step
    if sys.argv[1:] != ["compile"]:
        raise SystemExit("usage: python -m service.console.i18n compile")
    for path in compile_catalogs():
        print(path)
