"""Page routes: sign-in and out, invitation, the signed-in home page per role, and the
officer's Scan page (typed GTIN + serial → the verify service → the verdict)."""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from sqlmodel import Session

from api import principal as roles
from api import users
from api.deps import SESSION_COOKIE
from api.gateway import Gateway
from api.models import Role, UserRole
from api.pages.i18n import LANGUAGES, translations
from api.schemas import VerifyRequest
from api.services.verify import answer_scan
from ledger.errors import BorderLedgerError

router = APIRouter(include_in_schema=False)
TEMPLATES = Path(__file__).parent / "templates"
#: esbuild's output (`make setup`): the bundled ES module, htmx inside, and the stylesheet.
STATIC = Path(__file__).parent / "static"
PRE_CSRF_COOKIE = "bl_csrf"
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,80}$")
_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

#: The big word of each verdict and its tone (colour); the sentence is the gateway's summary.
VERDICT_WORDS: dict[str, tuple[str, str]] = {
    "GENUINE": ("Genuine", "ok"),
    "GENUINE_UNSIGNED": ("Genuine, unsigned", "ok"),
    "GENUINE_DIVERTED": ("Genuine, diverted", "warn"),
    "PENDING": ("Pending", "neutral"),
    "COUNTERFEIT_SUSPECT": ("Potential suspect", "bad"),
    "RECALLED": ("Recalled", "bad"),
    "STOLEN": ("Stolen", "bad"),
    "DECOMMISSIONED": ("Inactive", "warn"),
    "UNVERIFIED": ("Unverified offline", "neutral"),
}
#: Where each organization kind's people land after signing in.
HOME_LINKS: dict[Role, list[tuple[str, str]]] = {
    Role.CUSTOMS: [("/scan", "Scan")],
    Role.ADMIN: [("/scan", "Scan"), ("/docs", "API documentation")],
    Role.RIGHTS_HOLDER: [("/docs", "API documentation")],
    Role.AUDITOR: [("/docs", "API documentation")],
}


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def render(
    request: Request,
    template: str,
    language: str = "en",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A template in `language`, with `_` (gettext) and the page's CSRF token."""
    tr = translations(language)
    html = _env.get_template(template).render(
        _=tr.gettext,
        lang=language,
        languages=LANGUAGES,
        request=request,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def _signed_in(request: Request) -> users.SignedIn | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with Session(_gateway(request).engine, expire_on_commit=False) as session:
        return users.session_for(session, token)


def _to_login(request: Request, ended: bool = False) -> Response:
    """To the sign-in page (htmx: the whole page goes there, not the swapped fragment)."""
    url = "/login" + ("?ended=1" if ended else "")
    response: Response
    if request.headers.get("hx-request") == "true":
        response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if ended:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="lax" if name == SESSION_COOKIE else "strict",
        secure=_gateway(request).settings.secure_cookies,
        path="/",
    )


def _refused_csrf(request: Request, language: str) -> HTMLResponse:
    return render(
        request,
        "error.html",
        language,
        403,
        title="Form refused",
        message="This form has expired or was not sent from this site. Reload the page and "
        "try again.",
    )


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _pre_csrf(request: Request) -> str:
    return request.cookies.get(PRE_CSRF_COOKIE) or secrets.token_urlsafe(32)


# --- sign-in ---------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, ended: bool = False) -> Response:
    if _signed_in(request) is not None:
        return RedirectResponse("/", status_code=303)
    csrf = _pre_csrf(request)
    notice = "Your session has ended. Sign in again." if ended else None
    response = render(request, "login.html", csrf_token=csrf, notice=notice, email="")
    _set_cookie(request, response, PRE_CSRF_COOKIE, csrf)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await _form(request)
    expected = request.cookies.get(PRE_CSRF_COOKIE)
    if not expected or not users.csrf_matches(expected, form.get("csrf_token")):
        return _refused_csrf(request, "en")
    gateway = _gateway(request)
    email = form.get("email", "")[:254]
    try:
        with Session(gateway.engine, expire_on_commit=False) as session:
            user = await asyncio.to_thread(
                users.sign_in, session, gateway.settings, email, form.get("password", "")[:256]
            )
            token, _row = users.start_session(session, gateway.settings, user)
    except users.SignInRefused as exc:
        await asyncio.sleep(users.failure_delay(gateway.settings, exc.failures))
        return render(
            request,
            "login.html",
            status_code=423 if exc.locked else 401,
            csrf_token=expected,
            error=str(exc),
            locked=exc.locked,
            email=email,
        )
    response = RedirectResponse("/", status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, token)
    response.delete_cookie(PRE_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    signed_in = _signed_in(request)
    if signed_in is None:
        return _to_login(request, ended=True)
    form = await _form(request)
    if not users.csrf_matches(signed_in.csrf_token, form.get("csrf_token")):
        return _refused_csrf(request, signed_in.user.language)
    with Session(_gateway(request).engine, expire_on_commit=False) as session:
        users.end_session(session, request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- invitation --------------------------------------------------------------------------


@router.get("/invite", response_class=HTMLResponse, name="invitation_page")
def invitation_page(request: Request, token: str = "") -> Response:
    csrf = _pre_csrf(request)
    response = render(request, "invite.html", csrf_token=csrf, token=token[:100])
    _set_cookie(request, response, PRE_CSRF_COOKIE, csrf)
    return response


@router.post("/invite", response_class=HTMLResponse)
async def accept_invitation(request: Request) -> Response:
    form = await _form(request)
    expected = request.cookies.get(PRE_CSRF_COOKIE)
    if not expected or not users.csrf_matches(expected, form.get("csrf_token")):
        return _refused_csrf(request, "en")
    token = form.get("token", "")[:100]
    password = form.get("password", "")
    if password != form.get("confirm", ""):
        error = "The two passwords differ."
    else:
        try:
            with Session(_gateway(request).engine, expire_on_commit=False) as session:
                await asyncio.to_thread(users.accept_invitation, session, token, password)
            return RedirectResponse("/login", status_code=303)
        except BorderLedgerError as exc:
            error = str(exc)
    return render(
        request, "invite.html", status_code=422, csrf_token=expected, token=token, error=error
    )


# --- signed in ---------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    signed_in = _signed_in(request)
    if signed_in is None:
        return _to_login(request, ended=SESSION_COOKIE in request.cookies)
    org = signed_in.principal.organization
    return render(
        request,
        "home.html",
        signed_in.user.language,
        user=signed_in.user,
        org=org,
        csrf_token=signed_in.csrf_token,
        links=HOME_LINKS[org.role]
        + ([("/people", "People")] if signed_in.user.role == UserRole.ADMIN else []),
    )


@router.post("/language")
async def set_language(request: Request) -> Response:
    signed_in = _signed_in(request)
    if signed_in is None:
        return _to_login(request, ended=True)
    form = await _form(request)
    if not users.csrf_matches(signed_in.csrf_token, form.get("csrf_token")):
        return _refused_csrf(request, signed_in.user.language)
    language = form.get("language", "")
    if language not in LANGUAGES:
        return render(
            request,
            "error.html",
            signed_in.user.language,
            422,
            title="Language",
            message="Choose one of the languages offered.",
        )
    with Session(_gateway(request).engine, expire_on_commit=False) as session:
        user = session.merge(signed_in.user)
        users.set_language(session, user, language)
    return RedirectResponse("/", status_code=303)


def _officer(request: Request) -> users.SignedIn | Response:
    """The signed-in officer (or registry admin), a redirect to sign in, or a 403 page."""
    signed_in = _signed_in(request)
    if signed_in is None:
        return _to_login(request, ended=SESSION_COOKIE in request.cookies)
    if signed_in.principal.role not in roles.OFFICERS:
        return render(
            request,
            "error.html",
            signed_in.user.language,
            403,
            title="Not for your organization",
            message="The Scan page is for customs officers. Your organization is not a "
            "customs agency.",
        )
    return signed_in


@router.get("/scan", response_class=HTMLResponse)
def scan_page(request: Request) -> Response:
    officer = _officer(request)
    if isinstance(officer, Response):
        return officer
    return render(
        request,
        "scan.html",
        officer.user.language,
        user=officer.user,
        csrf_token=officer.csrf_token,
        form={"gtin": "", "serial": "", "lot": "", "port": ""},
    )


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "location") or "form"
    return f"{field}: {first.get('msg', 'invalid')}".replace("Value error, ", "")


@router.post("/scan", response_class=HTMLResponse)
async def scan(request: Request) -> Response:
    officer = _officer(request)
    if isinstance(officer, Response):
        return officer
    form = await _form(request)
    language = officer.user.language
    if not users.csrf_matches(officer.csrf_token, form.get("csrf_token")):
        return _refused_csrf(request, language)
    fields = {k: form.get(k, "").strip() for k in ("gtin", "serial", "lot", "port")}
    error = result = None
    try:
        body = VerifyRequest(
            gtin=fields["gtin"] or None,
            serial=fields["serial"] or None,
            lot=fields["lot"] or None,
            location={"unlocode": fields["port"].upper()} if fields["port"] else None,
        )
        answer = orjson.loads(await answer_scan(_gateway(request), officer.principal, body))
        word, tone = VERDICT_WORDS.get(answer["verdict"], (answer["verdict"], "neutral"))
        result = {**answer, "word": word, "tone": tone}
    except ValidationError as exc:
        error = _problem(exc)
    except BorderLedgerError as exc:
        error = str(exc)
    partial = request.headers.get("hx-request") == "true"
    return render(
        request,
        "_verdict.html" if partial else "scan.html",
        language,
        # htmx swaps 2xx answers only: the fragment's message says what went wrong.
        status_code=200 if error is None or partial else 422,
        user=officer.user,
        csrf_token=officer.csrf_token,
        form=fields,
        result=result,
        error=error,
    )


# --- people (an organization's admin) ---------------------------------------------------


def _org_admin(request: Request) -> users.SignedIn | Response:
    signed_in = _signed_in(request)
    if signed_in is None:
        return _to_login(request, ended=SESSION_COOKIE in request.cookies)
    if signed_in.user.role != UserRole.ADMIN:
        return render(
            request,
            "error.html",
            signed_in.user.language,
            403,
            title="Not for your role",
            message="This page is for your organization's admins.",
        )
    return signed_in


def _people(
    request: Request,
    admin: users.SignedIn,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    with Session(_gateway(request).engine, expire_on_commit=False) as session:
        people = users.list_users(session, admin.principal)
    org = admin.principal.organization
    return render(
        request,
        "people.html",
        admin.user.language,
        status_code,
        user=admin.user,
        csrf_token=admin.csrf_token,
        people=people,
        # The kind's own role first (the usual invitation), admin last.
        roles=sorted((r.value for r in users.ROLES_BY_KIND[org.role]), key=lambda r: r == "admin"),
        org=org,
        **context,
    )


@router.get("/people", response_class=HTMLResponse)
def people_page(request: Request) -> Response:
    admin = _org_admin(request)
    if isinstance(admin, Response):
        return admin
    return _people(request, admin, form={"email": "", "name": "", "role": ""})


@router.post("/people/invite", response_class=HTMLResponse)
async def invite(request: Request) -> Response:
    admin = _org_admin(request)
    if isinstance(admin, Response):
        return admin
    form = await _form(request)
    if not users.csrf_matches(admin.csrf_token, form.get("csrf_token")):
        return _refused_csrf(request, admin.user.language)
    fields = {k: form.get(k, "").strip()[:254] for k in ("email", "name", "role", "language")}
    try:
        role = UserRole(fields["role"])
    except ValueError:
        return _people(request, admin, 422, form=fields, error="Choose a role.")
    try:
        with Session(_gateway(request).engine, expire_on_commit=False) as session:
            invited, token = users.invite(
                session,
                _gateway(request).settings,
                admin.principal,
                fields["email"],
                fields["name"],
                role,
                fields["language"] or "en",
            )
    except BorderLedgerError as exc:
        return _people(request, admin, 422, form=fields, error=str(exc))
    link = str(request.url_for("invitation_page")) + f"?token={token}"
    return _people(
        request,
        admin,
        form={"email": "", "name": "", "role": ""},
        invited={"email": invited.email, "link": link},
    )


@router.post("/people/{user_id}/{action}")
async def enable_or_disable(request: Request, user_id: int, action: str) -> Response:
    admin = _org_admin(request)
    if isinstance(admin, Response):
        return admin
    form = await _form(request)
    if not users.csrf_matches(admin.csrf_token, form.get("csrf_token")):
        return _refused_csrf(request, admin.user.language)
    if action not in ("disable", "enable"):
        return Response("not found", status_code=404, media_type="text/plain")
    try:
        with Session(_gateway(request).engine, expire_on_commit=False) as session:
            users.set_disabled(session, admin.principal, user_id, action == "disable")
    except BorderLedgerError as exc:
        return _people(
            request, admin, 422, form={"email": "", "name": "", "role": ""}, error=str(exc)
        )
    return RedirectResponse("/people", status_code=303)


# --- static files (esbuild's output) ------------------------------------------------------


@router.get("/static/{name}")
def static(name: str) -> Response:
    path = STATIC / name
    if not _STATIC_NAME.match(name) or not path.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    media = {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".map": "application/json",
    }.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})
