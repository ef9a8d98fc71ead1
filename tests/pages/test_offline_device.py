"""The officer's app offline, the gaps closed after the first version (real chromium, real stack):

- a shipment reference set on the Scan page travels in the signed offline record
  (`offline-scan/4`) and lands on the synced scan row; one /v1/verify would refuse is refused
  on the page, with no verdict and nothing queued;
- the bundle's maximum age is the gateway's `bundle_max_age_seconds`, not a constant in JS;
- the Device page does not offer to register a device that is already registered: it shows
  its state and the name it was registered under.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from api.models import Device, ScanEvent
from tests.pages.conftest import no_axe_violations, shoot, sign_in
from tests.pages.test_offline import OFFICER, SERIALS, _ready, _register, _scan
from tests.people import make_user
from tests.scanner.test_offline import World
from tests.stack import GTIN, Stack

SHIPMENT = "AWB 176-12345675"


@pytest.fixture
def world(stack: Stack) -> World:
    world = World(stack)
    make_user(stack, world.officer["apiKey"], OFFICER, "officer")
    return world


def _offline_ready(page: Any, live: str) -> None:
    page.goto(live + "/scan")
    _ready(page)
    page.locator("#offline-status", has_text="Ready offline").wait_for()


def test_offline_scan_carries_the_shipment_to_the_synced_row(
    world: World, live: str, page: Any
) -> None:
    sign_in(page, live, OFFICER)
    page.wait_for_url(live + "/")
    device_id = _register(page, live)
    _offline_ready(page, live)
    page.get_by_label("Shipment reference (optional)").fill(SHIPMENT)
    page.context.set_offline(True)
    verdict = _scan(page, tag=world.tags[SERIALS[0]], gtin=GTIN, serial=SERIALS[0])
    verdict.locator(".verdict[data-offline=true]").wait_for()
    assert "queued" in verdict.inner_text()
    queued = page.evaluate(
        """async () => {
          const m = await import("/static/offline.js");
          return (await m.device.pending()).map((e) => JSON.parse(e.record));
        }"""
    )
    assert [(r["schema"], r["shipment"]) for r in queued] == [
        ("borderledger/offline-scan/4", SHIPMENT)
    ]

    # A reference /v1/verify would refuse: a message, no verdict, nothing more queued.
    page.get_by_label("Shipment reference (optional)").fill("AWB;1")
    _scan(page, gtin=GTIN, serial=SERIALS[3]).locator(".error").wait_for()
    assert "Shipment reference" in page.locator("#verdict .error").inner_text()
    assert page.locator("#verdict .verdict").count() == 0
    assert page.locator("#offline-queue").inner_text().endswith(": 1")

    page.context.set_offline(False)
    page.locator("#offline-status", has_text="Synced: 1").wait_for(timeout=20_000)
    world.stack.gateway.scans.flush()
    with Session(world.stack.gateway.engine) as session:
        rows = session.exec(
            select(ScanEvent).where(ScanEvent.device_id == device_id).order_by(col(ScanEvent.id))
        ).all()
    assert [(r.serial, r.origin, r.shipment, r.actor_name) for r in rows] == [
        (SERIALS[0], "offline", SHIPMENT, OFFICER)
    ]


def test_bundle_max_age_comes_from_the_gateway(world: World, live: str, page: Any) -> None:
    world.stack.gateway.settings.bundle_max_age_seconds = 1.0
    sign_in(page, live, OFFICER)
    page.wait_for_url(live + "/")
    _offline_ready(page, live)
    limit = page.evaluate('async () => (await import("/static/offline.js")).maxAge()')
    assert limit == 1
    time.sleep(2)  # the bundle just fetched is now older than the gateway allows
    page.context.set_offline(True)
    _scan(page, tag=world.tags[SERIALS[0]], gtin=GTIN, serial=SERIALS[0]).locator(
        ".error"
    ).wait_for()
    assert "outdated" in page.locator("#verdict .error").inner_text()
    assert page.locator("#verdict .verdict").count() == 0

    # The same bundle within a longer allowance (a page served with another setting): judged.
    page.context.set_offline(False)
    world.stack.gateway.settings.bundle_max_age_seconds = 3600.0
    _offline_ready(page, live)
    assert page.evaluate('async () => (await import("/static/offline.js")).maxAge()') == 3600
    page.context.set_offline(True)
    verdict = _scan(page, tag=world.tags[SERIALS[0]], gtin=GTIN, serial=SERIALS[0])
    verdict.locator(".verdict[data-offline=true] .word", has_text="Genuine").wait_for()


def test_registered_device_is_not_offered_registration_again(
    world: World, live: str, page: Any, shots: Path | None
) -> None:
    sign_in(page, live, OFFICER)
    page.wait_for_url(live + "/")
    page.goto(live + "/device")
    _ready(page)
    register = page.get_by_role("button", name="Register this device")
    assert register.is_visible()
    assert page.locator("#device-state").inner_text() == "not registered"
    assert page.locator("#device-registered-name").is_hidden()
    page.get_by_label("Device name").fill("Gate 4 phone")
    register.click()
    page.locator("#device-state", has_text=re.compile(r"^registered$")).wait_for()
    assert register.is_hidden() and page.get_by_label("Device name").is_hidden()
    assert page.locator("#device-registered-name").inner_text() == "Gate 4 phone"

    page.reload()
    _ready(page)
    assert page.locator("#device-state").inner_text() == "registered"
    assert register.is_hidden()
    device_id = page.locator("#device-id").inner_text()
    with Session(world.stack.gateway.engine) as session:
        [stored] = session.exec(select(Device).where(Device.device_id == device_id)).all()
    assert stored.name == "Gate 4 phone"
    # The gateway's name is shown, even when the device's own copy has none (older versions).
    page.evaluate(
        """async () => {
          const m = await import("/static/offline.js");
          const key = await m.device.get("device", "key");
          delete key.name;
          await m.device.put("device", "key", key);
        }"""
    )
    page.reload()
    _ready(page)
    page.locator("#device-registered-name", has_text="Gate 4 phone").wait_for()
    assert register.is_hidden()
    no_axe_violations(page)
    shoot(page, shots, "offline-device-registered")

    # Revoked at the gateway: the next contact forgets it, and registration is offered again.
    r = world.stack.client.post(
        f"/v1/devices/{device_id}/revoke", headers=world.stack.headers(world.officer["apiKey"])
    )
    assert r.status_code == 200, r.text
    page.reload()
    _ready(page)
    page.locator("#device-state", has_text=re.compile(r"^revoked$")).wait_for()
    assert register.is_visible() and page.locator("#device-registered-name").is_hidden()
