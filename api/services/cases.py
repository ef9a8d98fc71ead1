"""Customs cases for the routes: open, list, read (redacted for the viewer), act, approve,
and the parties' single-use links. The rules are the domain's (`cases`): this module loads
and stores, decides who the viewer is, and appends every action to the custody log in the
transaction that stores it (personal data only as salted commitments).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.case_models import (
    Case,
    CaseAction,
    CaseClock,
    CaseHolder,
    CaseItem,
    CaseLine,
    CaseLink,
    CaseNotice,
    CaseParty,
)
from api.custody import store as log_store
from api.models import (
    Alert,
    GatewayBatch,
    IndexedBatch,
    Organization,
    Role,
    ScanEvent,
    User,
    utcnow,
)
from api.principal import Principal
from api.schemas import CaseActionRequest, CaseCreate, CasePartyAnswer
from api.scoping import alert_clause, view_of
from api.services import guides, rollup, statistics
from cases import commitments
from cases.calendar import Calendar, DayUnit, deadline, get_calendar
from cases.disclosure import Viewer, redact
from cases.machine import Facts, Step, check_approver, plan
from cases.profiles import ClockRule, Profile, get_profile
from custody import entries
from ledger.canonical import canonical_json
from ledger.errors import Conflict, InvalidInput, NotFound, PermissionDenied

#: How long a party's single-use link stays valid.
LINK_DAYS = 30
#: Action parameters are stored and committed to; keep them small.
MAX_PARAMS_BYTES = 16_384
LIMITED_USE_NOTICE = (
    "Limited use: this information is disclosed under 19 CFR 133.21 and the Trade Secrets Act "
    "(18 U.S.C. 1905) only to determine whether the goods infringe and to enforce the right."
)
APPLIED, PENDING, APPROVED = "applied", "pending_approval", "approved"
#: Scans of the shipment linked when a case opens, at most (more are added one by one).
MAX_OPEN_ITEMS = 1000


def utc(moment: datetime) -> datetime:
    """Times read back from SQLite are naive UTC: make them aware."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def actor_key(principal: Principal) -> str:
    """An actor as `kind:id` (an API key today, a user later), for approvals and the log."""
    return f"{principal.actor.kind}:{principal.actor.id}"


def actor_names(session: Session, principal: Principal, keys: Sequence[str]) -> dict[str, str]:
    """Names to show for `kind:id` actor keys: the caller's own organization's users by name
    (an officer reads who in its agency did what); anything else stays the key."""
    ids = {int(k.split(":", 1)[1]) for k in keys if k.startswith("user:") and k[5:].isdigit()}
    if not ids:
        return {}
    rows = session.exec(
        select(User.id, User.name).where(
            col(User.id).in_(sorted(ids)), User.organization_id == principal.organization_id
        )
    ).all()
    return {f"user:{uid}": name for uid, name in rows}


def organization_names(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """Names of the rights holders a case view lists (a reader who may read `rightsHolders`
    may read who they are)."""
    if not ids:
        return {}
    rows = session.exec(
        select(Organization.id, Organization.name).where(col(Organization.id).in_(sorted(ids)))
    ).all()
    return {oid: name for oid, name in rows if oid is not None}


def calendar_of(case: Case) -> Calendar:
    return get_calendar(case.calendar)


# ------------------------------------------------------------------------------------ open


def open_case(
    session: Session, principal: Principal, body: CaseCreate, now: datetime | None = None
) -> Case:
    """Store a case with its lines, holders and parties, start the clocks that run from
    presentation and log the opening; all in one transaction."""
    now = now or utcnow()
    profile = get_profile(body.profile)
    if profile.calendar == "member_state":
        if body.memberState is None:
            raise InvalidInput(f"profile {profile.id!r} needs memberState (the EU country)")
        calendar = get_calendar(body.memberState)
    else:
        calendar = get_calendar(profile.calendar)
    zone = body.timezone or calendar.timezone
    calendar.zone(zone)
    if body.presentedAt > now + timedelta(minutes=5):
        raise InvalidInput("presentedAt is in the future")
    if body.presentedAt < now - timedelta(days=3660):
        raise InvalidInput("presentedAt is more than ten years ago")
    holders = set(body.rightsHolders)
    port, source_ref, gtin = body.port, None, None
    items: list[ScanEvent] = []
    if body.source == "scan":
        if body.scanId is None:
            raise InvalidInput("source 'scan' needs scanId")
        scan = session.exec(select(ScanEvent).where(ScanEvent.scan_id == body.scanId)).first()
        # Another agency's scan is not the caller's to know of (nor the holder it names).
        if scan is None or not (
            principal.role == Role.ADMIN or scan.organization_id == principal.organization_id
        ):
            raise NotFound(f"no scan {body.scanId!r}")
        source_ref, port, gtin = scan.scan_id, port or scan.location, scan.gtin
        items = _shipment_scans(session, scan)
    elif body.source == "alert":
        if body.alertId is None:
            raise InvalidInput("source 'alert' needs alertId")
        # An alert outside the caller's view (api.scoping.alert_clause) is answered as absent.
        query = select(Alert).where(Alert.alert_id == body.alertId)
        clause = alert_clause(session, view_of(session, principal))
        alert = session.exec(query if clause is None else query.where(clause)).first()
        if alert is None:
            raise NotFound(f"no alert {body.alertId!r}")
        source_ref, port, gtin = alert.alert_id, port or alert.location, alert.gtin or None
        if alert.organization_id is not None:
            holders.add(alert.organization_id)
    # the holders of the scanned batches are the case's rights holders too (GTIN bindings)
    batch_holders: dict[str | None, int | None] = {}
    for item in items:
        if item.batch_id not in batch_holders:
            batch_holders[item.batch_id] = _holder_of_batch(session, item.batch_id)
    holders |= {h for h in batch_holders.values() if h is not None}
    if port is None:
        raise InvalidInput("port is required (UN/LOCODE) when the source does not give one")
    if holders:
        found = session.exec(
            select(Organization.id).where(
                col(Organization.id).in_(holders), Organization.role == Role.RIGHTS_HOLDER
            )
        ).all()
        missing = sorted(holders - set(found))
        if missing:
            raise InvalidInput(f"rightsHolders: no rights holder organization {missing}")
    roles = [p.role for p in body.parties]
    if len(set(roles)) != len(roles):
        raise InvalidInput("parties: one party per role")

    case = Case(
        case_id=str(uuid.uuid4()),
        agency_id=principal.organization_id,
        profile=profile.id,
        jurisdiction=profile.jurisdiction,
        calendar=calendar.name,
        timezone=zone,
        state=profile.initial,
        stage=profile.stages[0],
        perishable=body.perishable,
        source=body.source,
        source_ref=source_ref,
        reference=body.reference,
        mode=body.mode,
        port=port,
        origin=body.origin,
        departure=body.departure,
        right=profile.right,
        hs_code=body.hsCode,
        description=body.description,
        currency=body.currency,
        presented_at=body.presentedAt,
        opened_at=now,
        details={"identifying_marks": list(body.identifyingMarks)} if body.identifyingMarks else {},
    )
    # A line without its unit MSRP takes the published product guide's (same currency),
    # when its GTIN has one; most seized goods have none and stay at 0.
    units = [
        line.unitMsrpCents
        if "unitMsrpCents" in line.model_fields_set or not (line.gtin or gtin)
        else guides.unit_msrp(session, line.gtin or gtin or "", body.currency) or 0
        for line in body.lines
    ]
    for line, unit in zip(body.lines, units, strict=True):
        case.quantity += line.quantity
        case.msrp_cents += line.quantity * unit
    case.line_count = len(body.lines)
    session.add(case)
    session.flush()
    assert case.id is not None
    session.add_all(
        CaseLine(
            case_pk=case.id,
            category=line.category,
            right=line.right or profile.right,
            gtin=line.gtin or gtin,
            description=line.description,
            quantity=line.quantity,
            unit_msrp_cents=unit,
            msrp_cents=line.quantity * unit,
            agency_id=case.agency_id,
            origin=case.origin,
            mode=case.mode,
            port=case.port,
        )
        for line, unit in zip(body.lines, units, strict=True)
    )
    session.add_all(CaseHolder(case_pk=case.id, organization_id=h) for h in sorted(holders))
    party_commitments = {}
    for party in body.parties:
        salt = commitments.new_salt()
        data = party.model_dump()
        commitment = commitments.commit(salt, data)
        party_commitments[party.role] = commitment
        session.add(
            CaseParty(
                case_pk=case.id,
                role=party.role,
                name=party.name,
                address=party.address,
                country=party.country,
                salt=salt,
                commitment=commitment,
            )
        )
    for rule in profile.clocks_started_by("presented"):
        _start_clock(session, case, calendar, rule, body.presentedAt, now)
    opening = str(uuid.uuid4())
    for scan in items:
        session.add(
            CaseItem(
                case_pk=case.id,
                scan_id=scan.scan_id,
                holder_id=batch_holders[scan.batch_id],
                action_id=opening,
                created_at=now,
            )
        )
    session.flush()
    row = CaseAction(
        action_id=opening,
        case_pk=case.id,
        idempotency_key="open",
        action="open",
        by="officer",
        actor=actor_key(principal),
        organization_id=principal.organization_id,
        params={},
        status=APPLIED,
        state_before=case.state,
        state_after=case.state,
        stage_after=case.stage,
        created_at=now,
        applied_at=now,
    )
    session.add(row)
    session.flush()
    record = _record(case, row, now)
    record["opened"] = {
        "source": case.source,
        "source_ref": case.source_ref,
        "port": case.port,
        "mode": case.mode,
        "presented_at": entries.iso_utc(case.presented_at),
        "lines": [
            {"category": line.category, "quantity": line.quantity, "msrp_cents": line.msrp_cents}
            for line in session.exec(select(CaseLine).where(CaseLine.case_pk == case.id)).all()
        ],
        "rights_holders": sorted(holders),
        "parties": party_commitments,
        "items": sorted(scan.scan_id for scan in items),
    }
    row.log_index = _log(session, [(row, record)])[0]
    _refresh_next_due(session, case)
    session.commit()
    return case


def _shipment_scans(session: Session, scan: ScanEvent) -> list[ScanEvent]:
    """The opening scan and its agency's other scans of the same shipment reference (the
    case's scanned items), oldest first, at most MAX_OPEN_ITEMS."""
    if scan.shipment is None:
        return [scan]
    others = session.exec(
        select(ScanEvent)
        .where(
            ScanEvent.shipment == scan.shipment,
            ScanEvent.organization_id == scan.organization_id,
            ScanEvent.scan_id != scan.scan_id,
        )
        .order_by(col(ScanEvent.scanned_at), col(ScanEvent.id))
        .limit(MAX_OPEN_ITEMS - 1)
    ).all()
    return [scan, *others]


def _item_scan(session: Session, case: Case, params: dict[str, Any]) -> ScanEvent:
    """The scan an `add_item` action names: one of the case's agency's scans (another
    agency's is answered as absent) that is not yet an item of the case."""
    scan_id = params.get("scanId")
    if not isinstance(scan_id, str) or not 1 <= len(scan_id) <= 36:
        raise InvalidInput("params.scanId must be a scan id (a string of at most 36 characters)")
    scan = session.exec(select(ScanEvent).where(ScanEvent.scan_id == scan_id)).first()
    if scan is None or scan.organization_id != case.agency_id:
        raise NotFound(f"no scan {scan_id!r}")
    linked = session.exec(
        select(CaseItem.id).where(CaseItem.case_pk == case.id, CaseItem.scan_id == scan_id)
    ).first()
    if linked is not None:
        raise Conflict(f"scan {scan_id!r} is already an item of case {case.case_id}")
    return scan


def _holder_of_batch(session: Session, batch_id: str | None) -> int | None:
    if batch_id is None:
        return None
    batch = session.get(GatewayBatch, batch_id)
    if batch is not None:
        return batch.organization_id
    indexed = session.get(IndexedBatch, batch_id)
    if indexed is None:
        return None
    org = session.exec(
        select(Organization).where(func.lower(Organization.address) == indexed.holder.lower())
    ).first()
    return org.id if org is not None else None


def _start_clock(
    session: Session,
    case: Case,
    calendar: Calendar,
    rule: ClockRule,
    started: datetime,
    now: datetime,
) -> CaseClock:
    assert case.id is not None
    d = deadline(
        calendar,
        started,
        rule.days_for(case.perishable),
        rule.unit,
        case.timezone,
        rule.remind_before,
    )
    clock = CaseClock(
        case_pk=case.id,
        name=rule.name,
        days=d.days,
        unit=rule.unit.value,
        started_at=started,
        due_day=d.due.isoformat(),
        due_at=d.due_at,
        remind_at=min(d.remind_at, d.due_at),
    )
    session.add(clock)
    return clock


def _refresh_next_due(session: Session, case: Case) -> None:
    session.flush()
    case.next_due_at = session.exec(
        select(func.min(CaseClock.due_at)).where(
            CaseClock.case_pk == case.id, CaseClock.status == "running"
        )
    ).one()
    session.add(case)


# --------------------------------------------------------------------------------- viewers


def viewer_of(session: Session, principal: Principal, case: Case) -> Viewer:
    """Who the caller is to the case, from its view (`api.scoping.view_of`), so cases follow
    the rule every other party's record does (docs/cases.md, "Who reads a case"):

    - the registry admin and the officers of the case's agency: everything (`OWN_AGENCY`);
    - a rights holder named on the case: what the disclosure stage reveals (`RIGHTS_HOLDER`);
    - an auditor granted every holder, or one of the case's holders: the no-personal-data
      view (`OTHER_AGENCY`), read only;
    - anyone else (another agency, another holder, an auditor without the grant): not theirs
      to know of (`OTHER_HOLDER`, answered 404)."""
    view = view_of(session, principal)
    if principal.role == Role.ADMIN or (view.agency and view.organization_id == case.agency_id):
        return Viewer.OWN_AGENCY
    if view.agency:
        return Viewer.OTHER_HOLDER
    holders = session.exec(
        select(CaseHolder.organization_id).where(CaseHolder.case_pk == case.id)
    ).all()
    if principal.role == Role.RIGHTS_HOLDER:
        named = principal.organization_id in holders
        return Viewer.RIGHTS_HOLDER if named else Viewer.OTHER_HOLDER
    if view.everything or any(view.reads_holder(h) for h in holders):
        return Viewer.OTHER_AGENCY
    return Viewer.OTHER_HOLDER


def load(session: Session, principal: Principal, case_id: str) -> tuple[Case, Viewer]:
    """The case and who the caller is to it; 404 for a case the caller may not know of."""
    case = session.exec(select(Case).where(Case.case_id == case_id)).first()
    if case is None:
        raise NotFound(f"no case {case_id!r}")
    viewer = viewer_of(session, principal, case)
    if viewer is Viewer.OTHER_HOLDER:
        raise NotFound(f"no case {case_id!r}")
    return case, viewer


# ----------------------------------------------------------------------------------- reads


def _party(row: CaseParty | None) -> dict[str, Any] | None:
    if row is None:
        return None
    if row.erased_at is not None:
        return {"erased": True, "commitment": row.commitment}
    return {"name": row.name, "address": row.address, "country": row.country}


def clock_view(case: Case, clock: CaseClock, now: datetime) -> dict[str, Any]:
    calendar = calendar_of(case)
    unit = DayUnit(clock.unit)
    due_day = datetime.fromisoformat(clock.due_day).date()
    today = calendar.local_date(now, case.timezone)
    left = (
        (due_day - today).days
        if unit is DayUnit.CALENDAR
        else calendar.business_days_between(today, due_day)
    )
    running = clock.status == "running"
    return {
        "name": clock.name,
        "unit": clock.unit,
        "days": clock.days,
        "startedAt": utc(clock.started_at),
        "dueDay": clock.due_day,
        "dueAt": utc(clock.due_at),
        "remindAt": utc(clock.remind_at),
        "daysLeft": left if running else None,
        "status": clock.status,
        "overdue": clock.status == "expired" or (running and utc(clock.due_at) <= now),
    }


def document(session: Session, case: Case, now: datetime) -> dict[str, Any]:
    """Every field of a case, under the disclosure field names (`cases.disclosure_fields`)."""
    profile = get_profile(case.profile)
    lines = session.exec(select(CaseLine).where(CaseLine.case_pk == case.id)).all()
    parties = {
        p.role: p for p in session.exec(select(CaseParty).where(CaseParty.case_pk == case.id))
    }
    clocks = session.exec(
        select(CaseClock).where(CaseClock.case_pk == case.id).order_by(col(CaseClock.due_at))
    ).all()
    actions = session.exec(
        select(CaseAction).where(CaseAction.case_pk == case.id).order_by(col(CaseAction.id))
    ).all()
    holders = session.exec(
        select(CaseHolder.organization_id).where(CaseHolder.case_pk == case.id)
    ).all()
    details = dict(case.details or {})
    stage_index = profile.stage_index(case.stage)
    items = session.exec(
        select(CaseItem, ScanEvent)
        .join(ScanEvent, col(ScanEvent.scan_id) == col(CaseItem.scan_id))
        .where(CaseItem.case_pk == case.id)
        .order_by(col(ScanEvent.scanned_at), col(CaseItem.id))
    ).all()
    return {
        "id": case.case_id,
        "profile": case.profile,
        "jurisdiction": case.jurisdiction,
        "state": case.state,
        "stage": case.stage,
        "outcome": case.outcome,
        "perishable": case.perishable,
        "presented_at": utc(case.presented_at),
        "opened_at": utc(case.opened_at),
        "clocks": [clock_view(case, c, now) for c in clocks],
        "history": [
            {"action": a.action, "at": utc(a.applied_at or a.created_at), "status": a.status}
            for a in actions
        ],
        "flags": list(case.flags or []),
        "reference": case.reference,
        "date_of_import": calendar_of(case)
        .local_date(case.presented_at, case.timezone)
        .isoformat(),
        "port": case.port,
        "description": case.description,
        "quantity": case.quantity,
        "origin": case.origin,
        "mode": case.mode,
        "hs_code": case.hs_code,
        "lines": [
            {
                "category": line.category,
                "right": line.right,
                "gtin": line.gtin,
                "description": line.description,
                "quantity": line.quantity,
                "unitMsrpCents": line.unit_msrp_cents,
                "msrpCents": line.msrp_cents,
            }
            for line in lines
        ],
        "items": [
            {
                "scanId": scan.scan_id,
                "gtin": scan.gtin,
                "serial": scan.serial,
                "lot": scan.lot,
                "verdict": scan.verdict,
                "port": scan.location,
                "scannedAt": utc(scan.scanned_at),
                "shipment": scan.shipment,
                "holder": item.holder_id,
            }
            for item, scan in items
        ],
        "msrp": {"currency": case.currency, "cents": case.msrp_cents},
        "images_redacted": details.get("images_redacted", []),
        "images_unredacted": details.get("images_unredacted", []),
        "identifying_marks": details.get("identifying_marks", []),
        "sample": details.get("sample"),
        "limited_use_notice": LIMITED_USE_NOTICE
        if "unredacted" in profile.stages and stage_index >= profile.stage_index("unredacted")
        else None,
        "manufacturer": _party(parties.get("manufacturer")),
        "exporter": _party(parties.get("exporter")),
        "importer": _party(parties.get("importer")),
        "declarant": _party(parties.get("declarant")),
        "consignee": _party(parties.get("consignee")),
        "rights_holders": list(holders),
        "custody": details.get("custody"),
        "notes": details.get("notes", []),
        "timeline": [
            {
                "actionId": a.action_id,
                "action": a.action,
                "status": a.status,
                "by": a.by,
                "actor": a.actor,
                "params": a.params,
                "stateBefore": a.state_before,
                "stateAfter": a.state_after,
                "approvedBy": a.approved_by,
                "logIndex": a.log_index,
                "at": utc(a.applied_at or a.created_at),
            }
            for a in actions
        ],
        "documents": details.get("documents", []),
    }


_CAMEL = {
    "presented_at": "presentedAt",
    "opened_at": "openedAt",
    "date_of_import": "dateOfImport",
    "hs_code": "hsCode",
    "images_redacted": "imagesRedacted",
    "images_unredacted": "imagesUnredacted",
    "identifying_marks": "identifyingMarks",
    "limited_use_notice": "limitedUseNotice",
    "rights_holders": "rightsHolders",
}


def shown(
    session: Session, case: Case, viewer: Viewer, now: datetime, reader: int | None = None
) -> dict[str, Any]:
    """The case as `viewer` may read it now (API field names). `reader` is the reading
    organization: a rights holder reads, of the items its stage discloses, only those of
    its own products (a case can name several holders); only the agency reads whose each is."""
    profile = get_profile(case.profile)
    visible = redact(document(session, case, now), profile, case.stage, viewer)
    assert visible is not None  # other holders were turned away by `load`
    if "items" in visible:
        mine = viewer is not Viewer.RIGHTS_HOLDER
        visible["items"] = [
            item
            if viewer is Viewer.OWN_AGENCY
            else {k: v for k, v in item.items() if k != "holder"}
            for item in visible["items"]
            if mine or (reader is not None and item["holder"] == reader)
        ]
    out = {_CAMEL.get(k, k): v for k, v in visible.items()}
    if viewer is Viewer.OWN_AGENCY:
        out["nextDueAt"] = utc(case.next_due_at) if case.next_due_at else None
        out["actionsAllowed"] = profile.actions_in(case.state)
    return out


def get_case(session: Session, principal: Principal, case_id: str) -> dict[str, Any]:
    case, viewer = load(session, principal, case_id)
    return shown(session, case, viewer, utcnow(), principal.organization_id)


def list_cases(
    session: Session,
    principal: Principal,
    state: str | None,
    open_only: bool,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """Next deadline first (overdue ones are the earliest, so on top), then cases without a
    running clock, newest first. An officer sees its agency's cases, a rights holder the cases
    on its rights (redacted by stage), an auditor those of the holders it was granted (without
    personal data), an admin all (`viewer_of`)."""
    rows = list_rows(session, principal, state, open_only, limit, offset)
    now = utcnow()
    clocks: dict[int, list[CaseClock]] = {}
    if rows:
        for clock in session.exec(
            select(CaseClock)
            .where(col(CaseClock.case_pk).in_([c.id for c in rows]))
            .order_by(col(CaseClock.due_at))
        ):
            clocks.setdefault(clock.case_pk, []).append(clock)
    viewer = {
        Role.RIGHTS_HOLDER: Viewer.RIGHTS_HOLDER,
        Role.AUDITOR: Viewer.OTHER_AGENCY,
    }.get(principal.role, Viewer.OWN_AGENCY)
    out = []
    for case in rows:
        profile = get_profile(case.profile)
        summary = _summary(case, clocks.get(case.id or 0, []), now)
        visible = redact(summary, profile, case.stage, viewer) or {}
        item = {_CAMEL.get(k, k): v for k, v in visible.items()}
        item["nextDueAt"] = utc(case.next_due_at) if case.next_due_at else None
        out.append(item)
    return out


def _summary(case: Case, clocks: list[CaseClock], now: datetime) -> dict[str, Any]:
    """What a list shows of a case (no lines, parties or timeline: one query per page)."""
    return {
        "id": case.case_id,
        "profile": case.profile,
        "jurisdiction": case.jurisdiction,
        "state": case.state,
        "stage": case.stage,
        "outcome": case.outcome,
        "perishable": case.perishable,
        "presented_at": utc(case.presented_at),
        "opened_at": utc(case.opened_at),
        "clocks": [clock_view(case, c, now) for c in clocks if c.status != "stopped"],
        "flags": list(case.flags or []),
        "reference": case.reference,
        "port": case.port,
        "description": case.description,
        "quantity": case.quantity,
        "origin": case.origin,
        "mode": case.mode,
    }


def list_rows(
    session: Session,
    principal: Principal,
    state: str | None,
    open_only: bool,
    limit: int,
    offset: int,
) -> Sequence[Case]:
    query = select(Case)
    view = view_of(session, principal)
    if principal.role == Role.ADMIN:
        pass
    elif view.agency:
        query = query.where(Case.agency_id == principal.organization_id)
    elif view.everything:
        pass  # an auditor granted every holder
    elif view.holders:
        named = (
            select(CaseHolder.case_pk)
            .where(
                col(CaseHolder.case_pk) == col(Case.id),
                col(CaseHolder.organization_id).in_(sorted(view.holders)),
            )
            .exists()
        )
        query = query.where(named)
    else:
        return []
    if state is not None:
        query = query.where(Case.state == state)
    if open_only:
        query = query.where(col(Case.outcome).is_(None))
    # Two index-ordered reads rather than one ORDER BY "next_due_at IS NULL", which no index
    # serves (every case of the agency would be sorted for each page): first the cases with a
    # running clock by due time, then, past them, those without, newest first.
    due = query.where(col(Case.next_due_at).is_not(None))
    rows = list(
        session.exec(
            due.order_by(col(Case.next_due_at), col(Case.id)).offset(offset).limit(limit)
        ).all()
    )
    if len(rows) == limit:
        return rows
    skipped = offset
    if rows or offset:
        counted = select(func.count()).select_from(due.subquery())
        skipped = max(0, offset - int(session.exec(counted).one()))
    rest = query.where(col(Case.next_due_at).is_(None)).order_by(col(Case.id).desc())
    rows += session.exec(rest.offset(skipped).limit(limit - len(rows))).all()
    return rows


# --------------------------------------------------------------------------------- actions


def _by(principal: Principal, viewer: Viewer) -> str:
    if viewer is Viewer.OWN_AGENCY:
        return "officer"
    if viewer is Viewer.RIGHTS_HOLDER:
        return "holder"
    raise PermissionDenied("only the case's agency and its rights holders act on a case")


def _facts(session: Session, case: Case) -> Facts:
    running = session.exec(
        select(CaseClock.name).where(CaseClock.case_pk == case.id, CaseClock.status == "running")
    ).all()
    return Facts(
        state=case.state,
        stage=case.stage,
        perishable=case.perishable,
        extensions=dict(case.extensions or {}),
        running=frozenset(running),
    )


def _check_params(params: dict[str, Any]) -> None:
    try:
        size = len(canonical_json(params))
    except InvalidInput as exc:
        raise InvalidInput(f"params: {exc}") from None
    if size > MAX_PARAMS_BYTES:
        raise InvalidInput(f"params: {size} bytes, at most {MAX_PARAMS_BYTES}")


def _replay(existing: CaseAction, action: str, params: dict[str, Any]) -> CaseAction:
    if existing.action != action or existing.params != params:
        raise Conflict(
            f"idempotency key {existing.idempotency_key!r} was used for another request "
            f"(action {existing.action!r})"
        )
    return existing


def apply_action(
    session: Session,
    principal: Principal,
    case_id: str,
    body: CaseActionRequest,
    now: datetime | None = None,
) -> tuple[CaseAction, bool, str | None]:
    """Apply (or, for seizure and destruction, request) an action once per idempotency key.
    Returns the action row, whether it was a replay, and a new party link token if the
    action sent a notice to the importer / declarant."""
    case, viewer = load(session, principal, case_id)
    by = _by(principal, viewer)
    return _act(session, case, by, actor_key(principal), principal.organization_id, body, now)


def _act(
    session: Session,
    case: Case,
    by: str,
    actor: str,
    organization_id: int | None,
    body: CaseActionRequest,
    now: datetime | None = None,
) -> tuple[CaseAction, bool, str | None]:
    now = now or utcnow()
    _check_params(body.params)
    existing = session.exec(
        select(CaseAction).where(
            CaseAction.case_pk == case.id, CaseAction.idempotency_key == body.idempotencyKey
        )
    ).first()
    if existing is not None:
        return _replay(existing, body.action, body.params), True, None
    profile = get_profile(case.profile)
    step = plan(profile, _facts(session, case), body.action, by, body.params)
    item = _item_scan(session, case, body.params) if step.action == "add_item" else None
    assert case.id is not None
    row = CaseAction(
        action_id=str(uuid.uuid4()),
        case_pk=case.id,
        idempotency_key=body.idempotencyKey,
        action=body.action,
        by=by,
        actor=actor,
        organization_id=organization_id,
        params=body.params,
        salt=commitments.new_salt(),
        status=PENDING if step.needs_approval else APPLIED,
        state_before=case.state,
        created_at=now,
    )
    token = None
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        session.rollback()
        existing = session.exec(
            select(CaseAction).where(
                CaseAction.case_pk == case.id, CaseAction.idempotency_key == body.idempotencyKey
            )
        ).first()
        if existing is None:
            raise
        return _replay(existing, body.action, body.params), True, None
    if step.needs_approval:
        row.log_index = _log(session, [(row, _record(case, row, now))])[0]
    else:
        token = _apply(session, case, profile, step, row, now)
    if item is not None:
        _add_item(session, case, item, row.action_id, now)
    session.commit()
    return row, False, token


def _add_item(session: Session, case: Case, scan: ScanEvent, action_id: str, now: datetime) -> None:
    """Link `scan` to the case; a rights holder of its batch not yet on the case joins it
    (as when the case opened from a scan of that batch)."""
    assert case.id is not None
    holder = _holder_of_batch(session, scan.batch_id)
    session.add(
        CaseItem(
            case_pk=case.id,
            scan_id=scan.scan_id,
            holder_id=holder,
            action_id=action_id,
            created_at=now,
        )
    )
    if holder is not None and session.get(CaseHolder, (case.id, holder)) is None:
        session.add(CaseHolder(case_pk=case.id, organization_id=holder))
    session.flush()


def approve(
    session: Session,
    principal: Principal,
    case_id: str,
    action_id: str,
    key: str,
    now: datetime | None = None,
) -> tuple[CaseAction, bool]:
    """A second officer approves a pending seizure or destruction: it is applied now, if the
    case's state still allows it. The approver must be another actor than the requester."""
    now = now or utcnow()
    case, viewer = load(session, principal, case_id)
    if _by(principal, viewer) != "officer":
        raise PermissionDenied("only an officer of the case's agency approves")
    row = session.exec(
        select(CaseAction).where(CaseAction.action_id == action_id, CaseAction.case_pk == case.id)
    ).first()
    if row is None:
        raise NotFound(f"no action {action_id!r} on case {case_id!r}")
    if row.status == APPROVED:
        if row.approved_by == actor_key(principal):
            return row, True
        raise Conflict(f"action {action_id!r} was already approved by {row.approved_by}")
    if row.status != PENDING:
        raise Conflict(f"action {action_id!r} is {row.status}; only pending actions are approved")
    check_approver(row.actor, actor_key(principal))
    profile = get_profile(case.profile)
    step = plan(profile, _facts(session, case), row.action, row.by, row.params)
    result = session.execute(
        update(CaseAction)
        .where(col(CaseAction.id) == row.id, col(CaseAction.status) == PENDING)
        .values(status=APPROVED, approved_by=actor_key(principal))
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        session.rollback()
        raise Conflict(f"action {action_id!r} was approved concurrently")
    row.status, row.approved_by = APPROVED, actor_key(principal)
    _ = key  # the approval's own key: a replay finds the action approved by the same actor
    _apply(session, case, profile, step, row, now)
    session.commit()
    return row, False


def _apply(
    session: Session, case: Case, profile: Profile, step: Step, row: CaseAction, now: datetime
) -> str | None:
    """Store what `step` changes: the case (under its version), clocks, details, documents;
    log it. Returns a party link token when a notice went to the importer / declarant."""
    assert case.id is not None
    details = dict(case.details or {})
    params = row.params
    if step.action == "custody":
        details["custody"] = {k: params.get(k) for k in ("storage", "seals") if k in params}
    elif step.action == "note":
        details["notes"] = [
            *details.get("notes", []),
            {"text": params.get("text", ""), "by": row.by, "at": entries.iso_utc(now)},
        ]
    elif step.action == "send_sample":
        details["sample"] = {
            "status": "sent",
            "bond": params.get("bond"),
            "sentAt": entries.iso_utc(now),
        }
    elif step.action in ("return_sample", "certify_sample_lost"):
        sample = dict(details.get("sample") or {})
        sample["status"] = "returned" if step.action == "return_sample" else "certified_lost"
        details["sample"] = sample
    elif step.action == "civil_fine":
        details["fine"] = params.get("amount")
    elif step.action == "post_bond":
        details["bond"] = {"amount": params.get("amount"), "postedAt": entries.iso_utc(now)}
    for key in ("images_redacted", "images_unredacted"):
        if isinstance(params.get(key), list):
            details[key] = params[key]
    if step.documents:
        details["documents"] = [
            *details.get("documents", []),
            *(
                {"name": d, "action": step.action, "at": entries.iso_utc(now)}
                for d in step.documents
            ),
        ]
    flags = list(case.flags or [])
    extensions = dict(case.extensions or {})
    if step.extend is not None:
        name, days = step.extend
        clock = session.exec(
            select(CaseClock).where(
                CaseClock.case_pk == case.id, CaseClock.name == name, CaseClock.status == "running"
            )
        ).one()
        calendar = calendar_of(case)
        due = calendar.add_days(
            datetime.fromisoformat(clock.due_day).date(), days, DayUnit(clock.unit)
        )
        clock.due_day, clock.days = due.isoformat(), clock.days + days
        clock.due_at = calendar.end_of_day(due, case.timezone)
        clock.remind_at = calendar.end_of_day(due - timedelta(days=1), case.timezone)
        clock.reminded_at = None
        session.add(clock)
        extensions[name] = extensions.get(name, 0) + 1
    if step.stop:
        session.execute(
            update(CaseClock)
            .where(
                col(CaseClock.case_pk) == case.id,
                col(CaseClock.name).in_(step.stop),
                col(CaseClock.status) == "running",
            )
            .values(status="stopped", stopped_at=now)
            .execution_options(synchronize_session=False)
        )
    outcome = profile.outcomes.get(step.state_after)
    values: dict[str, Any] = {
        "state": step.state_after,
        "stage": step.stage_after,
        "details": details,
        "flags": flags,
        "extensions": extensions,
        "version": case.version + 1,
        "updated_at": now,
    }
    if outcome is not None:
        values["outcome"] = outcome
        if case.outcome_at is None:
            values["outcome_at"] = now
    if outcome is not None:  # the rollup: out with what the case counted for, in below
        rollup.subtract(session.connection(), [case.id])
    result = session.execute(
        update(Case)
        .where(col(Case.id) == case.id, col(Case.version) == case.version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        session.rollback()
        raise Conflict(f"case {case.case_id} changed meanwhile; read it again and retry")
    for name, value in values.items():
        setattr(case, name, value)
    if outcome is not None:
        statistics.bump(session.connection())
        session.execute(
            update(CaseLine)
            .where(col(CaseLine.case_pk) == case.id)
            .values(outcome=case.outcome, outcome_at=case.outcome_at)
            .execution_options(synchronize_session=False)
        )
        rollup.add(session.connection(), [case.id])
    calendar = calendar_of(case)
    for rule in step.start:
        _start_clock(session, case, calendar, rule, now, now)
    row.state_after, row.stage_after, row.applied_at = step.state_after, step.stage_after, now
    session.add(row)
    session.flush()
    row.log_index = _log(session, [(row, _record(case, row, now))])[0]
    _refresh_next_due(session, case)
    token = None
    if any(d in _PARTY_NOTICES for d in step.documents):
        token = _new_link(session, case, now)
    return token


#: Documents that go to the importer / declarant with a single-use answer link.
_PARTY_NOTICES = {"notice_of_detention", "eu_notification_declarant"}


def _record(case: Case, row: CaseAction, now: datetime) -> dict[str, Any]:
    """The log entry of an action: who did what when, never personal data (the parameters,
    which may hold an answer's text, only as a salted commitment)."""
    params = row.params or {}
    return {
        "case_id": case.case_id,
        "action_id": row.action_id,
        "action": row.action,
        "status": row.status,
        "by": row.by,
        "actor": row.actor,
        "organization_id": row.organization_id,
        "state_before": row.state_before,
        "state_after": row.state_after,
        "stage": row.stage_after,
        "approved_by": row.approved_by,
        "params": commitments.commit(row.salt, params) if row.salt and params else None,
        "at": entries.iso_utc(now),
    }


def _log(session: Session, rows: list[tuple[CaseAction, dict[str, Any]]]) -> list[int]:
    pending = [
        log_store.Pending(
            entries.CASE, row.action_id, record, [entries.case_key(record["case_id"])]
        )
        for row, record in rows
    ]
    indexes = log_store.append(session.connection(), pending)
    for (row, record), index in zip(rows, indexes, strict=True):
        row.log_index, row.record = index, record
        session.add(row)
    return indexes


# ------------------------------------------------------------------------ parties' links


def _new_link(session: Session, case: Case, now: datetime) -> str:
    assert case.id is not None
    token = secrets.token_urlsafe(32)
    session.add(
        CaseLink(
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            case_pk=case.id,
            party="importer",
            created_at=now,
            expires_at=now + timedelta(days=LINK_DAYS),
        )
    )
    session.flush()
    return token


def _link(session: Session, token: str) -> tuple[CaseLink, Case]:
    digest = hashlib.sha256(token.encode()).hexdigest()
    link = session.exec(select(CaseLink).where(CaseLink.token_hash == digest)).first()
    if link is None:
        raise NotFound("unknown link")
    if utc(link.expires_at) <= utcnow():
        raise PermissionDenied("this link has expired; ask the customs office for a new one")
    case = session.exec(select(Case).where(Case.id == link.case_pk)).one()
    return link, case


def case_of_link(session: Session, token: str) -> Case:
    """The case a party's link opens (404 unknown, 403 expired); reading does not spend it."""
    return _link(session, token)[1]


def link_spent(session: Session, token: str) -> bool:
    """Whether the party already answered through this link (it answers once)."""
    return _link(session, token)[0].used_at is not None


def link_view(session: Session, token: str) -> dict[str, Any]:
    """The case as its importer / declarant may read it (the link is not spent by reading)."""
    _, case = _link(session, token)
    out = shown(session, case, Viewer.IMPORTER, utcnow())
    out["actionsAllowed"] = [
        name
        for name, rule in get_profile(case.profile).actions.items()
        if "importer" in rule.by and rule.allowed_in(case.state)
    ]
    return out


def link_answer(session: Session, token: str, body: CasePartyAnswer) -> CaseAction:
    """A party's answer through its link: applied once, and the link is spent with it."""
    link, case = _link(session, token)
    now = utcnow()
    if link.used_at is not None:
        raise Conflict("this link was already used; it answers once")
    spent = session.execute(
        update(CaseLink)
        .where(col(CaseLink.id) == link.id, col(CaseLink.used_at).is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(spent, "rowcount", 0) != 1:
        session.rollback()
        raise Conflict("this link was already used; it answers once")
    request = CaseActionRequest(
        action=body.action,
        idempotencyKey=f"link:{link.id}",
        params={"text": body.text} if body.text else {},
    )
    row, _, _ = _act(session, case, "importer", f"link:{link.id}", None, request, now)
    return row


def erase_party(session: Session, principal: Principal, case_id: str, role: str) -> None:
    """Erase a party's personal data (name, address, salt); the log's commitment stays."""
    case, viewer = load(session, principal, case_id)
    if viewer is not Viewer.OWN_AGENCY:
        raise PermissionDenied("only the case's agency erases personal data")
    party = session.exec(
        select(CaseParty).where(CaseParty.case_pk == case.id, CaseParty.role == role)
    ).first()
    if party is None:
        raise NotFound(f"case {case_id} has no {role}")
    party.name = party.address = party.salt = party.country = None
    party.erased_at = utcnow()
    session.add(party)
    session.commit()


def list_notices(
    session: Session, principal: Principal, kind: str | None, limit: int
) -> list[dict[str, Any]]:
    """The officer's inbox: reminders and expiries of its agency's cases, newest first."""
    query = select(CaseNotice, Case.case_id).join(Case, col(Case.id) == col(CaseNotice.case_pk))
    if principal.role != Role.ADMIN:
        query = query.where(CaseNotice.agency_id == principal.organization_id)
    if kind is not None:
        query = query.where(CaseNotice.kind == kind)
    rows = session.exec(query.order_by(col(CaseNotice.id).desc()).limit(limit)).all()
    return [
        {
            "caseId": case_id,
            "clock": notice.clock,
            "kind": notice.kind,
            "dueAt": utc(notice.due_at),
            "createdAt": utc(notice.created_at),
        }
        for notice, case_id in rows
    ]
