"""Alert webhooks: a rights holder (or an admin for it) manages its endpoint, reads the state
of its deliveries and asks for redelivery. Sending is `api.webhooks`; docs/webhooks.md."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy import func
from sqlmodel import Session, col, select

from api import webhooks
from api.deps import CurrentOrg, GatewayDep, SessionDep, require
from api.models import DeliveryStatus, Organization, Role, WebhookDelivery, WebhookEndpoint
from api.schemas import ErrorOut, WebhookDeliveryOut, WebhookEndpointIn, WebhookEndpointOut
from ledger.errors import NotFound, PermissionDenied

router = APIRouter(prefix="/v1", tags=["webhooks"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 422)
}
OrgId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the rights holder's organization id")]
DeliveryId = Annotated[
    str, Path(pattern=r"^[0-9a-f-]{36}$", description="the delivery's deliveryId")
]
FINAL = (
    DeliveryStatus.DELIVERED.value,
    DeliveryStatus.FAILED.value,
    DeliveryStatus.CANCELLED.value,
)


def _may_manage(org: Organization, organization_id: int) -> None:
    """Admins manage any holder's endpoint; a rights holder only its own."""
    require(org, Role.ADMIN, Role.RIGHTS_HOLDER)
    if org.role == Role.RIGHTS_HOLDER and org.id != organization_id:
        raise PermissionDenied(
            f"organization {org.name!r} may only manage its own webhook, not {organization_id}'s"
        )


def _endpoint_out(
    session: Session, endpoint: WebhookEndpoint, secret: str | None = None
) -> WebhookEndpointOut:
    counts = session.exec(
        select(WebhookDelivery.status, func.count())
        .where(
            WebhookDelivery.organization_id == endpoint.organization_id,
            col(WebhookDelivery.status).in_((*webhooks.DUE, DeliveryStatus.FAILED.value)),
        )
        .group_by(WebhookDelivery.status)
    ).all()
    return WebhookEndpointOut(
        organizationId=endpoint.organization_id,
        url=endpoint.url,
        minSeverity=endpoint.min_severity,
        rules=list(endpoint.rules),
        enabled=endpoint.enabled,
        disabledReason=endpoint.disabled_reason,
        secret=secret,
        previousSecretExpiresAt=endpoint.previous_secret_expires_at
        if endpoint.previous_secret_encrypted
        else None,
        backlog={s: int(n) for s, n in counts},
        createdAt=endpoint.created_at,
        updatedAt=endpoint.updated_at,
    )


def _delivery_out(row: WebhookDelivery) -> WebhookDeliveryOut:
    return WebhookDeliveryOut(
        deliveryId=row.delivery_id,
        organizationId=row.organization_id,
        event=row.event,
        alertId=row.alert_id,
        status=row.status,
        attempts=row.attempts,
        nextAttemptAt=None if row.status in FINAL else row.next_attempt_at,
        lastStatusCode=row.last_status_code,
        lastError=row.last_error,
        lastAttemptAt=row.last_attempt_at,
        deliveredAt=row.delivered_at,
        createdAt=row.created_at,
        payload=dict(row.payload),
    )


@router.get(
    "/organizations/{organization_id}/webhook",
    response_model=WebhookEndpointOut,
    responses=ERRORS,
)
def get_webhook(organization_id: OrgId, org: CurrentOrg, session: SessionDep) -> WebhookEndpointOut:
    """The endpoint, its filter and its backlog (the secret is never shown again)."""
    _may_manage(org, organization_id)
    return _endpoint_out(session, webhooks.get_endpoint(session, organization_id))


@router.put(
    "/organizations/{organization_id}/webhook",
    response_model=WebhookEndpointOut,
    responses={**ERRORS, 201: {"model": WebhookEndpointOut}},
)
def put_webhook(
    organization_id: OrgId,
    body: WebhookEndpointIn,
    org: CurrentOrg,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
) -> WebhookEndpointOut:
    """Register (201, with the signing secret, shown once) or update (200) the endpoint.
    Idempotent: the same body again changes nothing and keeps the secret."""
    _may_manage(org, organization_id)
    endpoint, secret = webhooks.put_endpoint(
        session,
        gateway.settings,
        organization_id,
        body.url,
        body.minSeverity,
        body.rules,
        body.enabled,
    )
    if secret is not None:
        response.status_code = status.HTTP_201_CREATED
    if gateway.webhook_thread is not None:
        gateway.webhook_thread.wake.set()
    return _endpoint_out(session, endpoint, secret)


@router.delete(
    "/organizations/{organization_id}/webhook",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS,
)
def delete_webhook(organization_id: OrgId, org: CurrentOrg, session: SessionDep) -> Response:
    """Remove the endpoint; deliveries not yet made are cancelled (and stay listed)."""
    _may_manage(org, organization_id)
    webhooks.delete_endpoint(session, organization_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/organizations/{organization_id}/webhook/rotate-secret",
    response_model=WebhookEndpointOut,
    responses=ERRORS,
)
def rotate_webhook_secret(
    organization_id: OrgId, org: CurrentOrg, session: SessionDep, gateway: GatewayDep
) -> WebhookEndpointOut:
    """A new signing secret (shown once). The old one keeps signing alongside it for
    BORDERLEDGER_WEBHOOK_SECRET_GRACE_SECONDS, so receivers switch without a gap."""
    _may_manage(org, organization_id)
    endpoint, secret = webhooks.rotate_secret(session, gateway.settings, organization_id)
    return _endpoint_out(session, endpoint, secret)


@router.post(
    "/organizations/{organization_id}/webhook/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookDeliveryOut,
    responses=ERRORS,
)
def test_webhook(
    organization_id: OrgId, org: CurrentOrg, session: SessionDep, gateway: GatewayDep
) -> WebhookDeliveryOut:
    """Queue a `webhook.test` event to check the receiver and its signature check."""
    _may_manage(org, organization_id)
    delivery = webhooks.enqueue_test(session, organization_id)
    if gateway.webhook_thread is not None:
        gateway.webhook_thread.wake.set()
    return _delivery_out(delivery)


@router.get("/webhook-deliveries", response_model=list[WebhookDeliveryOut], responses=ERRORS)
def list_deliveries(
    org: CurrentOrg,
    session: SessionDep,
    organization: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="rights holder (admins)")
    ] = None,
    status: Literal["pending", "failing", "delivered", "failed", "cancelled"] | None = None,
    alert: Annotated[str | None, Query(pattern=r"^[0-9a-f-]{36}$")] = None,
    event: Literal["alert.created", "webhook.test"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[WebhookDeliveryOut]:
    """Newest first. Rights holders see only their own deliveries."""
    require(org, Role.ADMIN, Role.RIGHTS_HOLDER)
    query = select(WebhookDelivery)
    if org.role == Role.RIGHTS_HOLDER:
        if organization is not None and organization != org.id:
            return []
        organization = org.id
    if organization is not None:
        query = query.where(WebhookDelivery.organization_id == organization)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if alert is not None:
        query = query.where(WebhookDelivery.alert_id == alert)
    if event is not None:
        query = query.where(WebhookDelivery.event == event)
    rows = session.exec(query.order_by(col(WebhookDelivery.id).desc()).limit(limit)).all()
    return [_delivery_out(r) for r in rows]


def _delivery(session: Session, org: Organization, delivery_id: str) -> WebhookDelivery:
    require(org, Role.ADMIN, Role.RIGHTS_HOLDER)
    row = session.exec(
        select(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_id)
    ).first()
    # Another holder's delivery is reported as absent: its existence is not theirs to learn.
    if row is None or (org.role == Role.RIGHTS_HOLDER and row.organization_id != org.id):
        raise NotFound(f"no webhook delivery {delivery_id!r}")
    return row


@router.get(
    "/webhook-deliveries/{delivery_id}", response_model=WebhookDeliveryOut, responses=ERRORS
)
def get_delivery(
    delivery_id: DeliveryId, org: CurrentOrg, session: SessionDep
) -> WebhookDeliveryOut:
    return _delivery_out(_delivery(session, org, delivery_id))


@router.post(
    "/webhook-deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookDeliveryOut,
    responses=ERRORS,
)
def redeliver(
    delivery_id: DeliveryId, org: CurrentOrg, session: SessionDep, gateway: GatewayDep
) -> WebhookDeliveryOut:
    """Send it again now, under the same delivery id (failed ones get a fresh attempt budget)."""
    row = webhooks.redeliver(session, _delivery(session, org, delivery_id))
    if gateway.webhook_thread is not None:
        gateway.webhook_thread.wake.set()
    return _delivery_out(row)
