from __future__ import annotations

import pytest

from detector.errors import DetectorError, UnknownLocationError
from detector.locations import COUNTRIES, SEAPORTS_CSV, LocationRegistry, haversine_km


def test_bundled_seaports_and_airports(registry: LocationRegistry) -> None:
    rows = [line for line in SEAPORTS_CSV.read_text().splitlines() if not line.startswith("#")]
    assert len(rows) - 1 >= 100
    rtm = registry.get("NLRTM")
    assert rtm.country == "NL" and "seaport" in rtm.kinds
    ams = registry.get("NLAMS")  # from airportsdata (IATA AMS)
    assert ams.country == "NL" and "airport" in ams.kinds
    assert registry.get("USLAX").kinds == frozenset({"seaport", "airport"})
    assert all(loc.locode[:2] == loc.country for loc in registry)


def test_distance_is_great_circle(registry: LocationRegistry) -> None:
    assert 8800 < registry.distance_km("CNSHA", "NLRTM") < 9100
    assert registry.distance_km("NLRTM", "NLRTM") == 0
    assert haversine_km(0, 0, 0, 180) == pytest.approx(20015, rel=0.001)


def test_unknown_location_is_a_clear_error(registry: LocationRegistry) -> None:
    with pytest.raises(UnknownLocationError, match="XXZZZ"):
        registry.get("XXZZZ")


def test_agency_adds_locations(registry: LocationRegistry) -> None:
    loc = registry.add("NLZW2", "Bonded warehouse", "NL", 51.9, 4.3)
    assert registry.get("NLZW2") is loc and loc.kinds == frozenset({"agency"})
    with pytest.raises(DetectorError, match="already registered"):
        registry.add("NLZW2", "again", "NL", 51.9, 4.3)
    with pytest.raises(DetectorError, match="not a UN/LOCODE"):
        registry.add("NL-01", "bad", "NL", 51.9, 4.3)
    with pytest.raises(DetectorError, match="unknown country"):
        registry.add("QQABC", "bad", "QQ", 0, 0)
    with pytest.raises(DetectorError, match="latitude"):
        registry.add("NLABQ", "bad", "NL", 91, 0)
    assert "DE" in COUNTRIES and "UK" not in COUNTRIES
