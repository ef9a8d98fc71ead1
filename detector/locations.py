"""Location registry: UN/LOCODE -> country and coordinates.

Three sources, in order of precedence:

1. `detector/data/seaports.csv`, a bundled extract of major seaports (documented in
   docs/locations.md);
2. airports from the maintained `airportsdata` package: an airport with IATA code `XXX` in
   country `CC` is registered as UN/LOCODE `CCXXX` (UN/LOCODE reuses the IATA code for the
   place an airport serves wherever one exists, e.g. NLAMS, DEFRA, USJFK). Where that code is
   already a seaport (USLAX, AUSYD), the one location gets both kinds;
3. locations an agency adds (`LocationRegistry.add`), e.g. inland depots and warehouses.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pycountry

from detector.errors import DetectorError, InvalidLocationError, UnknownLocationError

LOCODE_RE = re.compile(r"^[A-Z]{2}[A-Z2-9]{3}$")
EARTH_RADIUS_KM = 6371.0088
SEAPORTS_CSV = Path(__file__).with_name("data") / "seaports.csv"

# ISO 3166-1 alpha-2, from pycountry (maintained), plus XK (Kosovo: user-assigned, used by
# airport data and by the EU).
COUNTRIES: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries) | {"XK"}


def is_country(code: str) -> bool:
    return code in COUNTRIES


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True, slots=True)
class Location:
    locode: str
    name: str
    country: str
    lat: float
    lon: float
    kinds: frozenset[str]  # "seaport", "airport", "agency"

    @property
    def is_port(self) -> bool:
        return bool(self.kinds & {"seaport", "airport"})


def _check(locode: str, name: str, country: str, lat: float, lon: float) -> list[str]:
    problems = []
    if not LOCODE_RE.match(locode):
        problems.append(
            f"{locode!r} is not a UN/LOCODE (2-letter country code + 3 letters or digits 2-9)"
        )
    if country not in COUNTRIES:
        problems.append(f"unknown country code {country!r} (ISO 3166-1 alpha-2)")
    elif locode[:2] != country:
        problems.append(f"UN/LOCODE {locode!r} does not start with its country {country!r}")
    if not name.strip():
        problems.append("a location needs a name")
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        problems.append(f"latitude {lat} is not in [-90, 90]")
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        problems.append(f"longitude {lon} is not in [-180, 180]")
    return problems


def _read_seaports(path: Path = SEAPORTS_CSV) -> Iterator[Location]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        for row in rows:
            lat, lon = float(row["lat"]), float(row["lon"])
            problems = _check(row["locode"], row["name"], row["country"], lat, lon)
            if problems:  # the bundled file is tested; this guards hand edits
                raise DetectorError(f"{path.name}: {'; '.join(problems)}")
            yield Location(
                row["locode"], row["name"], row["country"], lat, lon, frozenset({"seaport"})
            )


def _read_airports() -> Iterator[Location]:
    import airportsdata

    for iata, ap in airportsdata.load("IATA").items():
        country = ap["country"]
        locode = f"{country}{iata}"
        if country in COUNTRIES and LOCODE_RE.match(locode):
            yield Location(
                locode,
                ap["name"],
                country,
                float(ap["lat"]),
                float(ap["lon"]),
                frozenset({"airport"}),
            )


@lru_cache(maxsize=2)
def _base(airports: bool) -> dict[str, Location]:
    by_code: dict[str, Location] = {loc.locode: loc for loc in _read_seaports()}
    if airports:
        for loc in _read_airports():
            known = by_code.get(loc.locode)
            if known is None:
                by_code[loc.locode] = loc
            else:
                by_code[loc.locode] = Location(
                    known.locode, known.name, known.country, known.lat, known.lon,
                    known.kinds | loc.kinds,
                )  # fmt: skip
    return by_code


class LocationRegistry:
    """UN/LOCODE -> Location, with cached great-circle distances between locations."""

    def __init__(self, locations: Iterable[Location] = ()) -> None:
        self._by_code: dict[str, Location] = {}
        self._dist: dict[tuple[str, str], float] = {}
        for loc in locations:
            self._by_code[loc.locode] = loc

    @classmethod
    def default(cls, *, airports: bool = True) -> LocationRegistry:
        """Bundled seaports plus (by default) every airport with an IATA code."""
        reg = cls()
        reg._by_code = dict(_base(airports))
        return reg

    def add(
        self,
        locode: str,
        name: str,
        country: str,
        lat: float,
        lon: float,
        *,
        replace: bool = False,
    ) -> Location:
        """Register an agency's own location (depot, warehouse, inland port)."""
        problems = _check(locode, name, country, lat, lon)
        if problems:
            raise InvalidLocationError(f"cannot add location {locode!r}: " + "; ".join(problems))
        if locode in self._by_code and not replace:
            raise InvalidLocationError(
                f"location {locode!r} is already registered ({self._by_code[locode].name})"
            )
        loc = Location(locode, name.strip(), country, lat, lon, frozenset({"agency"}))
        self._by_code[locode] = loc
        self._dist = {k: v for k, v in self._dist.items() if locode not in k}
        return loc

    def get(self, locode: str) -> Location:
        try:
            return self._by_code[locode]
        except KeyError:
            raise UnknownLocationError(
                f"unknown location {locode!r}: not a UN/LOCODE in the location registry"
            ) from None

    def find(self, locode: str) -> Location | None:
        return self._by_code.get(locode)

    def __contains__(self, locode: object) -> bool:
        return locode in self._by_code

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterator[Location]:
        return iter(self._by_code.values())

    def distance_km(self, a: str, b: str) -> float:
        if a == b:
            return 0.0
        key = (a, b) if a < b else (b, a)
        d = self._dist.get(key)
        if d is None:
            la, lb = self.get(a), self.get(b)
            d = haversine_km(la.lat, la.lon, lb.lat, lb.lon)
            if len(self._dist) > 1_000_000:  # bound the cache
                self._dist.clear()
            self._dist[key] = d
        return d
