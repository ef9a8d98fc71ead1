"""What the detector is fed: scans, status reports, and the batches items belong to."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

from detector.errors import InvalidScanError
from detector.locations import COUNTRIES
from detector.policy import RoutePolicy

StatusKind = Literal["decommissioned", "destroyed", "stolen", "recalled"]
STATUS_KINDS: tuple[str, ...] = get_args(StatusKind)


def epoch(when: datetime) -> float:
    """UTC seconds since 1970 of a timezone-aware datetime (naive ones are refused)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidScanError(f"timestamp {when.isoformat()} has no time zone")
    return when.timestamp()


def item_key(gtin: str, serial: str) -> str:
    return f"{gtin}/{serial}"


@dataclass(frozen=True, slots=True)
class Scan:
    """One read of an item's code at a location.

    `batch_id` is the batch the gateway resolved the serial to, or None when the serial is in
    no known batch of the GTIN (an unknown serial: input for the probing rule).
    `at` is the time of the read, UTC epoch seconds; `consignee` the party holding the goods
    as declared (importer / distributor identifier), when known.
    """

    scan_id: str
    gtin: str
    serial: str
    location: str
    at: float
    batch_id: str | None = None
    consignee: str | None = None

    @property
    def item(self) -> str:
        return item_key(self.gtin, self.serial)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """An item's status from its rights holder or the ledger, effective from `at`."""

    gtin: str
    serial: str
    kind: StatusKind
    at: float
    report_id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in STATUS_KINDS:
            raise InvalidScanError(
                f"unknown status {self.kind!r}: expected one of {', '.join(STATUS_KINDS)}"
            )
        if not math.isfinite(self.at):
            raise InvalidScanError(f"status {self.kind} has no valid time")


@dataclass(frozen=True)
class BatchProfile:
    """What the detector knows of a registered batch: its route policy, the quantity released
    to each market, its expiry."""

    batch_id: str
    gtin: str
    policy: RoutePolicy | None = None
    released: Mapping[str, int] = field(default_factory=dict)
    expiry: float | None = None

    def __post_init__(self) -> None:
        problems = []
        for market, qty in self.released.items():
            if market not in COUNTRIES:
                problems.append(f"released market {market!r} is not an ISO 3166-1 alpha-2 code")
            if qty < 0:
                problems.append(f"released quantity for {market} is negative")
        if self.expiry is not None and not math.isfinite(self.expiry):
            problems.append("expiry is not a valid time")
        if problems:
            raise InvalidScanError(f"batch {self.batch_id}: " + "; ".join(problems))
