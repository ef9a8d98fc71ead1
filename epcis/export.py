"""EPCIS 2.0 documents out: a custody history as an `EPCISDocument` anyone can check.

`to_document` wraps event objects (typically `CustodyEvent.raw`, exactly as captured) in an
EPCISDocument and validates it against the official schema before returning it, so an
export that would not validate is an error here, not a surprise for the receiver.
`object_event` builds the ObjectEvent for a simple custody step such as a border scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from epcis.events import CustodyEvent
from epcis.schema import validate
from ledger.errors import InvalidEpcisDocument

#: The EPCIS 2.0 JSON-LD context, unversioned: it always resolves to the current 2.0.x.
STANDARD_CONTEXT = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
_GS1_CONTEXT_PREFIX = "https://ref.gs1.org/standards/epcis/"
_LOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}", re.ASCII)


def merge_contexts(*contexts: Any) -> list[Any]:
    """One ``@context`` list: the standard context first, then every extension definition.

    GS1's own context (any version) is replaced by `STANDARD_CONTEXT` rather than repeated;
    other entries (``{"example": "http://ns.example.com/epcis/"}``) are kept once each, in
    order, so the ``prefix:name`` extensions of the exported events stay readable.
    """
    merged: list[Any] = [STANDARD_CONTEXT]
    for context in contexts:
        entries = context if isinstance(context, list) else [context]
        for entry in entries:
            if entry is None:
                continue
            if isinstance(entry, str) and entry.startswith(_GS1_CONTEXT_PREFIX):
                continue
            if entry not in merged:
                merged.append(entry)
    return merged


def to_document(
    events: Sequence[dict[str, Any]],
    context: Any = None,
    sender: str | None = None,
    receiver: str | None = None,
    creation_date: datetime | None = None,
) -> dict[str, Any]:
    """An EPCIS 2.0 EPCISDocument holding `events` (event objects, kept as given).

    `context` adds extension definitions to the standard context (a dict, a URI or a list
    of them; see `merge_contexts`). Raises `InvalidEpcisDocument` if the result would not
    validate (for example an event object that is not valid EPCIS).
    """
    created = (creation_date or datetime.now(UTC)).astimezone(UTC)
    document: dict[str, Any] = {
        "@context": merge_contexts(context),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if sender is not None:
        document["sender"] = sender
    if receiver is not None:
        document["receiver"] = receiver
    document["epcisBody"] = {"eventList": list(events)}
    validate(document)
    return document


def document_of(
    events: Iterable[CustodyEvent],
    sender: str | None = None,
    receiver: str | None = None,
    creation_date: datetime | None = None,
) -> dict[str, Any]:
    """`to_document` for parsed events: their raw objects, with every context they came with."""
    chosen = list(events)
    return to_document(
        [e.raw for e in chosen],
        context=merge_contexts(*(e.context for e in chosen)),
        sender=sender,
        receiver=receiver,
        creation_date=creation_date,
    )


def object_event(
    epcs: Sequence[str],
    event_time: datetime,
    read_point: str,
    *,
    biz_step: str = "inspecting",
    disposition: str | None = "in_progress",
    action: str = "OBSERVE",
    biz_location: str | None = None,
    event_id: str | None = None,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An ObjectEvent dict for one custody step, e.g. a border scan of a tag.

    `epcs` are identifiers as URIs (Digital Links or EPC URNs); `read_point` is a URI, an
    SGLN (``urn:epc:id:sgln:...``), a GLN Digital Link or a UN/LOCODE URI (`locode_uri`).
    `event_time` must be timezone-aware: its offset becomes ``eventTimeZoneOffset`` and the
    time is written in UTC. `extensions` are extra ``prefix:name`` fields (define the prefix
    in the exported document's context).
    """
    if event_time.tzinfo is None or event_time.utcoffset() is None:
        raise InvalidEpcisDocument(f"event time {event_time.isoformat()} has no timezone")
    offset = event_time.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": event_time.astimezone(UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "eventTimeZoneOffset": zone,
    }
    if event_id is not None:
        event["eventID"] = event_id
    event.update(
        {
            "epcList": list(epcs),
            "action": action,
            "bizStep": biz_step,
            "readPoint": {"id": read_point},
        }
    )
    if disposition is not None:
        event["disposition"] = disposition
    if biz_location is not None:
        event["bizLocation"] = {"id": biz_location}
    event.update(extensions or {})
    return event


def locode_uri(locode: str) -> str:
    """A URI for a UN/LOCODE place, as read points of border scans use (``urn:un:locode:NLRTM``).

    A project convention: UN/LOCODE has no registered URN namespace of its own.
    """
    code = locode.replace(" ", "").upper()
    if not _LOCODE.fullmatch(code):
        raise InvalidEpcisDocument(
            f"UN/LOCODE {locode!r} is not 2 letters + 3 letters or digits 2-9"
        )
    return f"urn:un:locode:{code}"
