"""A rights holder's Webhooks page (its organization's admins): the endpoint that receives
its alerts (add, edit, disable or enable, delete with a confirmation), the signing secret
shown once when made or rotated, a test event, and the deliveries (status, attempts, the
receiver's last answer, the next retry) with filters and redelivery.

Everything goes through `api.services.webhook_endpoints`, the service behind
/v1/organizations/{id}/webhook, so the page and the API follow the same rules (one endpoint
per holder; the API admits rights holders and the registry admin, not customs). The page
manages the signed-in admin's own organization."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api import users
from api.models import DeliveryStatus, Role, UserRole
from api.pages.kit import checked_form, gateway_of, page, render_confirmation, require, status_of
from api.services import webhook_endpoints as webhooks
from api.webhook_delivery import EVENT_TEST, SEVERITY_RANK
from detector.rules import AlertClass
from ledger.errors import BorderLedgerError, NotFound

router = APIRouter(include_in_schema=False)
DELIVERIES_SHOWN = 50
STATUSES = tuple(s.value for s in DeliveryStatus)
EVENTS = ("alert.created", EVENT_TEST)
#: What a finished action says on the page it redirects to (`?done=`).
DONE = {
    "saved": "The endpoint is saved.",
    "test": "A test event is queued: it appears in the deliveries below.",
    "redelivered": "The delivery is queued to be sent again.",
    "deleted": "The endpoint is deleted; deliveries not yet made are cancelled.",
    "disabled": "The endpoint is disabled: deliveries wait until it is enabled.",
    "enabled": "The endpoint is enabled.",
}


def _require_holder_admin(request: Request) -> users.SignedIn | Response:
    return require(
        request,
        kinds=(Role.RIGHTS_HOLDER,),
        user_roles=(UserRole.ADMIN,),
        title="Not for your role",
        refusal="This page is for the admins of a rights holder: webhooks announce alerts "
        "on its products.",
    )


def _org_id(admin: users.SignedIn) -> int:
    org_id = admin.principal.organization_id
    assert org_id is not None
    return org_id


def _webhooks(
    request: Request,
    admin: users.SignedIn,
    status_code: int = 200,
    status: str = "",
    event: str = "",
    **context: Any,
) -> HTMLResponse:
    org_id = _org_id(admin)
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        try:
            endpoint = webhooks.get_endpoint(session, org_id)
        except NotFound:
            endpoint = None
        backlog = webhooks.backlog(session, org_id) if endpoint else {}
        rows = webhooks.list_deliveries(
            session,
            admin.principal,
            None,
            status if status in STATUSES else None,
            None,
            event if event in EVENTS else None,
            DELIVERIES_SHOWN,
        )
    form = context.pop("form", None) or {
        "url": endpoint.url if endpoint else "",
        "min_severity": endpoint.min_severity if endpoint else "low",
        "rules": list(endpoint.rules) if endpoint else [],
    }
    return page(
        request,
        admin,
        "webhooks.html",
        status_code,
        endpoint=endpoint,
        backlog=backlog,
        deliveries=rows,
        final=("delivered", "failed", "cancelled"),
        form=form,
        severities=list(SEVERITY_RANK),
        classes=[c.value for c in AlertClass],
        statuses=STATUSES,
        events=EVENTS,
        filter={"status": status, "event": event},
        **context,
    )


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request, status: str = "", event: str = "", done: str = "") -> Response:
    admin = _require_holder_admin(request)
    if isinstance(admin, Response):
        return admin
    error = None
    if status and status not in STATUSES:
        error = f"status {status[:20]!r} is not one of {', '.join(STATUSES)}"
    elif event and event not in EVENTS:
        error = f"event {event[:40]!r} is not one of {', '.join(EVENTS)}"
    return _webhooks(
        request,
        admin,
        422 if error else 200,
        status=status[:20],
        event=event[:40],
        error=error,
        done=DONE.get(done),
    )


@router.post("/webhooks", response_class=HTMLResponse)
async def save_endpoint(request: Request) -> Response:
    """Add or edit the endpoint (idempotent: the same form again changes nothing; a disabled
    endpoint stays disabled). A new endpoint's signing secret is on the answer, once."""
    admin = _require_holder_admin(request)
    if isinstance(admin, Response):
        return admin
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    raw = await request.form()
    rules = [r for r in raw.getlist("rules") if isinstance(r, str)][:20]
    url, min_severity = form.get("url", "").strip()[:2048], form.get("min_severity", "low")[:20]
    fields = {"url": url, "min_severity": min_severity, "rules": rules}
    gateway = gateway_of(request)
    try:
        with Session(gateway.engine, expire_on_commit=False) as session:
            # An edit keeps the endpoint's state: enabling is its own button, a choice.
            try:
                enabled = webhooks.get_endpoint(session, _org_id(admin)).enabled
            except NotFound:
                enabled = True
            _, secret = webhooks.put_endpoint(
                session,
                gateway.settings,
                _org_id(admin),
                url,
                min_severity,
                rules,
                enabled,
            )
    except BorderLedgerError as exc:
        return _webhooks(request, admin, status_of(exc), form=fields, error=str(exc))
    webhooks.wake_sender(gateway)
    if secret is None:
        return RedirectResponse("/webhooks?done=saved", status_code=303)
    return _webhooks(request, admin, secret=secret, done="The endpoint is added.")


async def _action(request: Request) -> users.SignedIn | Response:
    admin = _require_holder_admin(request)
    if isinstance(admin, Response):
        return admin
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    return admin


@router.post("/webhooks/{action}", response_class=HTMLResponse)
async def endpoint_action(request: Request, action: str) -> Response:
    """Send a test event, rotate the secret, disable, enable, or delete (the last after the
    confirmation page, GET /webhooks/delete)."""
    admin = await _action(request)
    if isinstance(admin, Response):
        return admin
    if action not in ("test", "rotate", "disable", "enable", "delete"):
        return Response("not found", status_code=404, media_type="text/plain")
    gateway = gateway_of(request)
    org_id = _org_id(admin)
    secret = None
    try:
        with Session(gateway.engine, expire_on_commit=False) as session:
            if action == "test":
                webhooks.enqueue_test(session, org_id)
            elif action == "rotate":
                _, secret = webhooks.rotate_secret(session, gateway.settings, org_id)
            elif action == "delete":
                webhooks.delete_endpoint(session, org_id)
            else:
                current = webhooks.get_endpoint(session, org_id)
                webhooks.put_endpoint(
                    session,
                    gateway.settings,
                    org_id,
                    current.url,
                    current.min_severity,
                    list(current.rules),
                    action == "enable",
                )
    except BorderLedgerError as exc:
        return _webhooks(request, admin, status_of(exc), error=str(exc))
    webhooks.wake_sender(gateway)
    if secret is not None:
        return _webhooks(
            request,
            admin,
            secret=secret,
            done="A new signing secret. The old one keeps signing alongside it for a while, "
            "so switch your receiver now.",
        )
    done = {"test": "test", "delete": "deleted", "disable": "disabled", "enable": "enabled"}
    return RedirectResponse(f"/webhooks?done={done[action]}", status_code=303)


@router.get("/webhooks/delete", response_class=HTMLResponse)
def confirm_delete(request: Request) -> Response:
    admin = _require_holder_admin(request)
    if isinstance(admin, Response):
        return admin
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        try:
            endpoint = webhooks.get_endpoint(session, _org_id(admin))
        except NotFound as exc:
            return _webhooks(request, admin, 404, error=str(exc))
    return render_confirmation(
        request,
        admin,
        title="Delete the webhook endpoint?",
        question=f"Delete the endpoint {endpoint.url}? Deliveries not yet made are cancelled; "
        "a new endpoint gets a new signing secret.",
        action="/webhooks/delete",
        button="Delete the endpoint",
        back="/webhooks",
    )


@router.post("/webhooks/deliveries/{delivery_id}/redeliver", response_class=HTMLResponse)
async def redeliver(request: Request, delivery_id: str) -> Response:
    admin = await _action(request)
    if isinstance(admin, Response):
        return admin
    gateway = gateway_of(request)
    try:
        with Session(gateway.engine, expire_on_commit=False) as session:
            row = webhooks.delivery_of(session, admin.principal, delivery_id[:36])
            webhooks.redeliver(session, row)
    except BorderLedgerError as exc:
        return _webhooks(request, admin, status_of(exc), error=str(exc))
    webhooks.wake_sender(gateway)
    return RedirectResponse("/webhooks?done=redelivered", status_code=303)
