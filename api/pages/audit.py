"""The auditor's custody timeline page (`GET /audit/items/{gtin}/{serial}`): every step of an
item's history in time order — enrollment, custody events, border scans, status changes,
alerts — with what, where, when, who and the evidence (log index, leaf hash, checkpoint,
transaction and block), rendered on the server so the first paint needs no script.

Then the browser checks it against the chain, trusting no one (static/audit.js, the same
checks as `borderledger audit`): through the RPC the auditor picks it recomputes each entry's
leaf, verifies its inclusion proof against the checkpoint root it reads from the chain, and
marks each entry verified or not. The timeline is embedded as the API answers it
(`api.services.custody.timeline`, so the page reads exactly what the API lets this person
read: auditors the holders they were granted, holders their own products, customs with other
parties' entries withheld, the admin everything; any other item is a 404 page).

The page's Content-Security-Policy admits scripts and connections from the gateway itself and
the RPC origins the deployment configures (`Settings.audit_rpc_urls`, default `rpc_url`): an
auditor's script can talk to no other host (docs/audit-pages.md).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from markupsafe import Markup
from sqlmodel import Session, col, select

from api import users
from api.models import Organization
from api.pages import worldmap
from api.pages.kit import error_page, gateway_of, page, require
from api.services import custody
from ledger.config import Settings
from ledger.errors import BorderLedgerError, InvalidInput, NotFound

router = APIRouter(include_in_schema=False)
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def rpc_urls(settings: Settings) -> list[str]:
    """The RPC URLs the page offers: the configured ones, else the gateway's own."""
    urls = [u for u in settings.audit_rpc_urls if _origin(u)]
    return urls or [settings.rpc_url]


def _origin(url: str) -> str | None:
    """scheme://host[:port] of an http(s) URL; None for anything else (never put in a CSP)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if any(c in parts.netloc for c in " ;,'\""):
        return None
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def content_security_policy(settings: Settings) -> str:
    """Only the gateway itself, plus the configured RPC origins for the chain reads."""
    origins = sorted({o for o in map(_origin, rpc_urls(settings)) if o})
    connect = " ".join(["'self'", *origins])
    return (
        "default-src 'self'; "
        "script-src 'self'; "
        "style-src 'self'; "
        "img-src 'self' data:; "
        f"connect-src {connect}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def _when(value: object) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _shown(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def _place(event: dict[str, Any]) -> str | None:
    for name in ("readPoint", "bizLocation"):
        spot = event.get(name)
        if isinstance(spot, dict) and isinstance(spot.get("id"), str):
            return str(spot["id"]).removeprefix("urn:un:locode:")
    return None


def _rows(timeline: dict[str, Any], names: dict[int, str]) -> list[dict[str, Any]]:
    """One row per step, in time order (steps without a time last, in log order)."""
    rows: list[dict[str, Any]] = []
    enrollment = timeline.get("enrollment")
    if enrollment:
        rows.append(
            {
                "kind": "enrollment",
                "what": f"Enrolled in lot {enrollment.get('lot') or '?'}",
                "where": None,
                "when": _when(enrollment.get("registeredAt")),
                "who": enrollment.get("holder"),
                "evidence": [
                    ("Batch", enrollment.get("batchId")),
                    ("Batch root", enrollment.get("root")),
                    ("Transaction", enrollment.get("batchRegistrationTx")),
                    ("Block", enrollment.get("batchRegistrationBlock")),
                ],
                "proof": "enrollment",
                "order": -1,
            }
        )
    for entry in timeline.get("entries") or []:
        record = entry.get("record") or {}
        kind = entry.get("kind")
        where = who = None
        if kind == "scan":
            where = record.get("location")
            who = names.get(record.get("organization_id") or -1)
            what = f"Border scan: {record.get('verdict')}"
        elif kind == "epcis":
            where = _place(record.get("event") or {})
            who = names.get(record.get("captured_by") or -1)
            what = str(entry.get("summary") or "Custody event")
        elif kind == "withheld":
            what = "Recorded by another party (withheld)"
        else:
            what = str(entry.get("summary") or kind)
        if entry.get("via"):
            what += f" (in {entry['via']})"
        # The checkpoint's anchor transaction and block are listed once, under Checkpoints
        # (the entry names its checkpoint): repeated on each of 100 entries they were a
        # tenth of the page.
        evidence = [
            ("Log index", entry.get("logIndex")),
            ("Leaf hash", entry.get("leafHash")),
            (
                "Checkpoint",
                entry.get("checkpointSize")
                if entry.get("anchoring") == "anchored"
                else "pending anchoring",
            ),
        ]
        rows.append(
            {
                "kind": kind,
                "what": what,
                "where": where,
                "when": _when(entry.get("time")),
                "who": who,
                "evidence": evidence,
                "proof": f"entry {entry.get('logIndex')}",
                "index": entry.get("logIndex"),
                "order": entry.get("logIndex") or 0,
            }
        )
    for change in timeline.get("statusChanges") or []:
        rows.append(
            {
                "kind": "status",
                "what": f"Status {change.get('previous')} → {change.get('status')} "
                f"({change.get('level')})",
                "where": None,
                "when": _when(change.get("time")),
                "who": change.get("by"),
                "evidence": [
                    ("Transaction", change.get("txHash")),
                    ("Block", change.get("blockNumber")),
                ],
                "proof": f"status change {change.get('status')} ({change.get('level')})",
                "order": 0,
            }
        )
    for alert in timeline.get("alerts") or []:
        rows.append(
            {
                "kind": "alert",
                "what": f"Alert: {alert.get('rule')} ({alert.get('severity')})",
                "where": alert.get("location"),
                "when": _when(alert.get("createdAt")),
                "who": "Detector",
                # one line, not a list of facts: an item can have hundreds of alerts
                "reason": alert.get("reasonCode"),
                "evidence": [str(e) for e in alert.get("evidence") or []],
                "proof": None,
                "order": 0,
            }
        )
    far = datetime.max.replace(tzinfo=UTC)
    rows.sort(key=lambda r: (r["when"] or far, r["order"]))
    for row in rows:
        row["when_text"] = _shown(row["when"])
    return _grouped(rows)


def _grouped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive alerts of the same rule and severity as one step listing them (closed):
    an item scanned back and forth raises an impossible-travel alert per pair of scans, and
    470 alert steps buried its 100 entries and were most of the page's first paint. Time
    order is kept: only neighbours merge."""
    out: list[dict[str, Any]] = []
    for row in rows:
        last = out[-1] if out else None
        if (
            row["kind"] == "alert"
            and last
            and last["kind"] in ("alert", "alerts")
            and last["what"] == row["what"]
        ):
            if last["kind"] == "alert":
                last = out[-1] = {
                    "kind": "alerts",
                    "what": last["what"],
                    "alerts": [last],
                    "index": None,
                }
            last["alerts"].append(row)
            continue
        out.append(row)
    for row in out:
        if row["kind"] == "alerts":
            first, final = row["alerts"][0], row["alerts"][-1]
            row["when_text"] = (
                first["when_text"]
                if first["when_text"] == final["when_text"]
                else f"{first['when_text']} \N{EN DASH} {final['when_text']}"
            )
    return out


def _names(session: Session, timeline: dict[str, Any]) -> dict[int, str]:
    """Organization names of the recorders the timeline shows (scans, captures)."""
    ids: set[int] = set()
    for entry in timeline.get("entries") or []:
        record = entry.get("record") or {}
        for name in ("organization_id", "captured_by"):
            if isinstance(record.get(name), int):
                ids.add(record[name])
    if not ids:
        return {}
    found = session.exec(select(Organization).where(col(Organization.id).in_(ids))).all()
    return {o.id: o.name for o in found if o.id is not None}


def _load(
    request: Request, signed_in: users.SignedIn, gtin: str, serial: str
) -> tuple[dict[str, Any], dict[int, str]]:
    gateway = gateway_of(request)
    with Session(gateway.engine) as session:
        timeline = custody.timeline(gateway, session, signed_in.principal, gtin, serial, False)
        return timeline, _names(session, timeline)


#: What the browser's check reads of the timeline (lib/custody_audit.js, as custody/audit.py):
#: the alerts are the detector's, not log entries, and nothing checks them against the chain.
CHECKED = ("item", "log", "enrollment", "entries", "statusChanges", "checkpoints", "consistency")


def _embedded(timeline: dict[str, Any]) -> Markup:
    """The part of the timeline the check reads (`CHECKED`), as JSON inside <script
    type="application/json">: nothing in it can close the element (`<`, `>` and `&` as \\u
    escapes, which JSON reads back as the same text). An item's alerts can outnumber its
    entries (an impossible-travel alert per pair of scans): embedded, they were half the page
    and parsed before the first paint for nothing; the page shows them as rows."""
    checked = {name: timeline[name] for name in CHECKED if name in timeline}
    text = json.dumps(checked, allow_nan=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # escaped above; a script element of type JSON is never executed


@router.get("/audit/items/{gtin}/{serial}")
async def timeline_page(
    request: Request, gtin: str, serial: str, rpc: str = "", registry: str = ""
) -> Response:
    """An item's custody timeline for whoever the API lets read it, checked in the browser
    through `rpc` against `registry` (the form's fields; default the first configured RPC URL
    and the deployment's registry)."""
    signed_in = require(request)
    if isinstance(signed_in, Response):
        return signed_in
    language = signed_in.user.language
    try:
        if not (8 <= len(gtin) <= 14 and gtin.isdigit()) or not 1 <= len(serial) <= 20:
            raise InvalidInput(f"{gtin}/{serial[:40]} is not a GTIN and serial")
        timeline, names = await run_in_threadpool(_load, request, signed_in, gtin, serial)
    except NotFound:
        return error_page(
            request,
            language,
            404,
            "Item not found",
            "No item with this GTIN and serial among the products you may read.",
        )
    except BorderLedgerError as exc:
        return error_page(request, language, 422, "Not a GTIN and serial", str(exc))
    settings = gateway_of(request).settings
    item = timeline["item"]
    points = worldmap.timeline_points(timeline, gateway_of(request).detection.registry)
    base = f"/v1/items/{quote(item['gtin'])}/{quote(item['serial'], safe='')}/custody"
    response = page(
        request,
        signed_in,
        "audit_timeline.html",
        item=item,
        log=timeline["log"],
        rows=_rows(timeline, names),
        checkpoints=timeline.get("checkpoints") or [],
        entry_count=len(timeline.get("entries") or []),
        timeline_json=_embedded(timeline),
        rpc_urls=rpc_urls(settings),
        rpc=rpc.strip() if len(rpc) <= 500 and _origin(rpc) else rpc_urls(settings)[0],
        registry=registry if ADDRESS.fullmatch(registry) else gateway_of(request).registry,
        epcis_url=base + "/epcis",
        report_url=f"/audit/items/{quote(item['gtin'])}/{quote(item['serial'], safe='')}/report.pdf",
        map_url=f"/audit/items/{quote(item['gtin'])}/{quote(item['serial'], safe='')}/map.svg"
        if points
        else None,
        map_alt=worldmap.map_label(points),
    )
    response.headers["Content-Security-Policy"] = content_security_policy(settings)
    return response


@router.get("/audit/items/{gtin}/{serial}/map.svg")
async def timeline_map(request: Request, gtin: str, serial: str) -> Response:
    """The item's ports on the bundled world map, as an image of its own: the page's first
    paint does not wait for ~70 kB of outline, and the browser caches it briefly. The same
    readers as the page; anyone else 404."""
    signed_in = require(request)
    if isinstance(signed_in, Response):
        return signed_in
    if not (8 <= len(gtin) <= 14 and gtin.isdigit()) or not 1 <= len(serial) <= 20:
        return Response(status_code=404)
    try:
        timeline, _names = await run_in_threadpool(_load, request, signed_in, gtin, serial)
    except BorderLedgerError:
        return Response(status_code=404)
    points = worldmap.timeline_points(timeline, gateway_of(request).detection.registry)
    return Response(
        str(worldmap.port_map(points)),
        media_type="image/svg+xml",
        headers={
            "Cache-Control": "private, max-age=60",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )
