"""Route policies in force, for the registry admin to read (docs/locations.md).

A route policy lives with its batch (`gateway_batches.route_policy`): given at enrollment, or,
when the enrollment gave none, copied from the holder's published product guide at that moment
(docs/guides.md). The guide's policy is the default of the holder's *next* batches of that
GTIN. There is deliberately no edit here: a batch's policy is part of what it was enrolled
with and is shipped in trust bundles that offline devices already hold, so changing it in the
gateway would make online and offline verdicts disagree; a holder changes the default by
publishing a new guide version, and a new lot gets the new policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from api.models import GatewayBatch, Organization
from api.services.guides import default_route_policy


@dataclass(frozen=True)
class BatchPolicy:
    batch_id: str
    gtin: str
    lot: str
    holder: str
    enrolled: datetime
    policy: dict[str, Any] | None


@dataclass(frozen=True)
class GuideDefault:
    gtin: str
    holder: str
    policy: dict[str, Any]


def in_force(
    session: Session, gtin: str | None = None, limit: int = 100
) -> tuple[list[BatchPolicy], list[GuideDefault]]:
    """The newest batches (of `gtin`, or all) with their policies, and the guide defaults of
    the (holder, GTIN) pairs among them."""
    query = select(GatewayBatch, Organization.name).join(
        Organization, col(Organization.id) == col(GatewayBatch.organization_id)
    )
    if gtin:
        query = query.where(GatewayBatch.gtin == gtin)
    rows = session.exec(query.order_by(col(GatewayBatch.created_at).desc()).limit(limit)).all()
    batches = [
        BatchPolicy(b.batch_id, b.gtin, b.lot, name, b.created_at, b.route_policy)
        for b, name in rows
    ]
    defaults: list[GuideDefault] = []
    seen: set[tuple[int, str]] = set()
    for b, name in rows:
        pair = (b.organization_id, b.gtin)
        if pair in seen:
            continue
        seen.add(pair)
        policy = default_route_policy(session, b.organization_id, b.gtin)
        if policy:
            defaults.append(GuideDefault(b.gtin, name, policy))
    return batches, defaults
