"""Alert webhooks: a rights holder (or an admin for it) manages its endpoint, reads the state
of its deliveries and asks for redelivery. The logic is `api.services.webhook_endpoints`,
sending is `api.webhook_delivery`; docs/webhooks.md."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status
from sqlmodel import Session

from api.deps import GatewayDep, HolderOrAdminDep, SessionDep
from api.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from api.openapi import DEFAULT_PAGE, PageLimit
from api.schemas import (
    ErrorResponse,
    WebhookDeliveryPublic,
    WebhookEndpointPublic,
    WebhookEndpointUpdate,
)
from api.services import webhook_endpoints as webhooks

router = APIRouter(prefix="/v1", tags=["webhooks"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 422)
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


def _endpoint_out(
    session: Session, endpoint: WebhookEndpoint, secret: str | None = None
) -> WebhookEndpointPublic:
    return WebhookEndpointPublic(
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
        backlog=webhooks.backlog(session, endpoint.organization_id),
        createdAt=endpoint.created_at,
        updatedAt=endpoint.updated_at,
    )


def _delivery_out(row: WebhookDelivery) -> WebhookDeliveryPublic:
    return WebhookDeliveryPublic(
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
    response_model=WebhookEndpointPublic,
    responses=ERRORS,
)
def get_webhook(
    organization_id: OrgId, principal: HolderOrAdminDep, session: SessionDep
) -> WebhookEndpointPublic:
    """The endpoint, its filter and its backlog (the secret is never shown again)."""
    webhooks.may_manage(principal, organization_id)
    return _endpoint_out(session, webhooks.get_endpoint(session, organization_id))


@router.put(
    "/organizations/{organization_id}/webhook",
    response_model=WebhookEndpointPublic,
    responses={**ERRORS, 201: {"model": WebhookEndpointPublic}},
)
def put_webhook(
    organization_id: OrgId,
    body: WebhookEndpointUpdate,
    principal: HolderOrAdminDep,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
) -> WebhookEndpointPublic:
    """Register (201, with the signing secret, shown once) or update (200) the endpoint.
    Idempotent: the same body again changes nothing and keeps the secret."""
    webhooks.may_manage(principal, organization_id)
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
    webhooks.wake_sender(gateway)
    return _endpoint_out(session, endpoint, secret)


@router.delete(
    "/organizations/{organization_id}/webhook",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS,
)
def delete_webhook(
    organization_id: OrgId, principal: HolderOrAdminDep, session: SessionDep
) -> Response:
    """Remove the endpoint; deliveries not yet made are cancelled (and stay listed)."""
    webhooks.may_manage(principal, organization_id)
    webhooks.delete_endpoint(session, organization_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/organizations/{organization_id}/webhook/rotate-secret",
    response_model=WebhookEndpointPublic,
    responses=ERRORS,
)
def rotate_webhook_secret(
    organization_id: OrgId, principal: HolderOrAdminDep, session: SessionDep, gateway: GatewayDep
) -> WebhookEndpointPublic:
    """A new signing secret (shown once). The old one keeps signing alongside it for
    BORDERLEDGER_WEBHOOK_SECRET_GRACE_SECONDS, so receivers switch without a gap."""
    webhooks.may_manage(principal, organization_id)
    endpoint, secret = webhooks.rotate_secret(session, gateway.settings, organization_id)
    return _endpoint_out(session, endpoint, secret)


@router.post(
    "/organizations/{organization_id}/webhook/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookDeliveryPublic,
    responses=ERRORS,
)
def test_webhook(
    organization_id: OrgId, principal: HolderOrAdminDep, session: SessionDep, gateway: GatewayDep
) -> WebhookDeliveryPublic:
    """Queue a `webhook.test` event to check the receiver and its signature check."""
    webhooks.may_manage(principal, organization_id)
    delivery = webhooks.enqueue_test(session, organization_id)
    webhooks.wake_sender(gateway)
    return _delivery_out(delivery)


@router.get("/webhook-deliveries", response_model=list[WebhookDeliveryPublic], responses=ERRORS)
def list_deliveries(
    principal: HolderOrAdminDep,
    session: SessionDep,
    organization: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="rights holder (admins)")
    ] = None,
    status: Literal["pending", "failing", "delivered", "failed", "cancelled"] | None = None,
    alert: Annotated[str | None, Query(pattern=r"^[0-9a-f-]{36}$")] = None,
    event: Literal["alert.created", "webhook.test"] | None = None,
    limit: PageLimit = DEFAULT_PAGE,
) -> list[WebhookDeliveryPublic]:
    """Newest first. Rights holders see only their own deliveries."""
    rows = webhooks.list_deliveries(session, principal, organization, status, alert, event, limit)
    return [_delivery_out(r) for r in rows]


@router.get(
    "/webhook-deliveries/{delivery_id}", response_model=WebhookDeliveryPublic, responses=ERRORS
)
def get_delivery(
    delivery_id: DeliveryId, principal: HolderOrAdminDep, session: SessionDep
) -> WebhookDeliveryPublic:
    return _delivery_out(webhooks.delivery_of(session, principal, delivery_id))


@router.post(
    "/webhook-deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookDeliveryPublic,
    responses=ERRORS,
)
def redeliver(
    delivery_id: DeliveryId, principal: HolderOrAdminDep, session: SessionDep, gateway: GatewayDep
) -> WebhookDeliveryPublic:
    """Send it again now, under the same delivery id (failed ones get a fresh attempt budget)."""
    row = webhooks.redeliver(session, webhooks.delivery_of(session, principal, delivery_id))
    webhooks.wake_sender(gateway)
    return _delivery_out(row)
