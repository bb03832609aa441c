"""The console's frame: state, rendering, sessions, CSRF, security headers, sign-in.

Pages live in `auditor.py`, `operator.py` and `statistics.py`; each takes its caller from
`AuditorPage`, `OperatorPage` or `AnyPage` below, which turn a missing or expired session
into a redirect to the sign-in page and a wrong role into the 403 page.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.deps import NodeDep, read
from service.api.tokens import Principal
from service.clock import rfc3339
from service.console import i18n, sessionstore
from service.console.session import (
    COOKIE,
    LANG_COOKIE,
    PRE_COOKIE,
    Session,
    SessionCodec,
    derive_secret,
    new_pre_session_id,
    token_fingerprint,
)
from service.protocol.problems import Problem
from service.runtime import Node

log = logging.getLogger("migex.console")

PREFIX = "/console"
STATIC = Path(__file__).parent / "static"
CONSOLE_ROLES = ("auditor", "operator")
MAX_FORM_BYTES = 64 * 1024

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    # "same-origin", not "no-referrer": with no referrer, Chromium sends `Origin: null`
    # on the console's own form posts, and the origin check below needs the real one.
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


@dataclass(frozen=True)
class ConsoleState:
    """Built once in the lifespan from the node."""

    codec: SessionCodec
    env: Environment
    # token name -> (role, fingerprint of the configured digest)
    accounts: Mapping[str, tuple[str, str]]

    @classmethod
    def from_node(cls, node: Node) -> ConsoleState:
        env = Environment(
            loader=PackageLoader("service.console", "templates"),
            autoescape=select_autoescape(("html", "svg")),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["when"] = _when
        env.filters["qs"] = _query_string
        accounts = {t.name: (t.role, token_fingerprint(t.sha256)) for t in node.config.tokens}
        try:
            node.committer.run_sync(sessionstore.CloseUnconfigured(accounts))
        except Problem as problem:
            # The database is down or not migrated yet: the node starts all the same
            # (/v1/ready says why); each request still checks its session's token.
            log.warning("console sessions of removed tokens not closed: %s", problem.detail)
        return cls(SessionCodec(derive_secret(node.audit_key)), env, accounts)


def _when(ts: float | None) -> str:
    """A Unix time as "2026-11-18 14:13:20Z"."""
    if ts is None:
        return "—"
    return rfc3339(ts)[:19].replace("T", " ") + "Z"


def _query_string(params: Mapping[str, Any]) -> str:
    return urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})


class SignInRequired(Exception):
    """No valid session: the browser is sent to the sign-in page."""


class Refused(Exception):
    """A console request refused with an HTML page (wrong role, CSRF, bad input)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


# --- state, language, rendering --------------------------------------------------


def console_state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def language(request: Request) -> str:
    return i18n.choose(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    who: Principal | None = None,
) -> HTMLResponse:
    state = console_state(request)
    lang = language(request)
    tr = i18n.translations(lang)
    session = current_session(request)
    if session is not None:
        csrf = state.codec.csrf_token(session.sid)
    else:
        csrf = state.codec.csrf_token("pre:" + request.state.pre_sid) if _has_pre(request) else ""
    html = state.env.get_template(template).render(
        {
            "_": tr.gettext,
            "ngettext": tr.ngettext,
            "lang": lang,
            "languages": i18n.LANGUAGES,
            "who": who,
            "csrf": csrf,
            "path": request.url.path,
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            **(context or {}),
        }
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["cache-control"] = "no-store"
    if session is None and _has_pre(request) and request.state.pre_new:
        _set_cookie(request, response, PRE_COOKIE, request.state.pre_sid, max_age=3600)
    return response


def _has_pre(request: Request) -> bool:
    return hasattr(request.state, "pre_sid")


def _secure(request: Request) -> bool:
    node: Node = request.app.state.node
    return node.config.console.secure_cookies == "always" or request.url.scheme == "https"


def _set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


# --- sessions and roles ---------------------------------------------------------


def current_session(request: Request) -> Session | None:
    """The session `load_session` found for this request (None before it ran)."""
    session: Session | None = getattr(request.state, "console_session", None)
    return session


async def load_session(request: Request) -> Session | None:
    """The request's session: a cookie signed by this node, not expired, of a token
    still configured with the same role and digest, whose row is still in the database
    (not signed out, on any process). One primary-key lookup; cached on the request."""
    if hasattr(request.state, "console_session"):
        return current_session(request)
    state = console_state(request)
    node: Node = request.app.state.node
    now = node.clock()
    session = state.codec.read(request.cookies.get(COOKIE), now=now)
    if session is not None:
        account = state.accounts.get(session.name)
        # The token was removed, moved to another role or replaced: the session ends.
        if account is None or account != (session.role, session.fingerprint):
            session = None
    if session is not None:
        found = session
        if not await read(node, lambda conn: sessionstore.is_open(conn, found, now)):
            session = None
    request.state.console_session = session
    return session


async def _principal(request: Request) -> Principal:
    session = await load_session(request)
    if session is None:
        raise SignInRequired
    return Principal(session.name, session.role)  # type: ignore[arg-type]


def _require(*roles: str) -> Any:
    async def dependency(request: Request) -> Principal:
        who = await _principal(request)
        if who.role not in roles:
            raise Refused(
                403,
                "wrong-role",
                " or ".join(roles),
            )
        return who

    return Depends(dependency)


AuditorPage = Annotated[Principal, _require("auditor")]
OperatorPage = Annotated[Principal, _require("operator")]
AnyPage = Annotated[Principal, _require(*CONSOLE_ROLES)]


async def checked_form(request: Request) -> FormData:
    """The submitted form of a state-changing request, after the CSRF checks: a
    same-origin request (Sec-Fetch-Site, Origin) carrying the token of its own session."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise Refused(403, "csrf", "cross-site")
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Refused(403, "csrf", "origin")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        raise Refused(413, "too-large", str(MAX_FORM_BYTES))
    form = await request.form(max_files=0, max_fields=1000)
    token = form.get("csrf")
    state = console_state(request)
    session = await load_session(request)
    if session is not None:
        sid = session.sid
    else:
        pre = request.cookies.get(PRE_COOKIE)
        sid = "pre:" + pre if pre else ""
    if not sid or not isinstance(token, str) or not state.codec.check_csrf(sid, token):
        raise Refused(403, "csrf", "token")
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def home_of(role: str) -> str:
    return f"{PREFIX}/overview" if role == "auditor" else f"{PREFIX}/outbox"


def safe_next(value: object, role: str) -> str:
    """A redirect target inside the console, never another site."""
    if isinstance(value, str) and value.startswith(PREFIX + "/") and "//" not in value:
        if "\\" not in value and not any(ord(c) < 32 for c in value):
            return value
    return home_of(role)


# --- routes of the frame ----------------------------------------------------------

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("")
async def index(request: Request) -> Response:
    session = await load_session(request)
    if session is None:
        return RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    return RedirectResponse(home_of(session.role), status_code=303)


def _pre_session(request: Request) -> None:
    pre = request.cookies.get(PRE_COOKIE)
    request.state.pre_new = not pre or len(pre) > 64
    request.state.pre_sid = new_pre_session_id() if request.state.pre_new else pre


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    await load_session(request)
    _pre_session(request)
    return render(request, "sign_in.html", {"next": request.query_params.get("next", "")})


@router.post("/sign-in")
async def sign_in(request: Request, node: NodeDep, form: CheckedForm) -> Response:
    state = console_state(request)
    token = form.get("token")
    principal = node.tokens.authenticate(token.strip()) if isinstance(token, str) else None
    _pre_session(request)
    if principal is None:
        return render(
            request, "sign_in.html", {"error": "invalid", "next": form.get("next", "")}, status=401
        )
    if principal.role not in CONSOLE_ROLES:
        raise Refused(403, "wrong-role", " or ".join(CONSOLE_ROLES))
    role, fingerprint = state.accounts[principal.name]
    minutes = node.config.console.session_minutes
    now = node.clock()
    cookie = state.codec.issue(principal.name, role, fingerprint, now=now, minutes=minutes)
    session = state.codec.read(cookie, now=now)
    assert session is not None  # noqa: S101 - just issued
    replaced = current_session(request)
    if replaced is not None:  # signing in again ends the session signed in before
        await node.committer.run(sessionstore.CloseSession(replaced))
    await node.committer.run(sessionstore.OpenSession(session))
    response = RedirectResponse(safe_next(form.get("next"), role), status_code=303)
    _set_cookie(request, response, COOKIE, cookie, max_age=minutes * 60)
    response.delete_cookie(PRE_COOKIE, path=PREFIX)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, node: NodeDep, form: CheckedForm) -> Response:
    session = current_session(request)
    if session is not None:
        await node.committer.run(sessionstore.CloseSession(session))
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


@router.post("/language")
async def set_language(request: Request, form: CheckedForm) -> Response:
    lang = form.get("lang")
    if lang not in i18n.LANGUAGES:
        raise Refused(422, "invalid-parameters", "lang")
    session = current_session(request)
    target = safe_next(form.get("next"), session.role if session else "auditor")
    if session is None:
        target = f"{PREFIX}/sign-in"
    response = RedirectResponse(target, status_code=303)
    _set_cookie(request, response, LANG_COOKIE, str(lang), max_age=365 * 86400)
    return response


# --- error pages and headers ------------------------------------------------------


async def _on_sign_in_required(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = PREFIX
    return RedirectResponse(
        f"{PREFIX}/sign-in?{urllib.parse.urlencode({'next': target})}", status_code=303
    )


async def _on_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)  # noqa: S101 - registered for Refused only
    session = current_session(request)
    who = None if session is None else Principal(session.name, session.role)  # type: ignore[arg-type]
    return render(
        request,
        "refused.html",
        {"reason": exc.title, "detail": exc.detail},
        status=exc.status,
        who=who,
    )


class SecurityHeaders:
    """Adds the console's Content-Security-Policy and friends to every /console response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """Mount the console's pages and static files on the node's application."""
    from service.console import auditor, operator, statistics

    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(SignInRequired, _on_sign_in_required)
    app.add_exception_handler(Refused, _on_refused)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")
    for pages in (router, auditor.router, operator.router, statistics.router):
        app.include_router(pages)
