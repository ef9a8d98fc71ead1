"""The signed-in home page (links per organization kind and role), the language switch and
the bundled static files."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api import users
from api.deps import SESSION_COOKIE
from api.pages.kit import (
    LANGUAGES,
    NAV,
    STATIC,
    STATIC_NAME,
    checked_form,
    error_page,
    gateway_of,
    page,
    signed_in_of,
    to_login,
)

router = APIRouter(include_in_schema=False)

#: Media types of what esbuild and set-up put in api/pages/static.
_MEDIA = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    signed_in = signed_in_of(request)
    if signed_in is None:
        return to_login(request, ended=SESSION_COOKIE in request.cookies)
    return page(
        request,
        signed_in,
        "home.html",
        org=signed_in.principal.organization,
        links=[(link.path, link.label) for link in NAV if link.shown_to(signed_in)],
    )


@router.post("/language")
async def set_language(request: Request) -> Response:
    signed_in = signed_in_of(request)
    if signed_in is None:
        return to_login(request, ended=True)
    form = await checked_form(request, signed_in)
    if isinstance(form, Response):
        return form
    language = form.get("language", "")
    if language not in LANGUAGES:
        return error_page(
            request,
            signed_in.user.language,
            422,
            "Language",
            "Choose one of the languages offered.",
        )
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        user = session.merge(signed_in.user)
        users.set_language(session, user, language)
    return RedirectResponse("/", status_code=303)


@router.get("/static/{name}")
def static(name: str) -> Response:
    path = STATIC / name
    if not STATIC_NAME.match(name) or not path.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    media = _MEDIA.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})
