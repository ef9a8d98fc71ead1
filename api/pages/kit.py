"""What every page module shares: the template environment, the signed-in reader, the
guards (signed in, of the right organization kind or role), CSRF checks on forms, and the
verdict words. Page modules (`api.pages.auth`, `.scan`, `.people`, …) hold routes only."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import Session

from api import principal as roles
from api import users
from api.deps import SESSION_COOKIE
from api.gateway import Gateway
from api.models import Role, UserRole
from api.pages.i18n import LANGUAGES, translations
from ledger.errors import BorderLedgerError, Conflict, NotFound, PermissionDenied

TEMPLATES = Path(__file__).parent / "templates"
#: esbuild's output (`make setup`): the bundled ES modules, htmx inside, and the stylesheet.
STATIC = Path(__file__).parent / "static"
PRE_CSRF_COOKIE = "bl_csrf"
STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,80}$")
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


@dataclass(frozen=True)
class NavLink:
    """A link on the home page, shown to the people `shown_to` admits."""

    path: str
    label: str
    shown_to: Callable[[users.SignedIn], bool]


def _kind(*kinds: Role) -> Callable[[users.SignedIn], bool]:
    return lambda s: s.principal.role in kinds


def _org_admins(s: users.SignedIn) -> bool:
    return s.user.role == UserRole.ADMIN


#: Every page a signed-in person may reach from home, in the order shown. A page module
#: that adds a page adds its link here (one line), so the home page stays one list.
NAV: list[NavLink] = [
    NavLink("/scan", "Scan", _kind(Role.CUSTOMS, Role.ADMIN)),
    NavLink("/device", "This device", _kind(Role.CUSTOMS, Role.ADMIN)),
    NavLink("/history", "History", _kind(Role.CUSTOMS, Role.ADMIN)),
    NavLink("/alerts", "Alerts", _kind(Role.CUSTOMS, Role.ADMIN)),
    NavLink("/cases", "Cases", _kind(Role.CUSTOMS, Role.ADMIN, Role.RIGHTS_HOLDER, Role.AUDITOR)),
    NavLink("/product-alerts", "Alerts on your products", _kind(Role.RIGHTS_HOLDER)),
    NavLink("/people", "People", _org_admins),
    NavLink("/api-keys", "API keys", _org_admins),
    NavLink(
        "/webhooks", "Webhooks", lambda s: _org_admins(s) and s.principal.role == Role.RIGHTS_HOLDER
    ),
    NavLink("/guides", "Product guides", _kind(Role.RIGHTS_HOLDER, Role.CUSTOMS)),
    NavLink("/batches", "Batches", _kind(Role.RIGHTS_HOLDER)),
    NavLink("/check", "Check a product", _kind(Role.RIGHTS_HOLDER)),
    NavLink("/statistics", "Seizure statistics", _kind(Role.CUSTOMS, Role.ADMIN)),
    NavLink("/admin/organizations", "Organizations", _kind(Role.ADMIN)),
    NavLink("/admin/locations", "Locations and route policies", _kind(Role.ADMIN)),
    NavLink("/admin/chain-writes", "Chain writes", _kind(Role.ADMIN)),
    NavLink("/admin/jobs", "Jobs", _kind(Role.ADMIN)),
    NavLink("/jobs", "Jobs", _kind(Role.RIGHTS_HOLDER, Role.CUSTOMS, Role.AUDITOR)),
    NavLink("/audit", "Audit", _kind(Role.AUDITOR, Role.ADMIN)),
    NavLink("/docs", "API documentation", lambda s: True),
]


def gateway_of(request: Request) -> Gateway:
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


def page(
    request: Request,
    signed_in: users.SignedIn,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A signed-in person's page: their language, name and CSRF token filled in."""
    return render(
        request,
        template,
        signed_in.user.language,
        status_code,
        user=signed_in.user,
        csrf_token=signed_in.csrf_token,
        **context,
    )


def error_page(
    request: Request, language: str, status_code: int, title: str, message: str
) -> HTMLResponse:
    return render(request, "error.html", language, status_code, title=title, message=message)


def status_of(exc: BorderLedgerError) -> int:
    """The status of a page that shows a refusal: as the API answers the same error."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, PermissionDenied):
        return 403
    return 422


def render_confirmation(
    request: Request,
    signed_in: users.SignedIn,
    title: str,
    question: str,
    action: str,
    button: str,
    back: str,
) -> HTMLResponse:
    """A page asking to confirm a change that cannot be undone from where it was asked
    (disable a user, revoke a key): the question names what changes, the button posts the
    form (CSRF token included), a link goes back. A plain page, so it works without script."""
    return page(
        request,
        signed_in,
        "confirm.html",
        title=title,
        question=question,
        action=action,
        button=button,
        back=back,
    )


def signed_in_of(request: Request) -> users.SignedIn | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        return users.session_for(session, token)


def to_login(request: Request, ended: bool = False) -> Response:
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


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="lax" if name == SESSION_COOKIE else "strict",
        secure=gateway_of(request).settings.secure_cookies,
        path="/",
    )


def refused_csrf(request: Request, language: str) -> HTMLResponse:
    return error_page(
        request,
        language,
        403,
        "Form refused",
        "This form has expired or was not sent from this site. Reload the page and try again.",
    )


async def read_form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def checked_form(request: Request, signed_in: users.SignedIn) -> dict[str, str] | Response:
    """The form's text fields, or the refusal page when its CSRF token is not the session's."""
    form = await read_form(request)
    if not users.csrf_matches(signed_in.csrf_token, form.get("csrf_token")):
        return refused_csrf(request, signed_in.user.language)
    return form


def pre_csrf(request: Request) -> str:
    return request.cookies.get(PRE_CSRF_COOKIE) or secrets.token_urlsafe(32)


async def checked_pre_form(request: Request) -> tuple[dict[str, str], str] | Response:
    """A form sent before sign-in (double-submit cookie): its fields and the token, or the
    refusal page."""
    form = await read_form(request)
    expected = request.cookies.get(PRE_CSRF_COOKIE)
    if not expected or not users.csrf_matches(expected, form.get("csrf_token")):
        return refused_csrf(request, "en")
    return form, expected


def require(
    request: Request,
    kinds: Collection[Role] | None = None,
    user_roles: Collection[UserRole] | None = None,
    title: str = "Not for your organization",
    refusal: str = "This page is not for your organization.",
) -> users.SignedIn | Response:
    """The signed-in person if their organization kind and role admit them; otherwise a
    redirect to sign in or a 403 page saying why."""
    signed_in = signed_in_of(request)
    if signed_in is None:
        return to_login(request, ended=SESSION_COOKIE in request.cookies)
    if (kinds is not None and signed_in.principal.role not in kinds) or (
        user_roles is not None and signed_in.user.role not in user_roles
    ):
        return error_page(request, signed_in.user.language, 403, title, refusal)
    return signed_in


def require_officer(request: Request) -> users.SignedIn | Response:
    """A customs officer (or the registry admin's people)."""
    return require(
        request,
        kinds=roles.OFFICERS,
        refusal="This page is for customs officers. Your organization is not a customs agency.",
    )


def require_org_admin(request: Request) -> users.SignedIn | Response:
    return require(
        request,
        user_roles=(UserRole.ADMIN,),
        title="Not for your role",
        refusal="This page is for your organization's admins.",
    )


__all__ = ["LANGUAGES", "NAV", "VERDICT_WORDS", "NavLink"]
