"""A map of the ports an item passed through, as inline SVG: no tiles, nothing fetched.

The world outline is Natural Earth's 1:110m land (public domain), converted once from the npm
package world-atlas into one SVG path (`data/world-land-110m.svgpath`, made by
`data/build_world_outline.mjs`) in an equirectangular projection: x = longitude + 180,
y = 90 - latitude, the world being the box 0 0 360 180. The ports are dots labelled with their
UN/LOCODE and name, numbered and joined by a line in time order; the view is cropped to them
(2:1, at least 60 degrees wide) so a route inside one sea is still readable on a phone.

Accessible as an image: `role="img"`, a `<title>`, a `<desc>`, and an `aria-label` naming the
ports in order (a screen reader gets the route without the drawing). Names come from the
location registry (`docs/locations.md`), agencies' own places included, and are escaped.

`timeline_points(custody_json)` picks the located entries of the custody API's answer
(`GET /v1/items/{gtin}/{serial}/custody`), so a timeline page shows its map with
`port_map(timeline_points(timeline))`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from detector import LocationRegistry

OUTLINE = Path(__file__).parent / "data" / "world-land-110m.svgpath"
LOCODE_URI = re.compile(r"^urn:un:locode:([A-Za-z]{2}[A-Za-z0-9]{3})$")
#: The narrowest view (degrees of longitude): a single port still shows its coast.
MIN_WIDTH = 60.0
#: Room around the ports (degrees) for the dots and their labels.
PAD = 12.0


@dataclass(frozen=True)
class MapPoint:
    """A port on the map: UN/LOCODE, name, position (degrees), and when it was there."""

    locode: str
    name: str
    latitude: float
    longitude: float
    time: str | None = None

    @property
    def x(self) -> float:
        return self.longitude + 180.0

    @property
    def y(self) -> float:
        return 90.0 - self.latitude


@functools.cache
def _outline() -> str:
    return OUTLINE.read_text(encoding="ascii").strip()


@functools.cache
def _bundled() -> LocationRegistry:
    return LocationRegistry.default()


def _view(points: Sequence[MapPoint]) -> tuple[float, float, float, float]:
    """(x, y, width, height) of the view: the ports' box, padded, 2:1, inside the world."""
    if not points:
        return 0.0, 0.0, 360.0, 180.0
    xs = [p.x for p in points]
    ys = [p.y for p in points]
    width = max(max(xs) - min(xs) + 2 * PAD, 2 * (max(ys) - min(ys) + 2 * PAD), MIN_WIDTH)
    if width >= 360.0:
        return 0.0, 0.0, 360.0, 180.0
    height = width / 2
    x = min(max((max(xs) + min(xs)) / 2 - width / 2, 0.0), 360.0 - width)
    y = min(max((max(ys) + min(ys)) / 2 - height / 2, 0.0), 180.0 - height)
    return x, y, width, height


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def port_label(point: MapPoint) -> str:
    return f"{point.locode} {point.name}"


def _stops(points: Sequence[MapPoint]) -> list[MapPoint]:
    """Consecutive visits to one port are one stop."""
    stops: list[MapPoint] = []
    for point in points:
        if not stops or stops[-1].locode != point.locode:
            stops.append(point)
    return stops


def map_label(points: Sequence[MapPoint]) -> str:
    """What the map shows, in words (its aria-label, or an <img>'s alt text)."""
    stops = _stops(points)
    if not stops:
        return "Map of the ports: no entry of this timeline names a known place"
    route = ", ".join(f"{n}. {port_label(s)}" for n, s in enumerate(stops, 1))
    return f"Map of the ports in time order: {route}"


def port_map(points: Sequence[MapPoint], title: str = "Ports of the custody timeline") -> Markup:
    """The SVG map of `points` (in time order). Consecutive visits to one port are one stop;
    each port is drawn once, labelled with the numbers of its stops."""
    stops = _stops(points)
    ports: dict[str, tuple[MapPoint, list[int]]] = {}
    for number, stop in enumerate(stops, 1):
        ports.setdefault(stop.locode, (stop, []))[1].append(number)
    x, y, width, height = _view(stops)
    unit = width / 100  # 1% of the view's width: dot, text and stroke sizes scale with it
    label = map_label(stops)
    if stops:
        route = ", ".join(f"{n}. {port_label(s)}" for n, s in enumerate(stops, 1))
        description = f"{len(stops)} stops at {len(ports)} ports: {route}."
    else:
        description = "No entry of this timeline names a known place."
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="port-map" role="img" width="100%" '
        f'viewBox="{_n(x)} {_n(y)} {_n(width)} {_n(height)}" aria-label="{escape(label)}" '
        f'preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(description)}</desc>",
        '<rect class="sea" x="-360" y="-180" width="1080" height="540" fill="#dcebf5"/>',
        f'<path class="land" d="{_outline()}" fill="#cfd8c4" stroke="#93a38a" '
        f'stroke-width="{_n(unit * 0.15)}"/>',
    ]
    if len(stops) > 1:
        line = " ".join(f"{_n(s.x)},{_n(s.y)}" for s in stops)
        parts.append(
            f'<polyline class="route" points="{line}" fill="none" stroke="#0a6b2d" '
            f'stroke-width="{_n(unit * 0.6)}" stroke-linejoin="round" stroke-linecap="round" '
            f'stroke-dasharray="{_n(unit * 1.6)} {_n(unit * 0.8)}"/>'
        )
    for point, numbers in ports.values():
        tag = ",".join(str(n) for n in numbers)
        # Labels of ports in the view's east part go to the left of their dot, inside the view.
        east = point.x > x + width * 0.55
        text_x = point.x - unit * 2 if east else point.x + unit * 2
        parts.append(
            f'<g class="port" data-locode="{escape(point.locode)}">'
            f'<circle cx="{_n(point.x)}" cy="{_n(point.y)}" r="{_n(unit * 1.3)}" '
            f'fill="#0a6b2d" stroke="#fff" stroke-width="{_n(unit * 0.4)}"/>'
            f'<text x="{_n(text_x)}" y="{_n(point.y + unit * 1.1)}" '
            f'text-anchor="{"end" if east else "start"}" '
            f'font-size="{_n(unit * 3.2)}" font-family="system-ui, sans-serif" fill="#102a12" '
            f'stroke="#fff" stroke-width="{_n(unit * 0.6)}" paint-order="stroke">'
            f"{escape(tag)}. {escape(port_label(point))}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _locode_of(entry: Mapping[str, Any]) -> str | None:
    record = entry.get("record") or {}
    if entry.get("kind") == "scan":
        code = record.get("location")
        return code.upper() if isinstance(code, str) and code else None
    if entry.get("kind") == "epcis":
        event = record.get("event") or {}
        for field in ("bizLocation", "readPoint"):
            value = event.get(field)
            uri = value.get("id") if isinstance(value, Mapping) else None
            found = LOCODE_URI.match(uri) if isinstance(uri, str) else None
            if found:
                return found.group(1).upper()
    return None


def timeline_points(
    custody_json: Mapping[str, Any], registry: LocationRegistry | None = None
) -> list[MapPoint]:
    """The located entries of a custody timeline, in its (time) order: border scans at a
    port, custody events whose business location or read point is a `urn:un:locode:` place.
    Coordinates and names come from `registry` (default: the bundled registry; pass the
    gateway's to include places agencies registered). Withheld entries and places the
    registry does not know are left out."""
    places = registry if registry is not None else _bundled()
    out: list[MapPoint] = []
    for entry in custody_json.get("entries") or []:
        if not isinstance(entry, Mapping) or entry.get("withheld"):
            continue
        code = _locode_of(entry)
        place = places.find(code) if code else None
        if place is None:
            continue
        time = entry.get("time")
        out.append(
            MapPoint(
                place.locode,
                place.name,
                place.lat,
                place.lon,
                time if isinstance(time, str) else None,
            )
        )
    return out
