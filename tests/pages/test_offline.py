"""The officer's app offline, in a real chromium against a real stack (Anvil, database, app):

- the browser's verifier (static/offline.js: WebCrypto Ed25519, @noble secp256k1/keccak) and
  `borderledger scan --offline` give the same verdicts and reason codes on the same tags and
  the same signed bundle;
- the journey: page loaded online, device registered, network cut → the page reloads from the
  service worker's cache, typed and tag scans judged from the bundle and queued signed →
  network back → synced, the scan rows on the gateway name the device and the officer;
- a revoked device is refused at sync and forgets its bundle and queue;
- a tampered bundle gives a message and no verdict.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from api.models import ScanEvent
from bench.ui_offline import measure_offline
from ledger.digital_link import DigitalLink, parse_digital_link
from tests.pages.conftest import no_axe_violations, shoot, sign_in
from tests.people import make_user
from tests.scanner.test_offline import World
from tests.stack import GTIN, Stack, borderledger

SERIALS = [f"SN{i:04d}" for i in range(8)]
OFFICER = "olivia@customs.example"
#: secp256k1 group order: a tag's `s` replaced by n - s (and v flipped) is the malleable twin.
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture
def world(stack: Stack) -> World:
    world = World(stack)
    make_user(stack, world.officer["apiKey"], OFFICER, "officer")
    return world


def _malleable(tag: str) -> str:
    """The same tag with its signature's high-s twin (valid maths, refused as malleable)."""
    link = parse_digital_link(tag)
    assert link.signature is not None
    sig = link.signature
    s = N - int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + s.to_bytes(32, "big") + bytes([55 - sig[64]])
    return DigitalLink(link.gtin, link.lot, link.serial, twin, link.host).to_uri()


def _envelope(world: World) -> tuple[dict[str, Any], str]:
    world.stack.sync()
    r = world.stack.client.get(
        "/v1/trust-bundle", headers=world.stack.headers(world.officer["apiKey"])
    )
    assert r.status_code == 200, r.text
    key = world.stack.client.get("/v1/trust-bundle/key").json()["publicKey"]
    return r.json(), str(key)


def _browser_verdicts(
    page: Any, live: str, envelope: dict[str, Any], key: str, codes: list[dict[str, str]]
) -> list[dict[str, Any]]:
    page.goto(live + "/login")  # any page of the origin: the module is imported, not run
    return list(
        page.evaluate(
            """async ([envelope, key, codes]) => {
              const m = await import("/static/offline.js");
              const bundle = await m.verifyBundle(envelope, key);
              return codes.map((code) => {
                try { return m.judge(bundle, m.scanned(code), { maxAge: 86400 }); }
                catch (exc) { return { error: exc.message }; }
              });
            }""",
            [envelope, key, codes],
        )
    )


def test_browser_and_command_line_give_the_same_verdicts(
    world: World, live: str, page: Any, tmp_path: Path
) -> None:
    holder_key = world.sealed(world.holder, "signer_key_encrypted")
    world.set_status("stolen", SERIALS[2])
    world.set_status("recalled", SERIALS[3])
    world.set_status("decommissioned", SERIALS[4])
    world.set_status("destroyed", SERIALS[5])
    time.sleep(1.1)  # the revocation in a later second than L1's registration
    world.revoke_holder_signer()
    time.sleep(1.1)
    world.stack.enroll(world.holder["apiKey"], lot="L2", serials=["NEW-1"])
    cases: dict[str, str] = {
        "genuine": world.tags[SERIALS[0]],
        "forged signature": world.tag(secrets.token_bytes(32), SERIALS[1]),
        "foreign signer": world.tag(world.sealed(world.rival, "signer_key_encrypted"), "X-1"),
        "malleable signature": _malleable(world.tags[SERIALS[1]]),
        "unknown GTIN": DigitalLink("00000000000017", "L1", "SN0001").to_uri(),
        "unknown lot": world.tags[SERIALS[1]].replace("/10/L1/", "/10/L9/"),
        "revoked signer": world.tag(holder_key, "NEW-1", "L2"),
        "signed before revocation": world.tags[SERIALS[6]],
        "stolen": world.tags[SERIALS[2]],
        "recalled": world.tags[SERIALS[3]],
        "decommissioned": world.tags[SERIALS[4]],
        "destroyed": world.tags[SERIALS[5]],
        "unsigned link": world.tags[SERIALS[0]].split("?")[0],
        "typed": f"(01){GTIN}(21){SERIALS[0]}",
        "typed stolen": f"(01){GTIN}(21){SERIALS[2]}",
        "typed unknown lot": f"(01){GTIN}(10)NOPE(21){SERIALS[0]}",
        "bad check digit": DigitalLink("00000000000018", "L1", "SN1").to_uri(),
    }
    envelope, key = _envelope(world)
    bundle_file = tmp_path / "bundle.json"
    bundle_file.write_text(json.dumps(envelope))
    args = ["scan", "--offline", "--bundle", str(bundle_file), "--gateway-key", key, "--json"]
    args += ["--device-dir", str(tmp_path / "no-device")]
    for text in cases.values():
        args += ["--code", text]
    run = borderledger(tmp_path / "home", *args)
    assert run.returncode in (1, 3), run.stderr
    cli = json.loads(run.stdout.strip().splitlines()[-1])["codes"]
    assert len(cli) == len(cases)

    def request(text: str) -> dict[str, str]:
        if text.startswith("http"):
            return {"tag": text}
        gtin, rest = text[4:18], text[18:]
        lot = rest[4 : rest.index("(21)")] if rest.startswith("(10)") else ""
        return {"gtin": gtin, "serial": rest.split("(21)")[1], "lot": lot}

    browser = _browser_verdicts(
        page, live, envelope, key, [request(text) for text in cases.values()]
    )
    expected = {
        "genuine": ("GENUINE", "SIGNATURE_VALID"),
        "forged signature": ("COUNTERFEIT_SUSPECT", "SIGNER_UNKNOWN"),
        "foreign signer": ("COUNTERFEIT_SUSPECT", "SIGNER_FOREIGN"),
        "malleable signature": ("COUNTERFEIT_SUSPECT", "SIGNATURE_INVALID"),
        "unknown GTIN": ("COUNTERFEIT_SUSPECT", "GTIN_UNKNOWN"),
        "unknown lot": ("COUNTERFEIT_SUSPECT", "BATCH_UNKNOWN"),
        "revoked signer": ("COUNTERFEIT_SUSPECT", "SIGNER_REVOKED"),
        "signed before revocation": ("GENUINE", "SIGNATURE_VALID"),
        "stolen": ("STOLEN", "ITEM_STOLEN"),
        "recalled": ("RECALLED", "ITEM_RECALLED"),
        "decommissioned": ("DECOMMISSIONED", "ITEM_DECOMMISSIONED"),
        "destroyed": ("COUNTERFEIT_SUSPECT", "ITEM_DESTROYED"),
        "unsigned link": ("UNVERIFIED", "SIGNATURE_MISSING"),
        "typed": ("UNVERIFIED", "MEMBERSHIP_NOT_CHECKED"),
        "typed stolen": ("STOLEN", "ITEM_STOLEN"),
        "typed unknown lot": ("COUNTERFEIT_SUSPECT", "BATCH_UNKNOWN"),
    }
    for (name, text), ours, theirs in zip(cases.items(), browser, cli, strict=True):
        if name == "bad check digit":  # a data error on both sides: no verdict
            assert "check digit" in ours["error"] and theirs["verdict"] is None, (ours, theirs)
            continue
        assert ours["verdict"] == theirs["verdict"], (name, text, ours, theirs)
        assert ours["reasons"] == theirs["reasons"], (name, ours["reasons"], theirs["reasons"])
        assert ours["summary"] == theirs["summary"], name
        for field in ("batchId", "signer", "product", "item"):
            assert ours[field] == theirs[field], (name, field, ours[field], theirs[field])
        assert ours["bundle"]["block"] == theirs["bundle"]["block"]
        verdict, reason = expected[name]
        assert ours["verdict"] == verdict and reason in ours["reasons"], (name, ours)


def _ready(page: Any) -> None:
    page.wait_for_function("document.documentElement.dataset.offlineReady === 'true'")


def _add_tag_field(page: Any) -> None:
    """A `tag` field on the scan form, as the camera fills it (the camera helper's part)."""
    page.evaluate(
        """() => {
          const form = document.getElementById("scan-form");
          if (form.elements.namedItem("tag")) return;
          const input = document.createElement("input");
          input.type = "hidden"; input.name = "tag"; form.append(input);
        }"""
    )


def _scan(page: Any, *, tag: str = "", gtin: str = "", serial: str = "") -> Any:
    _add_tag_field(page)
    page.evaluate("(tag) => { document.querySelector('#scan-form [name=tag]').value = tag; }", tag)
    page.get_by_label("GTIN").fill(gtin)
    page.get_by_label("Serial number").fill(serial)
    page.get_by_role("button", name="Check").click()
    return page.locator("#verdict")


def _register(page: Any, live: str) -> str:
    page.goto(live + "/device")
    _ready(page)
    page.get_by_role("button", name="Register this device").click()
    page.locator("#device-state", has_text=re.compile(r"^registered$")).wait_for()
    device_id = page.locator("#device-id").inner_text()
    assert device_id.startswith("dev-") and len(device_id) == 36
    return str(device_id)


def test_offline_journey_scans_queue_and_sync(
    world: World, live: str, page: Any, shots: Path | None
) -> None:
    sign_in(page, live, OFFICER)
    page.wait_for_url(live + "/")
    device_id = _register(page, live)
    no_axe_violations(page)
    shoot(page, shots, "offline-device")
    page.goto(live + "/scan")
    _ready(page)
    page.locator("#offline-status", has_text="Ready offline").wait_for()
    page.evaluate("async () => { await navigator.serviceWorker.ready; }")
    page.wait_for_function("navigator.serviceWorker.controller !== null")

    page.context.set_offline(True)
    page.reload()  # the app shell from the service worker's cache
    _ready(page)
    assert "Offline" in page.locator("#offline-status").inner_text()
    verdict = _scan(page, tag=world.tags[SERIALS[0]], gtin=GTIN, serial=SERIALS[0])
    verdict.locator(".verdict[data-offline=true]").wait_for()
    assert verdict.locator(".word").inner_text() == "Genuine"
    assert "MEMBERSHIP_NOT_CHECKED" in verdict.inner_text()
    assert "queued" in verdict.inner_text()
    no_axe_violations(page)
    shoot(page, shots, "offline-genuine")
    forged = world.tag(secrets.token_bytes(32), SERIALS[1])
    _scan(page, tag=forged, gtin=GTIN, serial=SERIALS[1]).locator(
        ".word", has_text="Potential suspect"
    ).wait_for()
    assert "SIGNER_UNKNOWN" in page.locator("#verdict").inner_text()
    _scan(page, gtin=GTIN, serial=SERIALS[3]).locator(
        ".word", has_text="Unverified offline"
    ).wait_for()
    shoot(page, shots, "offline-unverified")
    assert page.locator("#offline-queue").inner_text().endswith(": 3")
    with Session(world.stack.gateway.engine) as session:
        assert not session.exec(select(ScanEvent).where(ScanEvent.device_id == device_id)).all()

    page.context.set_offline(False)  # `online`: the queue goes to /v1/scans/sync
    page.locator("#offline-status", has_text="Synced: 3").wait_for(timeout=20_000)
    assert page.locator("#offline-queue").inner_text().endswith(": 0")
    with Session(world.stack.gateway.engine) as session:
        rows = session.exec(
            select(ScanEvent).where(ScanEvent.device_id == device_id).order_by(col(ScanEvent.id))
        ).all()
    assert [(r.origin, r.offline_verdict, r.actor_name) for r in rows] == [
        ("offline", "GENUINE", OFFICER),
        ("offline", "COUNTERFEIT_SUSPECT", OFFICER),
        ("offline", "UNVERIFIED", OFFICER),
    ]
    assert [r.verdict for r in rows] == ["GENUINE", "COUNTERFEIT_SUSPECT", "GENUINE_UNSIGNED"]
    assert rows[0].serial == SERIALS[0] and rows[2].serial == SERIALS[3]


def test_revoked_device_is_refused_and_forgets(world: World, live: str, page: Any) -> None:
    sign_in(page, live, OFFICER)
    page.wait_for_url(live + "/")
    device_id = _register(page, live)
    page.goto(live + "/scan")
    _ready(page)
    page.context.set_offline(True)
    _scan(page, gtin=GTIN, serial=SERIALS[0]).locator(".verdict").wait_for()
    assert page.locator("#offline-queue").inner_text().endswith(": 1")
    r = world.stack.client.post(
        f"/v1/devices/{device_id}/revoke", headers=world.stack.headers(world.officer["apiKey"])
    )
    assert r.status_code == 200, r.text
    page.context.set_offline(False)
    page.locator("#offline-status", has_text="revoked").wait_for(timeout=20_000)
    assert page.locator("#offline-queue").inner_text().endswith(": 0")
    stored = page.evaluate(
        """async () => {
          const m = await import("/static/offline.js");
          return [await m.device.storedBundle(), (await m.device.pending()).length];
        }"""
    )
    assert stored == [None, 0]
    with Session(world.stack.gateway.engine) as session:
        assert not session.exec(select(ScanEvent).where(ScanEvent.device_id == device_id)).all()
    page.context.set_offline(True)
    _scan(page, gtin=GTIN, serial=SERIALS[0]).locator(".error").wait_for()
    assert "No trust bundle" in page.locator("#verdict .error").inner_text()
    assert page.locator("#verdict .verdict").count() == 0


def test_tampered_bundle_gives_a_message_not_a_verdict(
    world: World, live: str, page: Any, shots: Path | None
) -> None:
    sign_in(page, live, OFFICER)
    page.wait_for_url(live + "/")
    page.goto(live + "/scan")
    _ready(page)
    page.evaluate(
        """async () => {
          const m = await import("/static/offline.js");
          const stored = await m.device.storedBundle();
          const p = stored.envelope.payload;
          const flipped = (p[10] === "A" ? "B" : "A");
          const envelope = { ...stored.envelope, payload: p.slice(0, 10) + flipped + p.slice(11) };
          await m.device.put("bundle", "current", { ...stored, envelope });
        }"""
    )
    page.context.set_offline(True)
    _scan(page, tag=world.tags[SERIALS[0]], gtin=GTIN, serial=SERIALS[0]).locator(
        ".error"
    ).wait_for()
    message = page.locator("#verdict .error").inner_text()
    assert "cannot be used" in message and "altered" in message, message
    assert page.locator("#verdict .verdict").count() == 0
    no_axe_violations(page)
    shoot(page, shots, "offline-tampered")


def test_offline_verdict_bench_runs(world: World, live: str, page: Any) -> None:
    sign_in(page, live, OFFICER)
    page.wait_for_url(live + "/")
    _register(page, live)
    page.goto(live + "/scan")
    _add_tag_field(page)
    labels = [{"tag": world.tags[s]} for s in SERIALS[:4]] + [{"gtin": GTIN, "serial": "SN0001"}]
    codes = labels * 10  # 50 labels, as `bench ui` measures
    result = measure_offline(page, codes)
    print(json.dumps(result))  # the figure, with -s
    timing = result["offline_verdict_ms"]
    assert timing["n"] == 50 and 0 < timing["p50"] <= timing["p95"] <= timing["max"]
    assert result["offline_verdicts"] == {"GENUINE": 40, "UNVERIFIED": 10}
    # every scan was signed and queued on the registered device, and synced once back online
    page.locator("#offline-status", has_text="Synced: 50").wait_for(timeout=30_000)


def test_outdated_bundle_gives_a_message_not_a_verdict(world: World, live: str, page: Any) -> None:
    page.clock.install()  # the page's clock, moved on below (the bundle stays as fetched)
    sign_in(page, live, OFFICER)
    page.wait_for_url(live + "/")
    page.goto(live + "/scan")
    _ready(page)
    page.context.set_offline(True)
    page.clock.fast_forward("25:00:00")  # past the 24 h maximum age
    _scan(page, tag=world.tags[SERIALS[0]], gtin=GTIN, serial=SERIALS[0]).locator(
        ".error"
    ).wait_for()
    message = page.locator("#verdict .error").inner_text()
    assert "outdated (25 h old)" in message and "no verdict" in message, message
    assert page.locator("#verdict .verdict").count() == 0
