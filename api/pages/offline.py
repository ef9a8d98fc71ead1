"""The officer's app offline: the PWA's manifest, icons and service worker, and the Device page
where an officer registers this browser's key (docs/pages.md, "Offline").

The judging itself happens in the browser (`web/offline.js`, `web/lib/verdict.js`): the
gateway only serves what the browser keeps — the app shell and the signed trust bundle
(GET /v1/trust-bundle) — and takes the signed scans back at POST /v1/scans/sync. The service
worker is served from the root, not /static, because its scope (/) may not be wider than the
path it is served from; `Service-Worker-Allowed: /` says so explicitly all the same."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from api.pages.kit import STATIC, page, require_officer

router = APIRouter(include_in_schema=False)

ICONS = Path(__file__).parent / "icons"
_ICON = re.compile(r"^icon-(192|512)\.png$")

#: The Web App Manifest: installs as "BorderLedger", opens on the Scan page, phone-first.
MANIFEST = {
    "name": "BorderLedger",
    "short_name": "BorderLedger",
    "description": "Check product tags at the border, online and offline.",
    "start_url": "/scan",
    "scope": "/",
    "display": "standalone",
    "background_color": "#ffffff",
    "theme_color": "#0a6b2d",
    "icons": [
        {"src": "/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
        {"src": "/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
        {
            "src": "/icons/icon-512.png",
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        },
    ],
}


@router.get("/manifest.webmanifest")
def manifest() -> Response:
    return JSONResponse(
        MANIFEST, media_type="application/manifest+json", headers={"Cache-Control": "no-cache"}
    )


@router.get("/icons/{name}")
def icon(name: str) -> Response:
    if not _ICON.match(name):
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(ICONS / name, media_type="image/png")


@router.get("/sw.js")
def service_worker() -> Response:
    """The service worker bundled by esbuild (static/sw.js), never cached by HTTP: a new
    version must reach phones at their next visit."""
    path = STATIC / "sw.js"
    if not path.is_file():
        return Response("not built: run make setup", status_code=404, media_type="text/plain")
    return FileResponse(
        path,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@router.get("/device", response_class=HTMLResponse)
def device_page(request: Request) -> Response:
    """This browser as an officer's device: its key id, registration, offline queue."""
    officer = require_officer(request)
    if isinstance(officer, Response):
        return officer
    return page(request, officer, "device.html")
