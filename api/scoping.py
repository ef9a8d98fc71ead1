"""What a principal may see of records that belong to an organization or another party.

Two rules, used by every service that reads records of more than one party:

- `scope_of` / `Scope`: records an organization keeps for itself (jobs, devices, webhook
  endpoints and deliveries, a batch it may change): its own, or every organization's for the
  roles a route names as seeing all.
- `view_of` / `View`: records about products and their journeys (batches read, alerts,
  custody timelines, verification): the registry admin reads everything; a rights holder its
  own products; an auditor what the admin granted it (`AuditorGrant`: every holder, or named
  ones); a customs agency what it recorded and the items it scanned. Who owns a product is
  `gtin_holders`, the one ownership rule.

A record outside the caller's scope is answered as absent (404), as an unknown one is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, false, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from api.models import (
    Alert,
    AuditorGrant,
    GatewayBatch,
    IndexedBatch,
    Organization,
    Role,
    ScanEvent,
)
from api.principal import Principal
from ledger.errors import NotFound

T = TypeVar("T")


@dataclass(frozen=True)
class Scope:
    """The organization whose records a caller may see; `None`: every organization's."""

    organization_id: int | None

    def allows(self, owner_id: int | None) -> bool:
        """Whether a record owned by `owner_id` is within the scope."""
        return self.organization_id is None or owner_id == self.organization_id

    def confine(
        self, query: SelectOfScalar[T], owner: Any, requested: int | None = None
    ) -> SelectOfScalar[T] | None:
        """`query` filtered on its `owner` column: to the organization the caller asked for
        (`requested`, None: any), and to its own when it is confined to it. None when it asked
        for another organization's records, which are not its to list."""
        if requested is not None and not self.allows(requested):
            return None
        wanted = requested if self.organization_id is None else self.organization_id
        return query if wanted is None else query.where(owner == wanted)


def scope_of(principal: Principal, *sees_all: Role) -> Scope:
    """The caller's scope: every organization's records for the roles in `sees_all`, its own
    organization's for any other role."""
    if principal.role in sees_all:
        return Scope(None)
    return Scope(principal.organization_id)


# ----------------------------------------------------------------- parties and their records


@dataclass(frozen=True)
class View:
    """What of other parties' records a principal reads (docs/architecture.md, "What a
    caller sees").

    - `everything`: the registry admin, and an auditor granted every holder;
    - `holders`: the rights holders whose products, batches and alerts it reads: a rights
      holder itself, or the holders an auditor was granted by name;
    - `agency`: a customs agency, which reads what it recorded itself (scans, captured
      events), the alerts its scans raised, and everything about the items it scanned.
    An auditor without grants reads nothing of other parties."""

    organization_id: int
    everything: bool = False
    holders: frozenset[int] = frozenset()
    agency: bool = False

    def reads_holder(self, holder_id: int | None) -> bool:
        """Whether the records of rights holder `holder_id` are within the view."""
        return self.everything or (holder_id is not None and holder_id in self.holders)


def view_of(session: Session, principal: Principal) -> View:
    """The caller's view, from its role (and an auditor's grants, `AuditorGrant`)."""
    org = principal.organization_id
    role = principal.role
    if role == Role.ADMIN:
        return View(org, everything=True)
    if role == Role.RIGHTS_HOLDER:
        return View(org, holders=frozenset({org}))
    if role == Role.CUSTOMS:
        return View(org, agency=True)
    granted = session.exec(
        select(AuditorGrant.holder_id).where(AuditorGrant.auditor_id == org)
    ).all()
    if any(holder is None for holder in granted):
        return View(org, everything=True)
    return View(org, holders=frozenset(h for h in granted if h is not None))


def gtin_holders(
    session: Session, gtins: Iterable[str] | None = None, holders: Iterable[int] | None = None
) -> set[tuple[str, int]]:
    """(GTIN, rights holder organization) pairs: who owns which GTIN, as far as this gateway
    knows — the holders of its batches, enrolled here (`gateway_batches`, registered or still
    queued) or registered on chain by a holder's accredited address (`idx_batches`).
    Narrowed to `gtins` and/or `holders` when given.

    The one ownership rule of the gateway: every "own products" check goes through it, so a
    GTIN binding on chain plugs in here."""
    wanted = sorted(set(gtins)) if gtins is not None else None
    owners = sorted(set(holders)) if holders is not None else None
    enrolled = select(GatewayBatch.gtin, GatewayBatch.organization_id).distinct()
    indexed = (
        select(IndexedBatch.gtin, Organization.id)
        .join(Organization, col(Organization.address) == col(IndexedBatch.holder))
        .where(Organization.role == Role.RIGHTS_HOLDER)
        .distinct()
    )
    if wanted is not None:
        enrolled = enrolled.where(col(GatewayBatch.gtin).in_(wanted))
        indexed = indexed.where(col(IndexedBatch.gtin).in_(wanted))
    if owners is not None:
        enrolled = enrolled.where(col(GatewayBatch.organization_id).in_(owners))
        indexed = indexed.where(col(Organization.id).in_(owners))
    pairs = {(g, o) for g, o in session.exec(enrolled).all()}
    pairs |= {(g, o) for g, o in session.exec(indexed).all() if o is not None}
    return pairs


def reads_gtin(session: Session, view: View, gtin: str) -> bool:
    """Whether the view covers the products of `gtin` (officers: every product)."""
    if view.everything or view.agency:
        return True
    if not view.holders:
        return False
    return bool(gtin_holders(session, gtins=[gtin], holders=view.holders))


def may_verify(engine: Engine, principal: Principal, gtin: str) -> None:
    """A rights holder verifies its own products only (`NotFound` for another brand's or an
    unknown GTIN); officers and admins verify anything."""
    if principal.role != Role.RIGHTS_HOLDER:
        return
    with Session(engine) as session:
        if reads_gtin(session, view_of(session, principal), gtin):
            return
    raise NotFound(f"no product of GTIN {gtin} enrolled by {principal.organization.name!r}")


def scanned_item(session: Session, organization_id: int, gtin: str, serial: str) -> bool:
    """Whether the organization scanned the item (GTIN, serial) at least once."""
    found = session.exec(
        select(ScanEvent.id)
        .where(
            ScanEvent.organization_id == organization_id,
            ScanEvent.gtin == gtin,
            ScanEvent.serial == serial,
        )
        .limit(1)
    ).first()
    return found is not None


def alert_clause(session: Session, view: View) -> ColumnElement[bool] | None:
    """The condition on `alerts` rows the view reads (None: every alert).

    A rights holder's (or a granted auditor's): alerts on the holders' batches, and GTIN-level
    alerts (no batch) on their GTINs. A customs agency's: alerts its scans raised, and alerts
    on items it scanned."""
    if view.everything:
        return None
    if view.agency:
        scanned = (
            select(ScanEvent.id)
            .where(
                ScanEvent.organization_id == view.organization_id,
                col(ScanEvent.gtin) == col(Alert.gtin),
                col(ScanEvent.serial) == col(Alert.serial),
            )
            .exists()
        )
        return or_(col(Alert.raised_by) == view.organization_id, scanned)
    if not view.holders:
        return false()
    gtins = sorted({g for g, _ in gtin_holders(session, holders=view.holders)})
    return or_(
        col(Alert.organization_id).in_(sorted(view.holders)),
        and_(col(Alert.organization_id).is_(None), col(Alert.gtin).in_(gtins)),
    )
