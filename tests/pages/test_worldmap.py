"""The port map (`api.pages.worldmap`): positions in the equirectangular frame, escaping of
names, the view cropped to the ports, the empty map, and the points a custody timeline
gives. Pure functions: no browser (tests/pages/test_audit_find.py draws one)."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

from api.pages.worldmap import OUTLINE, MapPoint, port_map, timeline_points
from detector import LocationRegistry

NS = {"svg": "http://www.w3.org/2000/svg"}
SHANGHAI = MapPoint("CNSHA", "Shanghai", 31.2, 121.5, "2026-11-20T08:00:00+00:00")
ROTTERDAM = MapPoint("NLRTM", "Rotterdam", 51.9, 4.1, "2026-11-22T08:00:00+00:00")


def _svg(points: list[MapPoint]) -> ElementTree.Element:
    return ElementTree.fromstring(str(port_map(points)))


def test_ports_are_dots_at_their_coordinates_joined_in_time_order() -> None:
    svg = _svg([SHANGHAI, SHANGHAI, ROTTERDAM])
    dots = {g.get("data-locode"): g.find("svg:circle", NS) for g in svg.iterfind("svg:g", NS)}
    assert list(dots) == ["CNSHA", "NLRTM"]  # one dot per port
    assert (float(dots["CNSHA"].get("cx")), float(dots["CNSHA"].get("cy"))) == (301.5, 58.8)
    assert (float(dots["NLRTM"].get("cx")), float(dots["NLRTM"].get("cy"))) == (184.1, 38.1)
    route = svg.find("svg:polyline", NS)
    assert route is not None and route.get("points") == "301.5,58.8 184.1,38.1"
    labels = [t.text for t in svg.iterfind(".//svg:text", NS)]
    assert labels == ["1. CNSHA Shanghai", "2. NLRTM Rotterdam"]
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == (
        "Map of the ports in time order: 1. CNSHA Shanghai, 2. NLRTM Rotterdam"
    )
    assert svg.find("svg:title", NS) is not None and "2 stops" in svg.find("svg:desc", NS).text


def test_a_return_to_a_port_is_a_new_stop_on_the_same_dot() -> None:
    svg = _svg([SHANGHAI, ROTTERDAM, SHANGHAI])
    assert [t.text for t in svg.iterfind(".//svg:text", NS)] == [
        "1,3. CNSHA Shanghai",
        "2. NLRTM Rotterdam",
    ]
    assert len(svg.find("svg:polyline", NS).get("points").split()) == 3


def test_the_view_is_cropped_to_the_ports_at_two_to_one() -> None:
    x, y, width, height = map(float, _svg([ROTTERDAM]).get("viewBox").split())
    assert (width, height) == (60.0, 30.0)  # the narrowest view around one port
    assert x < ROTTERDAM.longitude + 180 < x + width and y < 90 - ROTTERDAM.latitude < y + height
    x, y, width, height = map(float, _svg([SHANGHAI, ROTTERDAM]).get("viewBox").split())
    assert width == 2 * height and x <= 184.1 - 12 and x + width >= 301.5 + 12
    assert y >= 0 and y + height <= 180
    east = MapPoint("NZAKL", "Auckland", -36.8, 174.8)
    west = MapPoint("USADK", "Adak", 51.9, -176.6)
    assert _svg([east, west]).get("viewBox") == "0 0 360 180"  # wider than the world


def test_names_are_escaped() -> None:
    evil = MapPoint("XXABC", '<script>alert("x")</script> & "Depot"', 10.0, 10.0)
    markup = str(port_map([evil]))
    assert "<script>" not in markup
    assert "&lt;script&gt;" in markup and "&amp;" in markup and "&#34;" in markup
    svg = ElementTree.fromstring(markup)  # still well-formed
    assert svg.find(".//svg:text", NS).text == '1. XXABC <script>alert("x")</script> & "Depot"'


def test_an_empty_list_is_the_world_saying_no_place() -> None:
    svg = _svg([])
    assert svg.get("viewBox") == "0 0 360 180"
    assert svg.find("svg:g", NS) is None and svg.find("svg:polyline", NS) is None
    assert "no entry of this timeline names a known place" in svg.get("aria-label")
    land = svg.find("svg:path", NS)
    assert land is not None and land.get("d") == OUTLINE.read_text().strip()


def test_the_outline_is_the_world_in_the_frame() -> None:
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", OUTLINE.read_text())]
    xs, ys = numbers[0::2], numbers[1::2]
    assert len(numbers) > 8000
    assert min(ys) >= 0 and max(ys) <= 180
    assert min(xs) >= -360 and max(xs) <= 720  # rings across the antimeridian drawn twice


def _entry(kind: str, record: dict[str, Any], time: str, withheld: bool = False) -> dict[str, Any]:
    return {"kind": kind, "record": record, "time": time, "withheld": withheld}


def test_timeline_points_are_the_located_entries_in_order() -> None:
    timeline = {
        "entries": [
            _entry("scan", {"location": "CNSHA"}, "t1"),
            _entry("scan", {"location": None}, "t2"),  # no place
            _entry(
                "epcis",
                {"event": {"readPoint": {"id": "urn:un:locode:SGSIN"}}},
                "t3",
            ),
            _entry(
                "epcis",
                {"event": {"readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"}}},
                "t4",
            ),  # a GLN nobody registered
            _entry("withheld", {}, "t5", withheld=True),
            _entry("scan", {"location": "ZZZZZ"}, "t6"),  # unknown to the registry
            _entry("scan", {"location": "nlrtm"}, "t7"),
        ]
    }
    points = timeline_points(timeline)
    assert [(p.locode, p.time) for p in points] == [
        ("CNSHA", "t1"),
        ("SGSIN", "t3"),
        ("NLRTM", "t7"),
    ]
    assert points[0].name and abs(points[0].latitude - 31.2) < 1
    own = LocationRegistry()
    own.add("DEXYZ", "Inland depot", "DE", 50.1, 8.6)
    mine = timeline_points({"entries": [_entry("scan", {"location": "DEXYZ"}, "t")]}, own)
    assert mine == [MapPoint("DEXYZ", "Inland depot", 50.1, 8.6, "t")]
    assert timeline_points({"entries": []}) == []
