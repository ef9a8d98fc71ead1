"""Alert reason codes, severities and alerts. Alert reason codes are stable strings: clients
switch on them. They are the detector's own vocabulary, about an item's movements; the verdict
reasons (`ledger.verdicts.Reason`) are about what the ledger vouches for.

Every alert carries its evidence: the ids of the scans (and status reports) that triggered it.
An alert makes an item a *potential suspect* for an officer to examine, never a declared fake.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class AlertClass(StrEnum):
    CLONE = "clone"
    DIVERSION = "diversion"
    STATUS = "status"
    VOLUME = "volume"
    PROBING = "probing"


class AlertReason(StrEnum):
    DIVERSION_MARKET = "DIVERSION_MARKET"
    DIVERSION_ROUTE = "DIVERSION_ROUTE"
    DIVERSION_CONSIGNEE = "DIVERSION_CONSIGNEE"
    DIVERSION_RETURN = "DIVERSION_RETURN"
    CLONE_IMPOSSIBLE_TRAVEL = "CLONE_IMPOSSIBLE_TRAVEL"
    CLONE_TOO_MANY_PLACES = "CLONE_TOO_MANY_PLACES"
    CLONE_AFTER_DECOMMISSION = "CLONE_AFTER_DECOMMISSION"
    CLONE_AFTER_DESTRUCTION = "CLONE_AFTER_DESTRUCTION"
    SEQUENCE_BEFORE_ORIGIN = "SEQUENCE_BEFORE_ORIGIN"
    SEQUENCE_ROUTE_ORDER = "SEQUENCE_ROUTE_ORDER"
    STOLEN_SEEN = "STOLEN_SEEN"
    RECALLED_SEEN = "RECALLED_SEEN"
    EXPIRED_SEEN = "EXPIRED_SEEN"
    VOLUME_EXCEEDED = "VOLUME_EXCEEDED"
    PROBING_UNKNOWN_SERIALS = "PROBING_UNKNOWN_SERIALS"


@dataclass(frozen=True, slots=True)
class RuleInfo:
    alert_class: AlertClass
    severity: Severity
    summary: str


RULES: dict[AlertReason, RuleInfo] = {
    AlertReason.DIVERSION_MARKET: RuleInfo(
        AlertClass.DIVERSION,
        Severity.HIGH,
        "seen in a country that is neither an authorized market, nor on the declared route, "
        "nor the origin",
    ),
    AlertReason.DIVERSION_ROUTE: RuleInfo(
        AlertClass.DIVERSION,
        Severity.MEDIUM,
        "seen at a location that is not a declared node, in a transit country of the route",
    ),
    AlertReason.DIVERSION_CONSIGNEE: RuleInfo(
        AlertClass.DIVERSION, Severity.HIGH, "held by a consignee the policy does not authorize"
    ),
    AlertReason.DIVERSION_RETURN: RuleInfo(
        AlertClass.DIVERSION,
        Severity.MEDIUM,
        "seen back in its origin country after it left for its market, and its route policy "
        "allows no returns",
    ),
    AlertReason.CLONE_IMPOSSIBLE_TRAVEL: RuleInfo(
        AlertClass.CLONE,
        Severity.CRITICAL,
        "seen at two places farther apart than freight can travel in the time between",
    ),
    AlertReason.CLONE_TOO_MANY_PLACES: RuleInfo(
        AlertClass.CLONE, Severity.HIGH, "seen at more distinct places than its route allows"
    ),
    AlertReason.CLONE_AFTER_DECOMMISSION: RuleInfo(
        AlertClass.CLONE, Severity.HIGH, "seen after it was decommissioned (pack inactive)"
    ),
    AlertReason.CLONE_AFTER_DESTRUCTION: RuleInfo(
        AlertClass.CLONE, Severity.CRITICAL, "seen after it was destroyed"
    ),
    AlertReason.SEQUENCE_BEFORE_ORIGIN: RuleInfo(
        AlertClass.CLONE,
        Severity.HIGH,
        "seen in a destination market, then in its origin country, with no other sighting "
        "showing it had left the origin (a return after leaving is not a clone)",
    ),
    AlertReason.SEQUENCE_ROUTE_ORDER: RuleInfo(
        AlertClass.CLONE,
        Severity.MEDIUM,
        "seen at a later node of its declared route, then at an earlier one, with no other "
        "sighting showing it had passed the earlier one",
    ),
    AlertReason.STOLEN_SEEN: RuleInfo(
        AlertClass.STATUS, Severity.CRITICAL, "seen after it was reported stolen"
    ),
    AlertReason.RECALLED_SEEN: RuleInfo(
        AlertClass.STATUS, Severity.HIGH, "seen after it (or its batch) was recalled"
    ),
    AlertReason.EXPIRED_SEEN: RuleInfo(AlertClass.STATUS, Severity.MEDIUM, "seen after its expiry"),
    AlertReason.VOLUME_EXCEEDED: RuleInfo(
        AlertClass.VOLUME,
        Severity.HIGH,
        "more distinct items of the batch seen in a market than were released to it",
    ),
    AlertReason.PROBING_UNKNOWN_SERIALS: RuleInfo(
        AlertClass.PROBING,
        Severity.HIGH,
        "many unknown serials under one GTIN at one location within the probe window",
    ),
}


@dataclass(frozen=True, slots=True)
class Alert:
    """One finding. `serial` is None for batch-level (volume) and GTIN-level (probing) alerts.
    `evidence` are scan ids (and status report ids, prefixed `status:`), sorted."""

    reason: AlertReason
    gtin: str
    serial: str | None
    batch_id: str | None
    location: str
    at: float
    evidence: tuple[str, ...]
    detail: str
    #: The other sighting a pairwise rule compared this scan with (UN/LOCODE, epoch seconds):
    #: what a verdict's summary names as "seen before".
    other_location: str | None = None
    other_at: float | None = None
    #: The markets the item was made for (diversion rules), sorted.
    markets: tuple[str, ...] = ()

    @property
    def severity(self) -> Severity:
        return RULES[self.reason].severity

    @property
    def alert_class(self) -> AlertClass:
        return RULES[self.reason].alert_class

    @property
    def item(self) -> str | None:
        return None if self.serial is None else f"{self.gtin}/{self.serial}"

    @property
    def key(self) -> tuple[str, str, str | None, tuple[str, ...]]:
        """Identity for de-duplication across re-deliveries."""
        return (self.reason.value, self.gtin, self.serial, self.evidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason.value,
            "class": self.alert_class.value,
            "severity": self.severity.value,
            "gtin": self.gtin,
            "serial": self.serial,
            "batch_id": self.batch_id,
            "location": self.location,
            "at": self.at,
            "evidence": list(self.evidence),
            "detail": self.detail,
        }
