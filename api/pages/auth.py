"""Sign-in, sign-out and accepting an invitation: the pages reached without a session."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api import users
from api.deps import SESSION_COOKIE
from api.pages.kit import (
    PRE_CSRF_COOKIE,
    checked_form,
    checked_pre_form,
    gateway_of,
    pre_csrf,
    render,
    set_cookie,
    signed_in_of,
    to_login,
)
from api.ratelimit import RateLimiter, client_address
from ledger.errors import BorderLedgerError

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, ended: bool = False) -> Response:
    if signed_in_of(request) is not None:
        return RedirectResponse("/", status_code=303)
    csrf = pre_csrf(request)
    notice = "Your session has ended. Sign in again." if ended else None
    response = render(request, "login.html", csrf_token=csrf, notice=notice, email="")
    set_cookie(request, response, PRE_CSRF_COOKIE, csrf)
    return response


async def _throttled(request: Request) -> Response | None:
    """The 429 answer when this client address made too many sign-in attempts (across every
    account), before the form or the password is looked at; None when it may try. A browser
    gets the sign-in page with the message, anything else the API's JSON error; both carry
    Retry-After."""
    limiter: RateLimiter | None = getattr(request.app, "limiter", None)
    if limiter is None:
        return None
    refusal = await limiter.check_sign_in(client_address(request.scope))
    if refusal is None:
        return None
    headers = {"Retry-After": str(refusal.retry_after)}
    if "text/html" not in request.headers.get("accept", ""):
        return Response(
            refusal.body(), status_code=429, headers=headers, media_type="application/json"
        )
    csrf = pre_csrf(request)
    response = render(
        request,
        "login.html",
        status_code=429,
        csrf_token=csrf,
        error="Too many sign-in attempts from this network. Try again in %(seconds)s seconds.",
        error_args={"seconds": refusal.retry_after},
        email="",
    )
    response.headers.update(headers)
    set_cookie(request, response, PRE_CSRF_COOKIE, csrf)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    throttled = await _throttled(request)
    if throttled is not None:
        return throttled
    checked = await checked_pre_form(request)
    if isinstance(checked, Response):
        return checked
    form, expected = checked
    gateway = gateway_of(request)
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
    set_cookie(request, response, SESSION_COOKIE, token)
    response.delete_cookie(PRE_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    signed_in = signed_in_of(request)
    if signed_in is None:
        return to_login(request, ended=True)
    form = await checked_form(request, signed_in)
    if isinstance(form, Response):
        return form
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        users.end_session(session, request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/invite", response_class=HTMLResponse, name="invitation_page")
def invitation_page(request: Request, token: str = "") -> Response:
    csrf = pre_csrf(request)
    response = render(request, "invite.html", csrf_token=csrf, token=token[:100])
    set_cookie(request, response, PRE_CSRF_COOKIE, csrf)
    return response


@router.post("/invite", response_class=HTMLResponse)
async def accept_invitation(request: Request) -> Response:
    checked = await checked_pre_form(request)
    if isinstance(checked, Response):
        return checked
    form, expected = checked
    token = form.get("token", "")[:100]
    password = form.get("password", "")
    if password != form.get("confirm", ""):
        error = "The two passwords differ."
    else:
        try:
            with Session(gateway_of(request).engine, expire_on_commit=False) as session:
                await asyncio.to_thread(users.accept_invitation, session, token, password)
            return RedirectResponse("/login", status_code=303)
        except BorderLedgerError as exc:
            error = str(exc)
    return render(
        request, "invite.html", status_code=422, csrf_token=expected, token=token, error=error
    )
