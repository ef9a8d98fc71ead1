"""The auditor's custody timeline page in a real chromium on a real chain (Anvil): an auditor
sees every entry verified by the browser itself against the chain; then database rows are
tampered with (a scan edited, a scan deleted, a checkpoint claimed but never anchored) and
after each the page flags exactly what `borderledger audit` flags, run in the same test. The
page's Content-Security-Policy admits the configured RPC origin only: the same Anvil under
another origin is refused by the browser. Who may read the page follows the API's scoping
(auditor grants, a holder's own products). axe-core, screenshots (docs/screenshots)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update
from sqlmodel import Session, select
from typer.testing import CliRunner

from api.models import Checkpoint, CheckpointStatus, ScanEvent
from api.pages.audit import content_security_policy
from borderledger.cli import app
from chain.node import LocalNode
from ledger.config import Settings
from tests.pages.conftest import no_axe_violations, shoot, sign_in
from tests.people import make_user
from tests.stack import GTIN, Stack, running_stack

AGENCY = "NL Customs"
SERIAL = "SN0007"
PAGE = f"/audit/items/{GTIN}/{SERIAL}"


@pytest.fixture
def stack(anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path) -> Iterator[Stack]:
    """The pages' stack with an anchoring agency (the gateway anchors its checkpoints)."""
    with running_stack(anvil, database, tmp_path, anchor_organization=AGENCY) as running:
        yield running


def _document(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-24T10:00:00Z",
        "epcisBody": {"eventList": events},
    }


def _history(stack: Stack) -> dict[str, Any]:
    """Three scans and a shipping event, a checkpoint; two more scans, a second checkpoint."""
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 19-1")
    officer = stack.org(AGENCY, "customs")
    auditor = stack.org("Court of Audit", "auditor")
    stack.grant(auditor)
    stack.enroll(holder["apiKey"])
    stack.sync()
    key = officer["apiKey"]
    start = datetime.now(UTC) - timedelta(days=2)
    for hours in (0, 5, 10):
        stack.verify(key, gtin=GTIN, serial=SERIAL, location={"unlocode": "CNSHA"},
                     scanned_at=(start + timedelta(hours=hours)).isoformat())  # fmt: skip
    event = {
        "type": "ObjectEvent",
        "eventID": "urn:uuid:ship-7",
        "eventTime": (start + timedelta(hours=12)).isoformat(),
        "eventTimeZoneOffset": "+00:00",
        "epcList": [f"https://id.gs1.org/01/{GTIN}/21/{SERIAL}"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "readPoint": {"id": "urn:un:locode:CNSHA"},
    }
    r = stack.client.post("/v1/epcis/capture", json=_document([event]), headers=stack.headers(key))
    assert r.status_code == 200, r.text
    stack.gateway.scans.flush()
    stack.gateway.custody.anchorer.run_once(force=True)
    for hours in (30, 31):
        stack.verify(key, gtin=GTIN, serial=SERIAL, location={"unlocode": "NLRTM"},
                     scanned_at=(start + timedelta(hours=hours)).isoformat())  # fmt: skip
    stack.gateway.scans.flush()
    stack.gateway.custody.anchorer.run_once(force=True)
    stack.sync()
    return {"holder": holder, "officer": officer, "auditor": auditor}


def _cli(stack: Stack, live: str, key: str) -> dict[str, Any]:
    """`borderledger audit --json` against the same gateway and chain."""
    result = CliRunner().invoke(
        app,
        ["audit", GTIN, SERIAL, "--gateway", live, "--rpc", stack.node.url, "--api-key", key,
         "--registry", stack.registry.address, "--json"],
    )  # fmt: skip
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    assert lines, result.output
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def _summary_state(page: Any, states: tuple[str, ...], timeout: float = 30.0) -> str:
    """Wait until the check's summary is in one of `states`. Polled from here: Playwright's
    own wait_for_function evaluates strings in the page, which its policy forbids (no eval)."""
    deadline = time.monotonic() + timeout
    while True:
        state: str = page.evaluate("document.getElementById('audit-summary').dataset.state")
        if state in states:
            return state
        assert time.monotonic() < deadline, f"the check is still {state!r}"
        time.sleep(0.1)


def _checked(page: Any) -> dict[str, Any]:
    """Wait for the browser's check and read its result off the page."""
    _summary_state(page, ("verified", "failed"))
    checks = page.locator("#audit-checks li")
    found = [
        (checks.nth(i).get_attribute("data-subject"), checks.nth(i).get_attribute("data-state"))
        for i in range(checks.count())
    ]
    proofs = {
        cell.get_attribute("data-proof"): (
            cell.get_attribute("data-state"),
            (cell.text_content() or "").strip(),
        )
        for cell in page.locator("[data-proof]").all()
    }
    return {"checks": found, "proofs": proofs}


def _same_as_cli(page: Any, cli: dict[str, Any]) -> dict[str, Any]:
    """The page's checks are the command's: same subjects, same states, same order."""
    seen = _checked(page)
    assert seen["checks"] == [(c["subject"], c["state"]) for c in cli["checks"]]
    return seen


def _entry_states(seen: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in seen["proofs"].items() if k.startswith("entry ")}


def test_an_auditor_sees_each_entry_verified_then_the_tampered_ones_flagged(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    world = _history(stack)
    make_user(stack, world["auditor"]["apiKey"], "ada@audit.example", "auditor")
    sign_in(page, live, "ada@audit.example")
    page.wait_for_url(live + "/")
    response = page.goto(live + PAGE)
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    assert f"connect-src 'self' {stack.node.url}" in csp and "script-src 'self'" in csp
    # Server-rendered: the six log entries, the enrollment, in time order, before any script.
    steps = page.locator("ol.timeline > li")
    assert steps.count() == 7
    assert page.locator("ol.timeline > li.kind-enrollment").count() == 1
    assert page.locator("ol.timeline > li.kind-scan").count() == 5
    times = page.locator("ol.timeline time").all_text_contents()  # off-screen steps too
    assert times == sorted(times)
    key = world["auditor"]["apiKey"]
    honest = _same_as_cli(page, _cli(stack, live, key))
    assert set(_entry_states(honest).values()) == {"verified"} and len(_entry_states(honest)) == 6
    assert honest["proofs"]["enrollment"][0] == "verified"
    summary = page.locator("#audit-summary")
    assert summary.get_attribute("data-state") == "verified"
    # the item's ports on the bundled map, in the order it was scanned
    drawn = page.locator("section.map img")
    journey = drawn.get_attribute("alt") or ""
    assert journey.index("CNSHA") < journey.index("NLRTM"), journey
    assert drawn.evaluate("img => img.complete && img.naturalWidth > 0")
    svg = page.request.get(live + (drawn.get_attribute("src") or ""))
    assert svg.status == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "NLRTM" in svg.text() and 'class="land"' in svg.text()
    assert page.get_by_role("link", name="Export as EPCIS 2.0").get_attribute("href") == (
        f"/v1/items/{GTIN}/{SERIAL}/custody/epcis"
    )
    assert (
        page.get_by_role("link", name="PDF report with proof status").get_attribute("href")
        == f"{PAGE}/report.pdf"
    )
    # axe-core is injected as an inline script, which this page's policy refuses: axe runs
    # in a second tab whose context bypasses the policy (the page itself is the same).
    checker = page.context.browser.new_context(bypass_csp=True)
    try:
        tab = checker.new_page()
        sign_in(tab, live, "ada@audit.example")
        tab.wait_for_url(live + "/")
        tab.goto(live + PAGE)
        _checked(tab)
        no_axe_violations(tab)
        shoot(tab, shots, "audit-timeline")
    finally:
        checker.close()

    # The same Anvil under an origin the deployment does not configure: the browser refuses.
    other = stack.node.url.replace("127.0.0.1", "localhost")
    page.get_by_label("RPC URL").fill(other)
    page.get_by_role("button", name="Check").click()
    _summary_state(page, ("failed",))
    assert "Content-Security-Policy" in summary.inner_text()
    assert set(_entry_states(_checked(page)).values()) == {"failed"}

    engine = stack.gateway.engine
    with Session(engine) as session:
        scans = session.exec(
            select(ScanEvent).where(ScanEvent.serial == SERIAL).order_by(ScanEvent.scanned_at)  # type: ignore[arg-type]
        ).all()
        edited, deleted = scans[1].id, scans[3].id
        session.execute(
            update(ScanEvent).where(ScanEvent.id == edited).values(verdict="COUNTERFEIT_SUSPECT")  # type: ignore[arg-type]
        )
        session.commit()
    # 1. a scan edited: that entry only
    page.reload()
    cli = _cli(stack, live, key)
    seen = _same_as_cli(page, cli)
    failed = {k for k, v in _entry_states(seen).items() if v == "failed"}
    assert len(failed) == 1 and "changed since logged" in seen["proofs"][failed.pop()][1]
    # 2. a scan deleted as well: the entry after it points at a missing one
    with Session(engine) as session:
        session.execute(delete(ScanEvent).where(ScanEvent.id == deleted))  # type: ignore[arg-type]
        session.commit()
    page.reload()
    seen = _same_as_cli(page, _cli(stack, live, key))
    gaps = [v[1] for k, v in seen["proofs"].items() if "deleted?" in v[1]]
    assert len(gaps) == 1
    # 3. a checkpoint the gateway claims but never anchored
    officer = world["officer"]
    stack.verify(officer["apiKey"], gtin=GTIN, serial=SERIAL, location={"unlocode": "NLRTM"})
    stack.gateway.scans.flush()
    size = stack.gateway.custody.mirror.catch_up()
    root = stack.gateway.custody.mirror.log.root(size)
    with Session(engine) as session:
        session.add(
            Checkpoint(
                agency=officer["address"], size=size, root="0x" + root.hex(),
                status=CheckpointStatus.ANCHORED.value, tx_hash="0x" + "ab" * 32, block_number=1,
            )
        )  # fmt: skip
        session.commit()
    page.reload()
    cli = _cli(stack, live, key)
    seen = _same_as_cli(page, cli)
    assert seen["proofs"][f"checkpoint {size}"][0] == "failed"
    assert "never anchored" in seen["proofs"][f"checkpoint {size}"][1]
    assert seen["proofs"][f"entry {size - 1}"][0] == "failed"
    assert page.locator("#audit-summary").get_attribute("data-state") == "failed"
    page.locator(f'[data-proof="checkpoint {size}"]').scroll_into_view_if_needed()
    shoot(page, shots, "audit-timeline-tampered")


def test_who_may_read_the_page_follows_the_api(stack: Stack, live: str, chromium: Any) -> None:
    world = _history(stack)
    other_holder = stack.org("Other Brand", "rights_holder", gtins=())
    ungranted = stack.org("Unlisted Auditor", "auditor")
    people = {
        "holder@acme.example": (world["holder"], "admin", 200),
        "owner@other.example": (other_holder, "admin", 404),
        "nobody@audit.example": (ungranted, "auditor", 404),
        "officer@nl.example": (world["officer"], "officer", 200),
    }
    for email, (org, role, expected) in people.items():
        make_user(stack, org["apiKey"], email, role)
        context = chromium.new_context()
        page = context.new_page()
        sign_in(page, live, email)
        page.wait_for_url(live + "/")
        response = page.goto(live + PAGE)
        assert response.status == expected, email
        # the map image answers to the same readers
        assert page.request.get(live + PAGE + "/map.svg").status == expected, email
        if expected == 404:
            assert page.get_by_text("No item with this GTIN and serial").is_visible()
            assert page.locator("#timeline-json").count() == 0
        context.close()
    # The form without script: the chosen RPC comes back in the field (a bad one does not).
    chosen = stack.node.url.replace("127.0.0.1", "localhost")
    # Signed out: to sign in. A bad GTIN: a page saying so, not a 500.
    context = chromium.new_context()
    page = context.new_page()
    page.goto(live + PAGE)
    assert page.url == live + "/login"
    make_user(stack, world["auditor"]["apiKey"], "ada@audit.example", "auditor")
    sign_in(page, live, "ada@audit.example")
    page.wait_for_url(live + "/")
    page.goto(live + PAGE + "?rpc=" + chosen)
    assert page.get_by_label("RPC URL").input_value() == chosen
    page.goto(live + PAGE + "?rpc=javascript:alert(1)")
    assert page.get_by_label("RPC URL").input_value() == stack.node.url
    response = page.goto(live + f"/audit/items/{GTIN[:-1]}0/{SERIAL}")
    assert response.status == 422
    context.close()


def test_the_policy_admits_only_the_configured_rpc_origins() -> None:
    base: dict[str, Any] = {"registry": "0x" + "11" * 20, "rpc_url": "http://127.0.0.1:8545"}
    csp = content_security_policy(Settings(**base))
    assert "connect-src 'self' http://127.0.0.1:8545;" in csp
    csp = content_security_policy(
        Settings(
            **base,
            audit_rpc_urls=["https://rpc.example/v1/key", "javascript:alert(1)", "https://a b"],
        )
    )
    assert "connect-src 'self' https://rpc.example;" in csp
    assert "javascript" not in csp and "8545" not in csp
