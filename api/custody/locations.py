"""Places agencies register (`POST /v1/locations`), and where an EPCIS read point is.

A custody event feeds the detector only if its place is known as a UN/LOCODE. Read points
and business locations name places as:

- ``urn:un:locode:NLRTM`` (the project's convention, `epcis.locode_uri`): any UN/LOCODE in
  the detector's registry (bundled seaports, airports, agency additions);
- an SGLN URN or a GLN Digital Link (``https://id.gs1.org/414/<gln>``): the GLN must have
  been given as an alias of a location an agency registered.

Registered locations are stored (`custody_locations`) and loaded into the detector's
`LocationRegistry` (as agency locations) at start and when a lookup misses, so locations
another gateway process registered are found too. A UN/LOCODE already in the bundled
registry keeps its bundled coordinates; the agency's entry then only adds GLN aliases.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.models import CustodyLocation, utcnow
from detector import DetectorError, LocationRegistry
from epcis import IdentifierKind, parse_identifier
from ledger.errors import InvalidEpcIdentifier, InvalidInput
from ledger.gs1 import gtin_check_digit

LOCODE_PREFIX = "urn:un:locode:"
RELOAD_SECONDS = 2.0


@dataclass(frozen=True)
class NewLocation:
    locode: str
    name: str
    country: str
    latitude: float
    longitude: float
    glns: tuple[str, ...] = ()


def _check_gln(gln: str) -> str:

    if len(gln) != 13 or not gln.isdigit():
        raise InvalidInput(f"GLN {gln!r} must be 13 digits")
    if int(gln[-1]) != gtin_check_digit(gln[:-1]):
        raise InvalidInput(f"GLN {gln!r} has a wrong check digit")
    return gln


class LocationBook:
    """GLN aliases and agency locations, mirrored into the detector's registry."""

    def __init__(self, engine: Engine, registry: LocationRegistry) -> None:
        self.engine = engine
        self.registry = registry
        self._glns: dict[str, str] = {}
        self._added: set[str] = set()
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def load(self) -> None:
        with Session(self.engine) as session:
            rows = session.exec(select(CustodyLocation)).all()
        with self._lock:
            for row in rows:
                self._mirror(row)
            self._loaded_at = time.monotonic()

    def _mirror(self, row: CustodyLocation) -> None:
        if row.locode not in self.registry or row.locode in self._added:
            try:
                self.registry.add(
                    row.locode, row.name, row.country, row.latitude, row.longitude, replace=True
                )
                self._added.add(row.locode)
            except DetectorError:
                return
        for gln in row.glns:
            self._glns[gln] = row.locode

    def add(self, new: NewLocation, organization_id: int | None) -> CustodyLocation:
        """Register or update a location (idempotent: the same body twice is one location)."""
        locode = new.locode.strip().upper()
        country = new.country.strip().upper()
        glns = tuple(dict.fromkeys(_check_gln(g.strip()) for g in new.glns))
        probe = LocationRegistry()
        try:  # the detector's own checks: LOCODE form, country, coordinates, name
            probe.add(locode, new.name, country, new.latitude, new.longitude)
        except DetectorError as exc:
            raise InvalidInput(str(exc)) from None
        with Session(self.engine, expire_on_commit=False) as session:
            for other in session.exec(select(CustodyLocation)).all():
                taken = set(glns) & set(other.glns)
                if other.locode != locode and taken:
                    raise InvalidInput(
                        f"GLN {sorted(taken)[0]} already names location {other.locode}"
                    )
            row = session.get(CustodyLocation, locode) or CustodyLocation(
                locode=locode,
                name=new.name.strip(),
                country=country,
                latitude=new.latitude,
                longitude=new.longitude,
                glns=[],
                organization_id=organization_id,
                created_at=utcnow(),
            )
            row.name, row.country = new.name.strip(), country
            row.latitude, row.longitude = new.latitude, new.longitude
            row.glns = sorted(set(row.glns) | set(glns))
            session.add(row)
            session.commit()
        with self._lock:
            self._mirror(row)
        return row

    def all(self) -> list[CustodyLocation]:
        with Session(self.engine) as session:
            return list(session.exec(select(CustodyLocation).order_by(CustodyLocation.locode)))

    def resolve(self, uri: str | None) -> str | None:
        """The UN/LOCODE a read point / business location URI names, or None."""
        if not uri:
            return None
        if uri.lower().startswith(LOCODE_PREFIX):
            code = uri[len(LOCODE_PREFIX) :].upper()
            return code if code in self.registry else None
        try:
            identifier = parse_identifier(uri)
        except InvalidEpcIdentifier:
            return None
        if identifier.kind is not IdentifierKind.SGLN or identifier.gln is None:
            return None
        found = self._glns.get(identifier.gln)
        if found is None and time.monotonic() - self._loaded_at > RELOAD_SECONDS:
            self.load()
            found = self._glns.get(identifier.gln)
        return found
