"""Webhook endpoints, as their rights holders (or an admin) manage them: register, filter,
rotate the signing secret, remove, test, and look up and redeliver deliveries. What is
delivered and how is `api.webhook_delivery`; docs/webhooks.md has the receiver's side."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from ipaddress import ip_address
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from api.crypto import seal
from api.gateway import Gateway
from api.models import DeliveryStatus, Organization, Role, WebhookDelivery, WebhookEndpoint, utcnow
from api.principal import Principal
from api.scoping import scope_of
from api.webhook_delivery import DUE, EVENT_TEST, RULE_NAMES, SEVERITY_RANK, new_delivery
from detector.rules import AlertClass
from ledger.config import Settings
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.webhooks import (
    generate_secret,
    parse_allowlist,
    refused_address,
    validate_endpoint_url,
)


def validate_filter(min_severity: str, rules: Sequence[str]) -> tuple[str, list[str]]:
    """A holder's event filter in canonical form, or `InvalidInput` naming the bad values."""
    problems = []
    if min_severity not in SEVERITY_RANK:
        problems.append(
            f"unknown minSeverity {min_severity!r}; expected one of {', '.join(SEVERITY_RANK)}"
        )
    unknown = sorted({r for r in rules if r not in RULE_NAMES})
    if unknown:
        problems.append(
            f"unknown rule(s) {', '.join(map(repr, unknown))}; expected alert classes "
            f"({', '.join(c.value for c in AlertClass)}) or reason codes"
        )
    if problems:
        raise InvalidInput("invalid webhook filter: " + "; ".join(problems))
    return min_severity, sorted(set(rules))


def webhook_owner(session: Session, organization_id: int) -> Organization:
    """The rights holder an endpoint belongs to (404 unknown, 422 not a rights holder)."""
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"no organization {organization_id}")
    if org.role != Role.RIGHTS_HOLDER:
        raise InvalidInput(
            f"organization {org.name!r} is a {org.role.value}; only rights holders have webhooks"
        )
    return org


def _allowlisted(settings: Settings, url: str) -> bool:
    """Whether the URL's host is on the delivery allow-list (a literal address in one of its
    networks, or a host it names): then it is accepted even when private."""
    try:
        host = (urlsplit(url.strip()).hostname or "").rstrip(".")
        networks, hosts = parse_allowlist(settings.webhook_allowed_hosts)
    except (ValueError, InvalidInput):
        return False
    if host in hosts:
        return True
    return (
        bool(host)
        and refused_address(host, networks) is None
        and any(ip_address(host) in n for n in networks)
    )


def get_endpoint(session: Session, organization_id: int) -> WebhookEndpoint:
    endpoint = session.exec(
        select(WebhookEndpoint).where(WebhookEndpoint.organization_id == organization_id)
    ).first()
    if endpoint is None:
        raise NotFound(f"organization {organization_id} has no webhook endpoint")
    return endpoint


def put_endpoint(
    session: Session,
    settings: Settings,
    organization_id: int,
    url: str,
    min_severity: str = "low",
    rules: Sequence[str] = (),
    enabled: bool = True,
) -> tuple[WebhookEndpoint, str | None]:
    """Create or replace an organization's endpoint. Returns (endpoint, secret): the secret
    only when the endpoint is new (it is never readable again; rotate to get a new one).
    Enabling an endpoint the gateway disabled (410 Gone) lets its held deliveries go."""
    webhook_owner(session, organization_id)
    url = validate_endpoint_url(
        url, settings.webhook_private_hosts_allowed or _allowlisted(settings, url)
    )
    try:
        httpx.URL(url)  # what the sender will parse: refuse now what it could never send
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidInput(f"webhook url {url!r} is not a valid URL: {exc}") from None
    min_severity, rules = validate_filter(min_severity, rules)
    endpoint = session.exec(
        select(WebhookEndpoint).where(WebhookEndpoint.organization_id == organization_id)
    ).first()
    secret: str | None = None
    now = utcnow()
    if endpoint is None:
        secret = generate_secret()
        endpoint = WebhookEndpoint(
            organization_id=organization_id,
            url=url,
            secret_encrypted=seal(settings.secret_key, secret.encode()),
            created_at=now,
        )
    endpoint.url, endpoint.min_severity, endpoint.rules = url, min_severity, rules
    endpoint.enabled = enabled
    if enabled:
        endpoint.disabled_reason = None
    endpoint.updated_at = now
    session.add(endpoint)
    if enabled:  # what waited for the endpoint goes now, not at its backed-off time
        session.execute(
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.organization_id) == organization_id,
                col(WebhookDelivery.status).in_(DUE),
                col(WebhookDelivery.next_attempt_at) > now,
            )
            .values(next_attempt_at=now)
        )
    session.commit()
    session.refresh(endpoint)
    return endpoint, secret


def rotate_secret(
    session: Session, settings: Settings, organization_id: int
) -> tuple[WebhookEndpoint, str]:
    """A new secret for the endpoint; the old one keeps signing (as a second ``v1=``) for
    `webhook_secret_grace_seconds`, so the receiver can be switched without a gap."""
    endpoint = get_endpoint(session, organization_id)
    secret = generate_secret()
    now = utcnow()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + timedelta(
        seconds=settings.webhook_secret_grace_seconds
    )
    endpoint.secret_encrypted = seal(settings.secret_key, secret.encode())
    endpoint.updated_at = now
    session.add(endpoint)
    session.commit()
    session.refresh(endpoint)
    return endpoint, secret


def delete_endpoint(session: Session, organization_id: int) -> int:
    """Remove the endpoint; its undelivered deliveries are cancelled (kept, for the record).
    Returns how many were cancelled."""
    endpoint = get_endpoint(session, organization_id)
    result = session.execute(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.organization_id) == organization_id,
            col(WebhookDelivery.status).in_((*DUE, DeliveryStatus.FAILED.value)),
        )
        .values(
            status=DeliveryStatus.CANCELLED.value,
            last_error="endpoint removed before delivery",
            updated_at=utcnow(),
        )
    )
    session.delete(endpoint)
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def enqueue_test(session: Session, organization_id: int) -> WebhookDelivery:
    """Queue a `webhook.test` event, so a holder can check its receiver end to end."""
    get_endpoint(session, organization_id)
    delivery = new_delivery(organization_id, EVENT_TEST, None, {"message": "BorderLedger test"})
    session.add(delivery)
    session.commit()
    session.refresh(delivery)
    return delivery


def redeliver(session: Session, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again, now, under the same delivery id (and a fresh attempt budget
    when it had failed). Refused while it is being sent or once its endpoint is gone."""
    now = utcnow()
    if delivery.status == DeliveryStatus.CANCELLED.value:
        raise Conflict(f"delivery {delivery.delivery_id} was cancelled with its endpoint")
    if delivery.claimed_until is not None and delivery.claimed_until > now:
        raise Conflict(f"delivery {delivery.delivery_id} is being sent right now")
    endpoint = get_endpoint(session, delivery.organization_id)
    if not endpoint.enabled:
        why = endpoint.disabled_reason or "disabled by its owner"
        raise Conflict(f"the webhook endpoint is disabled ({why}); enable it with PUT first")
    if delivery.status in (DeliveryStatus.DELIVERED.value, DeliveryStatus.FAILED.value):
        delivery.attempts = 0
    delivery.status = (
        DeliveryStatus.PENDING.value if delivery.attempts == 0 else DeliveryStatus.FAILING.value
    )
    delivery.next_attempt_at = now
    delivery.updated_at = now
    session.add(delivery)
    session.commit()
    session.refresh(delivery)
    return delivery


def wake_sender(gateway: Gateway) -> None:
    """Have this process's sender look at the outbox now, not at its next poll."""
    if gateway.webhook_thread is not None:
        gateway.webhook_thread.wake.set()


# ------------------------------------------------------------------ who may see and manage


def may_manage(principal: Principal, organization_id: int) -> None:
    """Admins manage any holder's endpoint; a rights holder only its own: another's is
    answered as absent (404), its existence not the caller's to learn."""
    if not scope_of(principal, Role.ADMIN).allows(organization_id):
        raise NotFound(f"organization {organization_id} has no webhook endpoint")


def backlog(session: Session, organization_id: int) -> dict[str, int]:
    """An endpoint's undelivered deliveries, by status."""
    counts = session.exec(
        select(WebhookDelivery.status, func.count())
        .where(
            WebhookDelivery.organization_id == organization_id,
            col(WebhookDelivery.status).in_((*DUE, DeliveryStatus.FAILED.value)),
        )
        .group_by(WebhookDelivery.status)
    ).all()
    return {s: int(n) for s, n in counts}


def list_deliveries(
    session: Session,
    principal: Principal,
    organization: int | None,
    status: str | None,
    alert: str | None,
    event: str | None,
    limit: int,
) -> list[WebhookDelivery]:
    """Newest first; a rights holder's own only."""
    scope = scope_of(principal, Role.ADMIN)
    query = scope.confine(select(WebhookDelivery), WebhookDelivery.organization_id, organization)
    if query is None:
        return []
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if alert is not None:
        query = query.where(WebhookDelivery.alert_id == alert)
    if event is not None:
        query = query.where(WebhookDelivery.event == event)
    return list(session.exec(query.order_by(col(WebhookDelivery.id).desc()).limit(limit)).all())


def delivery_of(session: Session, principal: Principal, delivery_id: str) -> WebhookDelivery:
    """A delivery the caller may see. Another holder's is reported as absent: its existence
    is not theirs to learn."""
    row = session.exec(
        select(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_id)
    ).first()
    if row is None or not scope_of(principal, Role.ADMIN).allows(row.organization_id):
        raise NotFound(f"no webhook delivery {delivery_id!r}")
    return row
