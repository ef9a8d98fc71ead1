"""The auditor's "find an item" page in a real chromium: typed GTIN + serial (a wrong check
digit, an item nothing is recorded about, one outside the auditor's grants are messages on the
page), a photographed label decoded in the browser, the form without script; other roles
refused; and the port map of the item's timeline drawn in the page (screenshots)."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from api.pages.worldmap import port_map, timeline_points
from bench.ui import label_image
from chain.node import LocalNode
from ledger.config import PROJECT_ROOT
from tests.audit_world import SERIAL, audit_stack, build
from tests.pages.conftest import PHONE, no_axe_violations, shoot, sign_in
from tests.people import make_user
from tests.stack import GTIN, Stack

WASM = PROJECT_ROOT / "api" / "pages" / "static" / "zxing_reader.wasm"
TIMELINE = f"/audit/items/{GTIN}/{SERIAL}"


@pytest.fixture(scope="module")
def stack(anvil: LocalNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the module (the `live` fixture serves it)."""
    if not WASM.is_file():
        subprocess.run(
            ["make", "-C", str(PROJECT_ROOT), str(WASM.relative_to(PROJECT_ROOT))],
            check=True,
            capture_output=True,
        )
    with audit_stack(anvil, tmp_path_factory.mktemp("audit-find")) as running:
        running.world = build(running)  # type: ignore[attr-defined]
        world = running.world  # type: ignore[attr-defined]
        make_user(running, world["auditor"]["apiKey"], "ada@audit.example", "admin")
        make_user(running, world["narrow"]["apiKey"], "nils@audit.example", "admin")
        make_user(running, world["officer"]["apiKey"], "olivia@customs.example", "officer")
        make_user(running, world["holder"]["apiKey"], "hana@acme.example", "admin")
        yield running


def _png(luma: Any) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(luma).save(buffer, format="PNG")
    return buffer.getvalue()


def _find(page: Any, gtin: str, serial: str) -> None:
    page.get_by_label("GTIN").fill(gtin)
    page.get_by_label("Serial number").fill(serial)
    page.get_by_role("button", name="Find").click()


def test_an_auditor_finds_an_item_typed_or_photographed(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    sign_in(page, live, "ada@audit.example")
    page.get_by_role("link", name="Audit").click()
    page.wait_for_url(live + "/audit")
    page.wait_for_function("window.__auditFindReady === true")
    no_axe_violations(page)
    shoot(page, shots, "audit-find")

    _find(page, GTIN[:-1] + str((int(GTIN[-1]) + 1) % 10), SERIAL)
    alert = page.get_by_role("alert")
    assert "check digit" in alert.inner_text()
    assert page.get_by_label("Serial number").input_value() == SERIAL  # kept for correcting
    no_axe_violations(page)
    shoot(page, shots, "audit-find-error")

    _find(page, GTIN, "NOPE1")
    assert "Nothing is recorded about item" in page.get_by_role("alert").inner_text()

    _find(page, GTIN, SERIAL)
    page.wait_for_url(live + TIMELINE)

    page.goto(live + "/audit")
    page.wait_for_function("window.__auditFindReady === true")
    tags = [
        t["uri"]
        for t in stack.tags(stack.world["holder"]["apiKey"], stack.world["batch"]["batchId"])
    ]  # type: ignore[attr-defined]
    [tag] = [t for t in tags if f"/21/{SERIAL}" in t]
    page.set_input_files(
        "#photo",
        files=[{"name": "label.png", "mimeType": "image/png", "buffer": _png(label_image(tag))}],
    )
    page.wait_for_url(live + TIMELINE)


def test_outside_the_grants_is_a_message_and_the_form_works_without_script(
    stack: Stack, live: str, chromium: Any
) -> None:
    context = chromium.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, live, "nils@audit.example")
        page.goto(live + "/audit")
        _find(page, GTIN, SERIAL)
        assert "not among the products you may audit" in page.get_by_role("alert").inner_text()
        assert page.get_by_label("GTIN").input_value() == GTIN
        context.clear_cookies()
        sign_in(page, live, "ada@audit.example")
        page.goto(live + "/audit")
        _find(page, GTIN, SERIAL)
        page.wait_for_url(live + TIMELINE)
    finally:
        context.close()


def test_other_roles_are_refused_the_audit_pages(stack: Stack, live: str, page: Any) -> None:
    for email in ("olivia@customs.example", "hana@acme.example"):
        sign_in(page, live, email)
        page.wait_for_url(live + "/")
        assert page.get_by_role("link", name="Audit").count() == 0
        answer = page.goto(live + "/audit")
        assert answer is not None and answer.status == 403
        assert "for auditors" in page.get_by_role("alert").inner_text()
        answer = page.goto(live + TIMELINE + "/report.pdf")
        assert answer is not None and answer.status == 403
        page.context.clear_cookies()


def test_the_port_map_of_the_timeline(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    key = stack.world["auditor"]["apiKey"]  # type: ignore[attr-defined]
    r = stack.client.get(f"/v1/items/{GTIN}/{SERIAL}/custody", headers=stack.headers(key))
    assert r.status_code == 200, r.text
    points = timeline_points(r.json(), stack.gateway.custody.locations.registry)
    assert [p.locode for p in points] == ["CNSHA", "CNSHA", "SGSIN", "NLRTM", "NLRTM"]
    sign_in(page, live, "ada@audit.example")
    page.goto(live + "/audit")
    page.evaluate(
        "html => { document.querySelector('main').innerHTML = html; }",
        f"<h1>Ports of {GTIN} / {SERIAL}</h1>{port_map(points)}",
    )
    figure = page.get_by_role("img", name="Map of the ports in time order")
    assert "1. CNSHA" in figure.get_attribute("aria-label")
    box = figure.bounding_box()
    assert box is not None and box["width"] > 300 and abs(box["width"] / box["height"] - 2) < 0.05
    assert page.locator("svg.port-map text").all_text_contents() == [
        "1. CNSHA Shanghai",
        "2. SGSIN Singapore",
        "3. NLRTM Rotterdam",
    ]
    no_axe_violations(page)
    shoot(page, shots, "audit-port-map")
