"""A rights holder's Alerts page: the detector's alerts on its own products, filtered by
rule, port, severity and date range, paged, each with its evidence and the route policy it
broke. Read-only: acknowledging and resolving are customs' (POST /v1/alerts/... admits
officers only), so the holder gets no buttons for them. Rights holders only; every other
kind gets the 403 page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.models import Role
from api.pages.kit import VERDICT_WORDS, gateway_of, page, require
from api.services import product_alerts
from api.services.inbox import RULES
from ledger.errors import BorderLedgerError, InvalidInput

router = APIRouter(include_in_schema=False)
PER_PAGE = 20


def _page_number(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 6 or int(raw) < 1:
        raise InvalidInput("page must be a whole number from 1")
    return int(raw)


def _verdict(code: str) -> tuple[str, str]:
    return VERDICT_WORDS.get(code, (code, "neutral"))


@router.get("/product-alerts", response_class=HTMLResponse)
def product_alerts_page(request: Request) -> Response:
    holder = require(
        request,
        kinds=(Role.RIGHTS_HOLDER,),
        refusal="This page is for rights holders: the alerts on their own products.",
    )
    if isinstance(holder, Response):
        return holder
    raw = {
        k: request.query_params.get(k, "")[:40] for k in ("port", "rule", "severity", "from", "to")
    }
    context: dict[str, Any] = {
        "form": raw,
        "rules": RULES,
        "severities": product_alerts.SEVERITIES,
        "verdict": _verdict,
    }
    try:
        wanted = product_alerts.filters(
            raw["port"], raw["rule"], raw["severity"], raw["from"], raw["to"]
        )
        number = _page_number(request.query_params.get("page", "1"))
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            result = product_alerts.product_alerts(
                session, holder.principal, wanted, number - 1, PER_PAGE
            )
    except BorderLedgerError as exc:
        return page(
            request, holder, "product_alerts.html", 422, error=str(exc), items=[], **context
        )
    query = wanted.query()
    return page(
        request,
        holder,
        "product_alerts.html",
        items=result.items,
        number=number,
        previous={**query, "page": number - 1} if number > 1 else None,
        next={**query, "page": number + 1} if result.has_more else None,
        **context,
    )
