"""An item's whole history as one EPCIS 2.0 document (`GET /v1/items/{gtin}/{serial}/custody/epcis`).

`?format=epcis` on the timeline exports the log-backed steps only (custody events as captured,
border scans). An auditor handing the history to another system wants the rest too, in the
vocabulary that system already reads:

- the **enrollment** as a commissioning ObjectEvent (`ADD`, bizStep `commissioning`,
  disposition `active`) at the batch's registration time, with the batch id, root and
  registration transaction as extensions;
- the log-backed steps as the timeline exports them: custody events exactly as captured,
  border scans as ObjectEvents OBSERVE with the port as `readPoint` and `bizLocation`;
- each **status change** (recall, theft, destruction, decommissioning, re-activation) as an
  ObjectEvent OBSERVE with the CBV disposition of the new status and its transaction.

Events are in time order (an event's own time; ties keep the timeline's order). Entries
withheld from the reader are left out, as in the timeline's export. The document is
validated against GS1's EPCIS 2.0 schema before it is returned (`epcis.to_document`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from epcis import object_event

#: The gateway itself as a read point when a step names no place (a status change is made
#: on chain, not at a port; the registration likewise).
GATEWAY_POINT = "urn:borderledger:registry"
#: CBV 2.0 dispositions of the registry's statuses.
DISPOSITIONS = {
    "active": "active",
    "recalled": "recalled",
    "stolen": "stolen",
    "destroyed": "destroyed",
    "decommissioned": "inactive",
}
#: CBV 2.0 business steps of a change to each status.
STEPS = {
    "active": "repairing",
    "recalled": "holding",
    "stolen": "inspecting",
    "destroyed": "destroying",
    "decommissioned": "decommissioning",
}


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def commissioning(timeline: dict[str, Any]) -> dict[str, Any] | None:
    """The enrollment of the item as a commissioning event (None: not enrolled)."""
    enrollment = timeline.get("enrollment")
    if not enrollment or enrollment.get("batchRegistrationTime") is None:
        return None
    item = timeline["item"]
    extensions: dict[str, Any] = {
        "borderledger:batchId": enrollment.get("batchId"),
        "borderledger:batchRoot": enrollment.get("root"),
        "borderledger:txHash": enrollment.get("batchRegistrationTx"),
        "borderledger:blockNumber": enrollment.get("batchRegistrationBlock"),
    }
    event = object_event(
        [item["key"]],
        datetime.fromtimestamp(int(enrollment["batchRegistrationTime"]), UTC),
        GATEWAY_POINT,
        biz_step="commissioning",
        disposition="active",
        action="ADD",
        event_id=f"urn:borderledger:enrollment:{enrollment.get('batchId')}:{item['serial']}",
        extensions={k: v for k, v in extensions.items() if v is not None},
    )
    if enrollment.get("lot"):
        event["ilmd"] = {"cbvmda:lotNumber": enrollment["lot"]}
    return event


def status_events(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    """One ObjectEvent per status change of the item or its batch."""
    key = timeline["item"]["key"]
    out = []
    for change in timeline.get("statusChanges") or []:
        status = str(change.get("status"))
        out.append(
            object_event(
                [key],
                _time(str(change["time"])),
                GATEWAY_POINT,
                biz_step=STEPS.get(status, "inspecting"),
                disposition=DISPOSITIONS.get(status, "unknown"),
                event_id=f"urn:borderledger:status:{change.get('txHash')}",
                extensions={
                    "borderledger:status": status,
                    "borderledger:previousStatus": change.get("previous"),
                    "borderledger:level": change.get("level"),
                    "borderledger:txHash": change.get("txHash"),
                    "borderledger:blockNumber": change.get("blockNumber"),
                },
            )
        )
    return out


def item_events(timeline: dict[str, Any], log_backed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every event of the item's document, in time order: the commissioning, the log-backed
    steps (`log_backed`, the timeline's export) and the status changes."""
    events = [e for e in (commissioning(timeline),) if e is not None]
    events += log_backed
    events += status_events(timeline)
    order = {id(e): n for n, e in enumerate(events)}
    return sorted(
        events, key=lambda e: (_time(str(e["eventTime"]).replace("Z", "+00:00")), order[id(e)])
    )
