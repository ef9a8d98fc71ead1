"""The Scan page's camera, photo, shipment, findings and flag-for-case journeys in a real
chromium: Chromium's fake capture device plays a Y4M video of a label made here from a real
signed tag (bench/ui.py makes both), zxing-wasm decodes it in the page, and the verdict is
painted with nothing typed."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zxingcpp
from PIL import Image
from sqlmodel import Session, select

from api.case_models import Case
from api.models import ScanEvent
from api.pages.kit import VERDICT_WORDS
from bench.ui import camera_args, label_image, write_y4m
from ledger.config import PROJECT_ROOT
from ledger.verdicts import Verdict
from tests.pages.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, no_axe_violations, shoot, sign_in
from tests.people import make_user
from tests.stack import GTIN, Stack

SHIPMENT = "AWB 176-12345675"
WASM = PROJECT_ROOT / "api" / "pages" / "static" / "zxing_reader.wasm"


@pytest.fixture(scope="module", autouse=True)
def decoder() -> None:
    """zxing-wasm's .wasm where the gateway serves it (`make setup` copies it; here if not)."""
    if not WASM.is_file():
        subprocess.run(
            ["make", "-C", str(PROJECT_ROOT), str(WASM.relative_to(PROJECT_ROOT))],
            check=True,
            capture_output=True,
        )


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake camera's video file: each test writes its label there before scanning."""
    path = tmp_path_factory.mktemp("camera") / "label.y4m"
    write_y4m(path, np.full((480, 640), 235, dtype=np.uint8))  # a blank card until then
    return path


@pytest.fixture(scope="module")
def camera_browser(chromium: Any, video: Path) -> Iterator[Any]:
    """A second chromium whose camera is the fake capture device showing `video`."""
    browser = chromium.browser_type.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *camera_args(video)]
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def camera_page(camera_browser: Any) -> Iterator[Any]:
    context = camera_browser.new_context(viewport=PHONE, permissions=["camera"])
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors


def _world(stack: Stack) -> list[str]:
    """A rights holder's enrolled batch (its signed tags) and a customs officer."""
    holder = stack.org("Acme Pharma", "rights_holder")
    batch = stack.enroll(holder["apiKey"])
    stack.sync()
    tags = [t["uri"] for t in stack.tags(holder["apiKey"], batch["batchId"])]
    customs = stack.org("Customs NL", "customs")
    make_user(stack, customs["apiKey"], "olivia@customs.example", "officer")
    return tags


def _png(luma: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(luma).save(buffer, format="PNG")
    return buffer.getvalue()


def _datamatrix_label(tag: str) -> np.ndarray:
    """The tag as a DataMatrix (zxing-cpp's writer, as a printer would make it) on a card."""
    symbol = np.asarray(
        zxingcpp.create_barcode(tag, zxingcpp.BarcodeFormat.DataMatrix).to_image(scale=5)
    )
    card = np.full((480, 640), 235, dtype=np.uint8)
    top, left = (480 - symbol.shape[0]) // 2, (640 - symbol.shape[1]) // 2
    card[top : top + symbol.shape[0], left : left + symbol.shape[1]] = symbol
    return card


def _scan_row(stack: Stack, scan_id: str) -> ScanEvent:
    stack.sync()
    with Session(stack.gateway.engine) as session:
        return session.exec(select(ScanEvent).where(ScanEvent.scan_id == scan_id)).one()


def _open_scan_page(page: Any, live: str, port: str, shipment: str = "") -> None:
    sign_in(page, live, "olivia@customs.example")
    page.wait_for_url(live + "/")
    page.goto(live + "/scan")
    page.wait_for_function("() => window.__scanReady === true")
    page.get_by_label("Port (UN/LOCODE, optional)").fill(port)
    page.get_by_label("Port (UN/LOCODE, optional)").dispatch_event("change")
    page.get_by_label("Shipment reference (optional)").fill(shipment)
    page.get_by_label("Shipment reference (optional)").dispatch_event("change")


def test_the_camera_reads_a_label_and_the_verdict_is_painted_with_no_typing(
    stack: Stack, live: str, camera_page: Any, video: Path, shots: Path | None
) -> None:
    tags = _world(stack)
    page = camera_page
    fetched: list[tuple[str, str]] = []
    page.on("response", lambda r: fetched.append((r.url, r.headers.get("content-type", ""))))
    _open_scan_page(page, live, "NLRTM", SHIPMENT)
    write_y4m(video, label_image(tags[3]))
    page.get_by_role("button", name="Scan with camera").click()
    word = page.locator("#verdict .word")
    word.wait_for()
    assert word.inner_text() == "Genuine"  # signed tag read by the camera: proof + signature
    verdict = page.locator("#verdict")
    assert "SIGNATURE_VALID" in verdict.inner_text()
    assert page.locator("[data-proof]").get_attribute("data-proof") == "checked"
    assert "Acme Pharma" in verdict.inner_text()
    assert page.locator("[data-shipment]").inner_text() == SHIPMENT
    # Nothing was typed: the typed fields are still empty and the camera has stopped.
    assert page.get_by_label("GTIN").input_value() == ""
    assert page.get_by_label("Serial number").input_value() == ""
    assert page.locator("#camera-view").is_hidden()
    # The decoder came from the gateway as application/wasm; nothing from anywhere else.
    assert (live + "/static/zxing_reader.wasm", "application/wasm") in fetched
    assert all(url.startswith(live) for url, _ in fetched), fetched
    # The scan row carries the shipment reference and the port.
    scan_id = page.locator("form.flag input[name=scan_id]").get_attribute("value")
    row = _scan_row(stack, scan_id)
    assert (row.shipment, row.location, row.serial, row.input_kind) == (
        SHIPMENT,
        "NLRTM",
        "SN0003",
        "tag",
    )
    no_axe_violations(page)
    shoot(page, shots, "scan-camera-genuine")
    # Port and shipment are kept on the device: a new page load has them filled in.
    page.reload()
    page.wait_for_function("() => window.__scanReady === true")
    assert page.get_by_label("Port (UN/LOCODE, optional)").input_value() == "NLRTM"
    assert page.get_by_label("Shipment reference (optional)").input_value() == SHIPMENT
    assert page.locator("#verdict .word").count() == 0


def test_frames_without_a_code_are_said_and_the_camera_stops_on_request(
    stack: Stack, live: str, camera_page: Any, video: Path
) -> None:
    _world(stack)
    page = camera_page
    _open_scan_page(page, live, "NLRTM")
    write_y4m(video, np.full((480, 640), 235, dtype=np.uint8))  # a card with no code on it
    page.get_by_role("button", name="Scan with camera").click()
    alert = page.locator("#camera-status[role=alert]")
    alert.wait_for()
    assert "No code read yet" in alert.inner_text()
    assert page.locator("#camera-view").is_visible()  # still looking
    no_axe_violations(page)
    page.get_by_role("button", name="Stop camera").click()
    assert page.locator("#camera-view").is_hidden()
    assert page.locator("#verdict .word").count() == 0  # nothing sent


def test_a_photo_is_decoded_in_the_browser_and_an_unreadable_one_is_said(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    tags = _world(stack)
    _open_scan_page(page, live, "NLRTM")
    page.set_input_files(
        "#photo",
        files=[
            {
                "name": "blank.png",
                "mimeType": "image/png",
                "buffer": _png(np.full((480, 640), 235, dtype=np.uint8)),
            }
        ],
    )
    alert = page.locator("#camera-status[role=alert]")
    alert.wait_for()
    assert "No QR code or DataMatrix found in this photo" in alert.inner_text()
    assert page.locator("#verdict .word").count() == 0  # nothing sent, nothing recorded
    no_axe_violations(page)
    shoot(page, shots, "scan-camera-unreadable-photo")
    page.set_input_files(
        "#photo",
        files=[
            {"name": "label.png", "mimeType": "image/png", "buffer": _png(label_image(tags[7]))}
        ],
    )
    page.locator("#verdict .word", has_text="Genuine").wait_for()
    assert "SN0007" in page.locator("#verdict").inner_text()
    # A DataMatrix holding the tag reads the same way.
    datamatrix = _png(_datamatrix_label(tags[8]))
    page.set_input_files(
        "#photo", files=[{"name": "dm.png", "mimeType": "image/png", "buffer": datamatrix}]
    )
    page.locator("#verdict", has_text="SN0008").wait_for()
    assert page.locator("#verdict .word").inner_text() == "Genuine"


def test_a_camera_refused_is_said_on_the_page(stack: Stack, live: str, page: Any) -> None:
    _world(stack)
    _open_scan_page(page, live, "NLRTM")  # this chromium has no camera and no permission
    page.get_by_role("button", name="Scan with camera").click()
    alert = page.locator("#camera-status[role=alert]")
    alert.wait_for()
    text = alert.inner_text()
    assert "camera was refused" in text or "No camera found" in text, text
    no_axe_violations(page)


def test_a_clone_shows_its_findings_and_one_tap_opens_a_detention_case(
    stack: Stack, live: str, camera_page: Any, video: Path, shots: Path | None
) -> None:
    tags = _world(stack)
    page = camera_page
    # First seen at Shanghai.
    _open_scan_page(page, live, "CNSHA", "PARCEL-1")
    write_y4m(video, label_image(tags[5]))
    page.get_by_role("button", name="Scan with camera").click()
    page.locator("#verdict .word", has_text="Genuine").wait_for()
    # The same code at Los Angeles moments later: a clone.
    page.get_by_label("Port (UN/LOCODE, optional)").fill("USLAX")
    page.get_by_label("Shipment reference (optional)").fill(SHIPMENT)
    page.get_by_role("button", name="Scan with camera").click()
    page.locator("#verdict .word", has_text="Potential suspect").wait_for()
    findings = page.locator("#verdict .findings")
    assert "clone" in findings.inner_text()
    seen = page.locator("#verdict .seen li").first.inner_text()
    assert seen.startswith("CNSHA · ") and "PARCEL-1" in seen  # where and when it was seen
    no_axe_violations(page)
    shoot(page, shots, "scan-camera-findings")
    scan_id = page.locator("form.flag input[name=scan_id]").get_attribute("value")
    page.get_by_role("button", name="Flag for a detention case").click()
    opened = page.locator("#flag-result [role=status]")
    opened.wait_for()
    link = opened.get_by_role("link", name="Open the case")
    with Session(stack.gateway.engine) as session:
        case = session.exec(select(Case).where(Case.source_ref == scan_id)).one()
    assert opened.inner_text().startswith(f"Case {case.id} opened")
    assert link.get_attribute("href") == f"/cases/{case.case_id}"
    assert (case.source, case.port, case.reference, case.profile) == (
        "scan",
        "USLAX",
        SHIPMENT,
        "us-trademark",
    )
    no_axe_violations(page)
    shoot(page, shots, "scan-camera-flagged")
    # A second tap shows the same case: one case per scan.
    page.get_by_role("button", name="Flag for a detention case").click()
    page.locator("#flag-result [role=status]", has_text=f"Case {case.id} opened").wait_for()
    with Session(stack.gateway.engine) as session:
        assert len(session.exec(select(Case).where(Case.source_ref == scan_id)).all()) == 1


def test_every_verdict_has_its_big_word() -> None:
    """The page's words cover every verdict of the gateway and the offline verifier."""
    assert set(VERDICT_WORDS) == {v.value for v in Verdict}
    assert all(tone in ("ok", "warn", "bad", "neutral") for _, tone in VERDICT_WORDS.values())


def test_flagging_a_scan_without_a_port_says_why_and_opens_nothing(
    stack: Stack, live: str, page: Any
) -> None:
    _world(stack)
    sign_in(page, live, "olivia@customs.example")
    page.wait_for_url(live + "/")
    page.goto(live + "/scan")
    page.get_by_label("GTIN").fill(GTIN)
    page.get_by_label("Serial number").fill("SN0002")
    page.get_by_role("button", name="Check").click()
    page.locator("#verdict .word", has_text="Genuine, unsigned").wait_for()
    page.get_by_role("button", name="Flag for a detention case").click()
    alert = page.locator("#flag-result [role=alert]")
    alert.wait_for()
    assert "Set the port before scanning" in alert.inner_text()
    with Session(stack.gateway.engine) as session:
        assert session.exec(select(Case)).all() == []
    no_axe_violations(page)
    # An index that stopped advancing is said above the verdict.
    stack.gateway.settings.stale_after_seconds = 0
    page.get_by_role("button", name="Check").click()
    page.locator("#verdict [data-stale]", has_text="Index stale").wait_for()
    assert "INDEX_STALE" in page.locator("#verdict .reasons").inner_text()


def test_without_javascript_a_typed_scan_is_flagged_through_plain_form_posts(
    stack: Stack, live: str, chromium: Any
) -> None:
    _world(stack)
    context = chromium.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, live, "olivia@customs.example")
        page.wait_for_url(live + "/")
        page.goto(live + "/scan")
        page.get_by_label("Port (UN/LOCODE, optional)").fill("DEHAM")
        page.get_by_label("GTIN").fill(GTIN)
        page.get_by_label("Serial number").fill("SN0004")
        page.get_by_role("button", name="Check").click()
        page.locator("#verdict .word", has_text="Genuine, unsigned").wait_for()
        page.get_by_role("button", name="Flag for a detention case").click()
        page.wait_for_url(live + "/scan/flag")
        with Session(stack.gateway.engine) as session:
            case = session.exec(select(Case)).one()
        assert (case.port, case.profile) == ("DEHAM", "eu-standard")
        assert page.get_by_role("status").inner_text().startswith(f"Case {case.id} opened")
        # (axe-core needs scripts: the same fragments are checked in the journeys above)
    finally:
        context.close()
