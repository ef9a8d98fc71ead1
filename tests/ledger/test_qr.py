"""QR rendering round-trips through the scanner's zxing-cpp decoder."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from ledger.digital_link import DigitalLink
from ledger.errors import InvalidInput
from ledger.qr import render_png, render_svg
from ledger.tags import TagDomain, TagSigner
from scanner.decode import DecodedCode, decode_image, decode_image_bytes

KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
SVG_NAMESPACE = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def tag_uri() -> str:
    signer = TagSigner(KEY, TagDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3"))
    gtin, lot, serial = "09506000134352", "L2025/07%A", "SN0000123/B?&x"
    uri = DigitalLink(gtin, lot, serial, signer.sign(gtin, serial, lot)).to_uri()
    assert "?sig=" in uri
    return uri


@pytest.mark.parametrize("level", ["M", "Q", "H"])
def test_png_decodes_to_the_exact_uri(tag_uri: str, level: str) -> None:
    png = render_png(tag_uri, level)  # type: ignore[arg-type]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert decode_image_bytes(png) == [DecodedCode(tag_uri, "QRCode")]


def test_png_box_size_scales_the_image(tag_uri: str) -> None:
    small = Image.open(io.BytesIO(render_png(tag_uri, box_size=4)))
    large = Image.open(io.BytesIO(render_png(tag_uri, box_size=8)))
    assert small.size[0] == small.size[1]
    assert large.size == (small.size[0] * 2, small.size[1] * 2)
    # 4 px per module with a 4-module quiet zone on each side: (modules + 8) * 4 pixels.
    modules = small.size[0] // 4 - 8
    assert small.size[0] % 4 == 0
    assert (modules - 17) % 4 == 0  # a QR code of version v has 4v + 17 modules
    assert decode_image(large) == [DecodedCode(tag_uri, "QRCode")]


def test_higher_error_correction_needs_more_modules(tag_uri: str) -> None:
    sizes = [Image.open(io.BytesIO(render_png(tag_uri, lvl))).size[0] for lvl in ("M", "Q", "H")]  # type: ignore[arg-type]
    assert sizes[0] <= sizes[1] <= sizes[2]
    assert sizes[0] < sizes[2]


@pytest.mark.parametrize("level", ["M", "H"])
def test_svg_is_xml_with_an_svg_root(tag_uri: str, level: str) -> None:
    svg = render_svg(tag_uri, level)  # type: ignore[arg-type]
    root = ET.fromstring(svg)
    assert root.tag in ("svg", f"{SVG_NAMESPACE}svg")
    paths = [element for element in root.iter() if element.tag.endswith("path")]
    assert len(paths) == 1  # one scalable path, as the docstring promises
    assert paths[0].get("d")


@pytest.mark.parametrize("level", ["L", "X", "m", "", "MM"])
def test_invalid_error_level_raises(tag_uri: str, level: str) -> None:
    with pytest.raises(ValueError, match="error correction"):
        render_png(tag_uri, level)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="error correction"):
        render_svg(tag_uri, level)  # type: ignore[arg-type]


def test_non_image_bytes_raise_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not a readable image"):
        decode_image_bytes(b"not an image")
    with pytest.raises(InvalidInput):
        decode_image_bytes(b"")


def test_truncated_png_raises_invalid_input(tag_uri: str) -> None:
    png = render_png(tag_uri)
    with pytest.raises(InvalidInput):
        decode_image_bytes(png[: len(png) // 2])


def test_image_without_a_code_decodes_to_nothing() -> None:
    buffer = io.BytesIO()
    Image.new("L", (200, 200), 255).save(buffer, format="PNG")
    assert decode_image_bytes(buffer.getvalue()) == []
