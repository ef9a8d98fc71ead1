"""EPCIS 2.0 events read into `CustodyEvent`s: what happened, when, where, to which things.

`parse_document` validates the whole document first (nothing is half-read), then reads each
event of ``epcisBody.eventList`` (or, for an `EPCISQueryDocument`,
``epcisBody.queryResults.resultsBody.eventList``). The five EPCIS 2.0 event types are kept;
the typed fields below are what custody needs, and `raw` is the event object exactly as
received, so exporting it again keeps every extension and sensor report.

Event id: the event's ``eventID`` when present. Otherwise a deterministic id,
``urn:borderledger:epcis-event:jcs-sha256:<hex>``, the SHA-256 of the event's RFC 8785
canonical JSON (`ledger.canonical`). The same event captured twice gets the same id, so
capture can be idempotent. Events captured before JCS got
``urn:borderledger:epcis-event:sha256:<hex>`` over Python's `json.dumps(sort_keys=True,
separators=(",", ":"), ensure_ascii=False)` (`legacy_event_id`); capture still recognises
them, so sending such an event again is a duplicate, not a second event. This is NOT the CBV 2.0 event-hash algorithm (``ni:///sha-256;...?ver=CBV2.0``),
which canonicalises field by field; the distinct URN prefix keeps the two from being confused.

Error declarations (EPCIS 2.0 section 7.4.1.4): an event with ``errorDeclaration`` says the
event with the same `eventID`, captured earlier, was erroneous; ``correctiveEventIDs`` name
the events that replace it. `CustodyEvent.error_declaration` keeps that.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from epcis.identifiers import Identifier, IdentifierKind, parse_identifier
from epcis.schema import validate
from ledger.canonical import canonical_json
from ledger.errors import CanonicalJsonError, InvalidEpcIdentifier, InvalidEpcisDocument

DERIVED_ID_PREFIX = "urn:borderledger:epcis-event:jcs-sha256:"
#: The derived ids of events captured before RFC 8785 (see the module docstring).
LEGACY_ID_PREFIX = "urn:borderledger:epcis-event:sha256:"
EVENT_TYPES = frozenset(
    {
        "ObjectEvent",
        "AggregationEvent",
        "TransactionEvent",
        "TransformationEvent",
        "AssociationEvent",
    }
)
# CBV 2.0 vocabulary may be written bare ("shipping") or as a URI; kept bare when standard.
_CBV_PREFIXES = (
    "https://ref.gs1.org/cbv/BizStep-",
    "https://ref.gs1.org/cbv/Disp-",
    "urn:epcglobal:cbv:bizstep:",
    "urn:epcglobal:cbv:disp:",
)


@dataclass(frozen=True, slots=True)
class Quantity:
    """A class-level quantity (``quantityList`` and friends): so much of a GTIN or lot."""

    epc_class: Identifier
    quantity: float | None
    uom: str | None


@dataclass(frozen=True, slots=True)
class BizTransaction:
    type: str | None
    id: str


@dataclass(frozen=True, slots=True)
class Party:
    """One entry of ``sourceList`` / ``destinationList`` (type: location, owning_party, ...)."""

    type: str
    id: str


@dataclass(frozen=True, slots=True)
class ErrorDeclaration:
    declaration_time: datetime
    reason: str | None
    corrective_event_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CustodyEvent:
    """One EPCIS event. Lists are tuples of parsed identifiers; `raw` is the event as sent."""

    event_id: str
    #: True when `event_id` was derived (no eventID in the event), see the module docstring.
    event_id_derived: bool
    type: str
    action: str | None
    event_time: datetime  #: aware, UTC
    event_time_zone_offset: str  #: as sent, e.g. "+02:00"
    record_time: datetime | None
    biz_step: str | None
    disposition: str | None
    read_point: str | None
    biz_location: str | None
    epcs: tuple[Identifier, ...] = ()
    parent: Identifier | None = None
    children: tuple[Identifier, ...] = ()
    inputs: tuple[Identifier, ...] = ()
    outputs: tuple[Identifier, ...] = ()
    quantities: tuple[Quantity, ...] = ()  #: quantityList or childQuantityList
    input_quantities: tuple[Quantity, ...] = ()
    output_quantities: tuple[Quantity, ...] = ()
    biz_transactions: tuple[BizTransaction, ...] = ()
    sources: tuple[Party, ...] = ()
    destinations: tuple[Party, ...] = ()
    has_sensor_data: bool = False
    error_declaration: ErrorDeclaration | None = None
    raw: dict[str, Any] = field(default_factory=dict, hash=False)
    #: The document's ``@context`` (needed to read the event's ``prefix:name`` extensions).
    context: Any = field(default=None, hash=False)

    @property
    def is_error_declaration(self) -> bool:
        return self.error_declaration is not None


def derived_event_id(event: dict[str, Any]) -> str:
    """The deterministic id of an event without eventID (see the module docstring)."""
    try:
        canonical = canonical_json(event)
    except CanonicalJsonError as exc:
        raise InvalidEpcisDocument(
            f"the event has no canonical JSON: {exc}", [f": {exc}"]
        ) from None
    return DERIVED_ID_PREFIX + hashlib.sha256(canonical).hexdigest()


def legacy_event_id(event: dict[str, Any]) -> str | None:
    """The id capture gave the same event before RFC 8785 (None if it could not have one)."""
    try:
        canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return LEGACY_ID_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    except (TypeError, ValueError):
        return None


def event_list(document: dict[str, Any]) -> list[Any]:
    """The events of a (validated) EPCISDocument or EPCISQueryDocument."""
    body = document.get("epcisBody", {})
    if document.get("type") == "EPCISQueryDocument":
        results = body.get("queryResults", {}).get("resultsBody", {})
        return list(results.get("eventList", []))
    return list(body.get("eventList", []))


def parse_document(document: dict[str, Any]) -> list[CustodyEvent]:
    """Validate `document` against the EPCIS 2.0 schema, then read every event.

    Raises `InvalidEpcisDocument` (schema problems, with JSON paths) or
    `InvalidEpcIdentifier` (a malformed GS1 identifier, with the event's path).
    """
    validate(document)
    context = document.get("@context")
    events: list[CustodyEvent] = []
    for index, raw in enumerate(event_list(document)):
        try:
            events.append(parse_event(raw, context))
        except InvalidEpcIdentifier as exc:
            raise InvalidEpcIdentifier(f"$.epcisBody.eventList[{index}]: {exc}") from None
        except InvalidEpcisDocument as exc:
            where = f"$.epcisBody.eventList[{index}]"
            raise InvalidEpcisDocument(
                f"{where}: {exc}", [f"{where}{p}" for p in exc.problems]
            ) from None
    return events


def parse_event(raw: dict[str, Any], context: Any = None) -> CustodyEvent:
    """Read one schema-valid event object (use `parse_document` for untrusted input)."""
    event_type = raw["type"]
    if event_type not in EVENT_TYPES:
        raise InvalidEpcisDocument(
            f"event type {event_type!r} is not an EPCIS 2.0 event type",
            [f".type: {event_type!r} is not one of {sorted(EVENT_TYPES)}"],
        )
    given_id = raw.get("eventID")
    declaration = raw.get("errorDeclaration")
    is_aggregation = event_type in ("AggregationEvent", "TransactionEvent", "AssociationEvent")
    parent = raw.get("parentID")
    return CustodyEvent(
        event_id=given_id if given_id else derived_event_id(raw),
        event_id_derived=not given_id,
        type=event_type,
        action=raw.get("action"),
        event_time=_utc(raw["eventTime"]),
        event_time_zone_offset=raw["eventTimeZoneOffset"],
        record_time=_utc(raw["recordTime"]) if "recordTime" in raw else None,
        biz_step=_cbv(raw.get("bizStep")),
        disposition=_cbv(raw.get("disposition")),
        read_point=(raw.get("readPoint") or {}).get("id"),
        biz_location=(raw.get("bizLocation") or {}).get("id"),
        epcs=_ids(raw.get("epcList")),
        parent=parse_identifier(parent) if parent else None,
        children=_ids(raw.get("childEPCs")),
        inputs=_ids(raw.get("inputEPCList")),
        outputs=_ids(raw.get("outputEPCList")),
        quantities=_quantities(
            raw.get("childQuantityList" if is_aggregation else "quantityList")
            or raw.get("quantityList")
        ),
        input_quantities=_quantities(raw.get("inputQuantityList")),
        output_quantities=_quantities(raw.get("outputQuantityList")),
        biz_transactions=tuple(
            BizTransaction(t.get("type"), t["bizTransaction"])
            for t in raw.get("bizTransactionList", [])
        ),
        sources=tuple(Party(s["type"], s["source"]) for s in raw.get("sourceList", [])),
        destinations=tuple(
            Party(d["type"], d["destination"]) for d in raw.get("destinationList", [])
        ),
        has_sensor_data=bool(raw.get("sensorElementList")),
        error_declaration=ErrorDeclaration(
            declaration_time=_utc(declaration["declarationTime"]),
            reason=_cbv(declaration.get("reason")),
            corrective_event_ids=tuple(declaration.get("correctiveEventIDs", [])),
        )
        if declaration
        else None,
        raw=raw,
        context=context,
    )


def items_of(event: CustodyEvent) -> set[tuple[str, str]]:
    """Every serialised trade item (GTIN-14, serial) the event names, in any role."""
    named = [*event.epcs, *event.children, *event.inputs, *event.outputs]
    if event.parent is not None:
        named.append(event.parent)
    return {item for i in named if (item := i.item) is not None}


def containers_of(event: CustodyEvent) -> set[Identifier]:
    """The logistic units (cases, pallets, containers) the event names.

    An aggregation's parent is a container whatever its scheme (an SSCC, a GIAI for a
    returnable asset, ...); elsewhere, SSCCs in the EPC lists are containers. Custody of a
    container covers its contents: an AggregationEvent ADD packs `children` into `parent`,
    DELETE unpacks them (all of them when `children` is empty), OBSERVE confirms.
    """
    found = {
        i
        for i in (*event.epcs, *event.children, *event.inputs, *event.outputs)
        if i.kind is IdentifierKind.SSCC
    }
    if event.parent is not None:
        found.add(event.parent)
    return found


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    return moment.astimezone(UTC)


def _cbv(value: str | None) -> str | None:
    if value is None:
        return None
    for prefix in _CBV_PREFIXES:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _ids(values: list[str] | None) -> tuple[Identifier, ...]:
    return tuple(parse_identifier(v) for v in values or [])


def _quantities(values: list[dict[str, Any]] | None) -> tuple[Quantity, ...]:
    return tuple(
        Quantity(parse_identifier(q["epcClass"]), q.get("quantity"), q.get("uom"))
        for q in values or []
    )
