"""Diversion and clone detector: turns a stream of scans into alerts with evidence.

Pure domain code (stdlib, SQLAlchemy Core and msgpack for the database store, pycountry,
airportsdata, and the core's error tree `ledger.errors`): no web framework, no chain client.
The gateway calls `Detector.ingest(scan)` per verification and `Detector.report_status(...)`
for status changes; see docs/detector.md.
"""

from detector.engine import Detector, DetectorConfig
from detector.errors import DetectorError, InvalidScanError, PolicyError, UnknownLocationError
from detector.events import BatchProfile, Scan, StatusReport, epoch
from detector.locations import Location, LocationRegistry
from detector.policy import RoutePolicy
from detector.rules import RULES, Alert, AlertClass, AlertReason, Severity
from detector.store import MemoryStore, StateStore

__all__ = [
    "RULES",
    "Alert",
    "AlertClass",
    "AlertReason",
    "BatchProfile",
    "Detector",
    "DetectorConfig",
    "DetectorError",
    "InvalidScanError",
    "Location",
    "LocationRegistry",
    "MemoryStore",
    "PolicyError",
    "RoutePolicy",
    "Scan",
    "Severity",
    "StateStore",
    "StatusReport",
    "UnknownLocationError",
    "epoch",
]
