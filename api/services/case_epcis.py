"""A case's applied actions as EPCIS 2.0 events of its items (docs/epcis.md, "Case actions").

Each applied action is one ObjectEvent (action OBSERVE) over the case's goods: the scanned
items of the case (`epcList`, their GS1 Digital Links: the opening scan, its shipment's
scans, those an officer added) and each line with a GTIN
(`quantityList`, the GTIN as class and the line's quantity). CBV 2.0 business steps and
dispositions where one says what happened (detention is `holding`, destruction `destroying`
+ `destroyed`, ...); for the steps of customs procedure CBV has no word for (a notice, a
disclosure stage, a seizure), the project's extension vocabulary under `VOCABULARY`, a URI
as EPCIS allows (`vocab-other-uri`). The case is the event's business transaction
(`urn:borderledger:case:<id>`), its port the read point. Parameters and personal data are
never exported: the same rule as the custody log (only commitments there).

The document goes through `epcis.export.to_document`, which validates it against GS1's
schema before it leaves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from api.case_models import Case, CaseAction, CaseItem, CaseLine
from api.models import Alert, ScanEvent
from api.principal import Principal
from api.services import cases
from cases.disclosure import Viewer
from custody import entries
from epcis import locode_uri, object_event, to_document
from ledger.errors import PermissionDenied

#: The extension vocabulary's namespace (also the `borderledger:` prefix of the fields).
VOCABULARY = "https://borderledger.example/epcis/"
CONTEXT = {"borderledger": VOCABULARY}
_STEP = VOCABULARY + "bizstep/"
_DISPOSITION = VOCABULARY + "disposition/"

#: action -> (bizStep, disposition or None): CBV 2.0 words where they exist, else the
#: extension vocabulary (documented in docs/epcis.md).
STEPS: dict[str, tuple[str, str | None]] = {
    "open": ("inspecting", None),
    "detain": ("holding", "non_sellable_other"),
    "detain_ex_officio": ("holding", "non_sellable_other"),
    "custody": ("storing", "non_sellable_other"),
    "send_sample": ("sampling", None),
    "return_sample": ("receiving", "non_sellable_other"),
    "certify_sample_lost": (_STEP + "certifying_sample_lost", "unknown"),
    "confirm": ("inspecting", "non_conformant"),
    "seize": (_STEP + "seizing", _DISPOSITION + "seized"),
    "forfeit": (_STEP + "forfeiting", _DISPOSITION + "forfeited"),
    "destroy": ("destroying", "destroyed"),
    "release": (_STEP + "releasing", _DISPOSITION + "released"),
    "release_labelled": (_STEP + "releasing", _DISPOSITION + "released"),
    "abandon": (_STEP + "abandoning", _DISPOSITION + "abandoned"),
}
#: Every other action is a procedural step with no change to the goods: its own extension
#: business step (`bizstep/<action>`, e.g. bizstep/send_notice) and no disposition.
_APPLIED = ("applied", "approved")


def step_of(action: str) -> tuple[str, str | None]:
    return STEPS.get(action, (_STEP + action, None))


def goods(session: Session, case: Case) -> tuple[list[str], list[dict[str, Any]]]:
    """The case's items: its scanned items (the opening scan, the shipment's scans, those
    added; or the alert's item it was opened from) and its lines with a GTIN, as EPCIS
    epcList and quantityList."""
    epcs: list[str] = []
    scans = session.exec(
        select(ScanEvent.gtin, ScanEvent.serial)
        .join(CaseItem, col(CaseItem.scan_id) == col(ScanEvent.scan_id))
        .where(CaseItem.case_pk == case.id)
        .order_by(col(CaseItem.id))
    ).all()
    for gtin, serial in scans:
        key = entries.item_key(gtin, serial) if gtin and serial else None
        if key is not None and key not in epcs:
            epcs.append(key)
    if case.source == "scan" and case.source_ref and not scans:  # opened before items were kept
        scan = session.exec(select(ScanEvent).where(ScanEvent.scan_id == case.source_ref)).first()
        if scan is not None and scan.gtin and scan.serial:
            epcs.append(entries.item_key(scan.gtin, scan.serial))
    elif case.source == "alert" and case.source_ref:
        alert = session.exec(select(Alert).where(Alert.alert_id == case.source_ref)).first()
        if alert is not None and alert.gtin and alert.serial:
            epcs.append(entries.item_key(alert.gtin, alert.serial))
    quantities: dict[str, int] = {}
    for line in session.exec(
        select(CaseLine).where(CaseLine.case_pk == case.id).order_by(col(CaseLine.id))
    ).all():
        if line.gtin:
            key = f"https://id.gs1.org/01/{line.gtin}"
            quantities[key] = quantities.get(key, 0) + int(line.quantity)
    return epcs, [{"epcClass": k, "quantity": q} for k, q in quantities.items()]


def events_of(session: Session, case: Case) -> list[dict[str, Any]]:
    """One ObjectEvent per applied action, in the order they were applied."""
    epcs, quantities = goods(session, case)
    rows = session.exec(
        select(CaseAction)
        .where(CaseAction.case_pk == case.id, col(CaseAction.status).in_(_APPLIED))
        .order_by(col(CaseAction.applied_at), col(CaseAction.id))
    ).all()
    place = locode_uri(case.port)
    out: list[dict[str, Any]] = []
    for row in rows:
        step, disposition = step_of(row.action)
        when = row.applied_at or row.created_at
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
        event = object_event(
            epcs,
            when,
            place,
            biz_step=step,
            disposition=disposition,
            biz_location=place,
            event_id=f"urn:uuid:{row.action_id}",
            extensions={
                k: v
                for k, v in (
                    ("borderledger:caseId", case.case_id),
                    ("borderledger:caseAction", row.action),
                    ("borderledger:stateAfter", row.state_after),
                    ("borderledger:logIndex", row.log_index),
                )
                if v is not None
            },
        )
        if quantities:
            event["quantityList"] = quantities
        event["bizTransactionList"] = [{"bizTransaction": entries.case_key(case.case_id)}]
        out.append(event)
    return out


def export(
    session: Session, principal: Principal, case_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """The case's actions as a validated EPCIS 2.0 document (the case's agency only: the
    events name states a rights holder's disclosure stage may not reveal yet)."""
    case, viewer = cases.load(session, principal, case_id)
    if viewer is not Viewer.OWN_AGENCY:
        raise PermissionDenied("only the case's agency exports its actions")
    return to_document(events_of(session, case), context=CONTEXT, creation_date=now)
