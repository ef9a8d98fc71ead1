"""Detector alerts as the verdict engine reads them (`ledger.verdicts.FindingFacts`): the
structured facts — where and when this scan and the sighting it contradicts were, the markets
the item was made for — from which the engine words a verdict's summary."""

from __future__ import annotations

from collections.abc import Iterable

from detector.locations import LocationRegistry
from detector.rules import Alert
from ledger.verdicts import FindingFacts, Place


def _place(registry: LocationRegistry, locode: str) -> Place:
    known = registry.find(locode)  # None: a location the registry does not hold, code alone
    return Place(locode, known.name if known is not None else None)


def finding_facts(alerts: Iterable[Alert], registry: LocationRegistry) -> list[FindingFacts]:
    """The facts of each alert, in order."""
    return [
        FindingFacts(
            a.alert_class.value,
            a.reason.value,
            _place(registry, a.location),
            a.at,
            _place(registry, a.other_location) if a.other_location is not None else None,
            a.other_at,
            a.markets,
        )
        for a in alerts
    ]
