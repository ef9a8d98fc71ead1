"""Offline verdicts from a trust bundle match the gateway's online verdicts on the same real
stack (Anvil, real database, the real app); and what offline cannot know is said."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from eth_account import Account

from chain.contract import connect
from chain.tx import TransactionSender
from ledger.digital_link import DigitalLink
from ledger.errors import InvalidInput
from ledger.scanned import Scanned
from ledger.trustbundle import verify_bundle
from ledger.verdicts import OFFLINE_ONLY, Reason, Verdict
from scanner.offline import TrustBundle, judge
from tests.stack import GTIN, Stack
from tests.worlds import OTHER_GTIN, VerdictWorld

SERIALS = [f"SN{i:04d}" for i in range(8)]
DAY = 86_400.0


class World(VerdictWorld):
    """Acme (batch L1, L2 after its key is revoked), a rival with its own GTIN, an officer."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack, SERIALS)

    def revoke_holder_signer(self) -> None:
        """Acme revokes its tag key on chain (with its own chain key, as the holder would)."""
        account = Account.from_key(self.sealed(self.holder, "key_encrypted"))
        registry = self.stack.registry
        sender = TransactionSender(connect(self.stack.node.url), account, registry.decode_revert)
        registry.with_sender(sender).revoke_signer(str(self.holder["signer"]))

    def online(self, **body: Any) -> dict[str, Any]:
        return self.stack.verify(self.officer["apiKey"], **body)

    def bundle(self) -> TrustBundle:
        self.stack.sync()
        r = self.stack.client.get(
            "/v1/trust-bundle", headers=self.stack.headers(self.officer["apiKey"])
        )
        assert r.status_code == 200, r.text
        key = self.stack.client.get("/v1/trust-bundle/key").json()["publicKey"]
        verified = verify_bundle(r.json(), key)
        return TrustBundle.from_payload(verified.payload, verified.public_key)

    def offline(self, bundle: TrustBundle, **body: Any) -> dict[str, Any]:
        return judge(bundle, Scanned.from_request(body), max_age=DAY)


@pytest.fixture
def world(stack: Stack) -> World:
    return World(stack)


def same(online: dict[str, Any], offline: dict[str, Any]) -> None:
    """Same verdict; same reasons except what only one side can know (membership, index)."""
    assert offline["verdict"] == online["verdict"], (online, offline)
    online_only = {"SERIAL_IN_BATCH", "SERIAL_NOT_VERIFIABLE", "INDEX_STALE"}
    assert [r for r in online["reasons"] if r not in online_only] == [
        r for r in offline["reasons"] if r not in OFFLINE_ONLY
    ], (online["reasons"], offline["reasons"])
    assert offline["summary"].split(":")[0] == online["summary"].split(":")[0]
    assert offline["batchId"] == online["batchId"]
    assert offline["product"] == online["product"]


def test_offline_matches_online_for_every_verdict(world: World) -> None:
    forged = world.tag(secrets.token_bytes(32), SERIALS[1])
    foreign = world.tag(world.sealed(world.rival, "signer_key_encrypted"), SERIALS[1])
    unknown_lot = world.tags[SERIALS[1]].replace("/10/L1/", "/10/L9/")
    unknown_gtin = DigitalLink("00000000000017", "L1", "SN0001").to_uri()
    cases: dict[str, dict[str, Any]] = {
        "genuine": {"tag": world.tags[SERIALS[0]]},
        "forged": {"tag": forged},
        "foreign signer": {"tag": foreign},
        "unknown batch": {"tag": unknown_lot},
        "unknown gtin": {"tag": unknown_gtin},
        "rival genuine": {
            "tag": world.tag(
                world.sealed(world.rival, "signer_key_encrypted"), "R-1", "R1", OTHER_GTIN
            )
        },
    }
    bundle = world.bundle()
    expected = {
        "genuine": ("GENUINE", "SIGNATURE_VALID"),
        "forged": ("COUNTERFEIT_SUSPECT", "SIGNER_UNKNOWN"),
        "foreign signer": ("COUNTERFEIT_SUSPECT", "SIGNER_FOREIGN"),
        "unknown batch": ("COUNTERFEIT_SUSPECT", "BATCH_UNKNOWN"),
        "unknown gtin": ("COUNTERFEIT_SUSPECT", "GTIN_UNKNOWN"),
        "rival genuine": ("GENUINE", "SIGNATURE_VALID"),
    }
    for name, body in cases.items():
        online, offline = world.online(**body), world.offline(bundle, **body)
        same(online, offline)
        verdict, reason = expected[name]
        assert offline["verdict"] == verdict and reason in offline["reasons"], (name, offline)
        assert offline["offline"] is True and offline["bundle"]["block"] == bundle.index_block
    genuine = world.offline(bundle, **cases["genuine"])
    assert genuine["signer"] == world.holder["signer"]
    assert "MEMBERSHIP_NOT_CHECKED" in genuine["reasons"]  # said, not hidden
    assert genuine["summary"].startswith("Genuine") and "membership" in genuine["summary"]

    # statuses: stolen and decommissioned items, destroyed, then the whole batch recalled
    world.set_status("stolen", SERIALS[2])
    world.set_status("decommissioned", SERIALS[3])
    world.set_status("destroyed", SERIALS[4])
    bundle = world.bundle()
    for serial, verdict, reason in (
        (SERIALS[2], "STOLEN", "ITEM_STOLEN"),
        (SERIALS[3], "DECOMMISSIONED", "ITEM_DECOMMISSIONED"),
        (SERIALS[4], "COUNTERFEIT_SUSPECT", "ITEM_DESTROYED"),
        (SERIALS[0], "GENUINE", "SIGNATURE_VALID"),
    ):
        for body in ({"tag": world.tags[serial]}, {"gtin": GTIN, "serial": serial}):
            offline = world.offline(bundle, **body)
            if "tag" not in body and verdict == "GENUINE":  # typed, nothing flagged
                assert offline["verdict"] == "UNVERIFIED", offline
                continue
            assert offline["verdict"] == verdict and reason in offline["reasons"], offline
            same(world.online(**body), offline)
    world.set_status("recalled")
    bundle = world.bundle()
    recalled = {"tag": world.tags[SERIALS[5]]}
    offline = world.offline(bundle, **recalled)
    same(world.online(**recalled), offline)
    assert offline["verdict"] == "RECALLED" and offline["reasons"][-1] == "BATCH_RECALLED"
    # an item's own status outranks its batch's, as online
    stolen = world.offline(bundle, tag=world.tags[SERIALS[2]])
    assert stolen["verdict"] == "STOLEN"
    same(world.online(tag=world.tags[SERIALS[2]]), stolen)
    # the bundle says when: batch status time and item times are chain block times
    batch_row = next(b for b in bundle.payload["batches"] if b["batchId"] == world.bid)
    assert batch_row["status"] == "recalled" and batch_row["statusChangedAt"] > 0
    items = {i["status"]: i for i in bundle.payload["items"]}
    assert set(items) == {"stolen", "decommissioned", "destroyed"}
    assert all(i["changedAt"] >= batch_row["registeredAt"] for i in items.values())


def test_revoked_signer_matches_online(world: World) -> None:
    holder_key = world.sealed(world.holder, "signer_key_encrypted")
    time.sleep(1.1)  # the revocation is in a later second than L1's registration
    world.revoke_holder_signer()
    time.sleep(1.1)  # the next batch is registered in a later second than the revocation
    later = world.stack.enroll(world.holder["apiKey"], lot="L2", serials=["NEW-1"])
    world.stack.sync()
    bundle = world.bundle()
    signer = next(s for s in bundle.payload["signers"] if s["address"] == world.holder["signer"])
    assert signer["revokedAt"] is not None and signer["addedAt"] <= signer["revokedAt"]
    revoked = {"tag": world.tag(holder_key, "NEW-1", "L2")}
    online, offline = world.online(**revoked), world.offline(bundle, **revoked)
    same(online, offline)
    assert offline["verdict"] == "COUNTERFEIT_SUSPECT"
    assert offline["reasons"][0] == "SIGNER_REVOKED", offline
    assert offline["batchId"] == later["batchId"]
    # tags printed before the revocation still verify (key active at L1's registration)
    before = {"tag": world.tags[SERIALS[0]]}
    same(world.online(**before), world.offline(bundle, **before))
    assert world.offline(bundle, **before)["verdict"] == "GENUINE"


def test_typed_serials_offline_are_unverified(world: World) -> None:
    bundle = world.bundle()
    for body in (
        {"gtin": GTIN, "serial": SERIALS[0]},
        {"gtin": GTIN, "serial": SERIALS[0], "lot": "L1"},
        {"gtin": GTIN, "serial": "NEVER-ENROLLED"},  # online: SERIAL_UNKNOWN
        {"tag": world.tags[SERIALS[0]].split("?")[0]},  # an unsigned link
    ):
        offline = world.offline(bundle, **body)
        assert offline["verdict"] == "UNVERIFIED", offline
        assert offline["reasons"] == ["MEMBERSHIP_NOT_CHECKED", "SIGNATURE_MISSING"]
        assert "Hold until verified online" in offline["summary"]
    assert world.online(gtin=GTIN, serial=SERIALS[0])["verdict"] == "GENUINE_UNSIGNED"
    # unknown GTIN / lot are still suspects offline, as online
    for body, reason in (
        ({"gtin": "00000000000017", "serial": "X"}, "GTIN_UNKNOWN"),
        ({"gtin": GTIN, "serial": SERIALS[0], "lot": "NOPE"}, "BATCH_UNKNOWN"),
    ):
        same(world.online(**body), world.offline(bundle, **body))
        assert world.offline(bundle, **body)["reasons"][0] == reason


def test_bundle_age_and_stale_warning(world: World) -> None:
    bundle = world.bundle()
    issued = bundle.issued_at
    fresh = judge(bundle, Scanned.from_request({"tag": world.tags[SERIALS[0]]}), max_age=DAY)
    assert fresh["bundle"]["stale"] is False and "BUNDLE_STALE" not in fresh["reasons"]
    assert fresh["bundle"]["block"] == bundle.index_block
    assert bundle.block_time is not None and abs(bundle.block_time - issued) < 600
    later = judge(
        bundle,
        Scanned.from_request({"tag": world.tags[SERIALS[0]]}),
        max_age=3600,
        now=issued + 7200,
    )
    assert later["bundle"]["stale"] is True and later["bundle"]["ageSeconds"] == 7200
    assert later["reasons"][0] == "BUNDLE_STALE" and later["verdict"] == "GENUINE"


def test_offline_names_match_the_gateway_and_docs() -> None:
    """Offline reason and verdict names are the gateway's: one vocabulary (ledger.verdicts),
    the offline-only ones marked, and all documented, the offline-only ones with the offline
    verdicts."""
    from ledger.config import PROJECT_ROOT

    doc = (PROJECT_ROOT / "docs" / "reason-codes.md").read_text()
    offline_doc = doc.split("## Offline verdicts")[1].split("## Detector findings")[0]
    assert OFFLINE_ONLY and set(Reason) > OFFLINE_ONLY
    for reason in Reason:
        if reason in OFFLINE_ONLY:
            assert f"`{reason.value}`" in offline_doc, reason
        assert f"`{reason.value}`" in doc, reason
    for verdict in Verdict:
        assert f"`{verdict.value}`" in doc, verdict
    assert f"`{Verdict.UNVERIFIED.value}`" in offline_doc


def test_items_with_bad_identities_are_input_errors() -> None:
    with pytest.raises(InvalidInput):
        Scanned.from_request({"gtin": "09506000134353", "serial": "X"})  # check digit
    with pytest.raises(InvalidInput):
        Scanned.from_request({"tag": "https://example.com/01/09506000134352"})


def test_offline_judging_is_a_domain_module() -> None:
    """scanner.offline and ledger.trustbundle load without web3, FastAPI or an HTTP client."""
    import subprocess
    import sys

    code = (
        "import sys, scanner.offline, ledger.trustbundle; "
        "bad = [m for m in ('web3', 'fastapi', 'httpx', 'sqlmodel') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_route_policies_offline_raise_the_same_findings(stack: Stack) -> None:
    """The bundle's route policies feed the detector on the scanner: a read outside the
    authorized markets is DIVERSION_SUSPECT offline as online, and GENUINE_DIVERTED with the
    markets the goods were made for; a copy read twice in the session is held."""
    from scanner.offline import RouteCheck

    holder = stack.org("Acme Pharma", "rights_holder", "TMK 1")
    officer = stack.org("NL Customs", "customs")
    batch = stack.enroll(
        holder["apiKey"],
        serials=SERIALS,
        route_policy={"markets": ["NL", "DE"], "nodes": ["CNSHA", "NLRTM"]},
    )
    stack.sync()
    tags = {t["serial"]: t["uri"] for t in stack.tags(holder["apiKey"], str(batch["batchId"]))}
    r = stack.client.get("/v1/trust-bundle", headers=stack.headers(officer["apiKey"]))
    key = stack.client.get("/v1/trust-bundle/key").json()["publicKey"]
    verified = verify_bundle(r.json(), key)
    bundle = TrustBundle.from_payload(verified.payload, verified.public_key)
    route = RouteCheck(bundle)
    for serial, port, diverted in ((SERIALS[0], "NLRTM", False), (SERIALS[1], "USLAX", True)):
        online = stack.verify(officer["apiKey"], tag=tags[serial], location={"unlocode": port})
        offline = judge(bundle, Scanned.from_request({"tag": tags[serial]}), max_age=DAY)
        route.apply(offline, port)
        expected = "GENUINE_DIVERTED" if diverted else "GENUINE"
        assert offline["verdict"] == online["verdict"] == expected
        if diverted:
            said = "made for the DE, NL markets, scanned at USLAX (Los Angeles)"
            assert online["summary"] == (
                f"Genuine, diverted: {said}. Gray-market goods: check the recordation before "
                "release."
            )
            assert offline["summary"] == (
                f"Genuine, diverted: {said} (offline: membership in the batch not checked). "
                "Gray-market goods: check the recordation before release."
            )
        assert ("DIVERSION_SUSPECT" in offline["reasons"]) is diverted, offline
        assert [f["reasonCode"] for f in offline["findings"]] == [
            f["reasonCode"] for f in online["findings"]
        ]
        assert [r for r in online["reasons"] if r != "SERIAL_IN_BATCH"] == [
            r for r in offline["reasons"] if r != "MEMBERSHIP_NOT_CHECKED"
        ]
    # the same tag at Shanghai, then at Los Angeles a second later, in one offline session
    t0 = time.time() - 60
    for port, at in (("CNSHA", t0), ("USLAX", t0 + 1)):
        copied = judge(bundle, Scanned.from_request({"tag": tags[SERIALS[3]]}), max_age=DAY)
        route.apply(copied, port, at)
    assert copied["verdict"] == "COUNTERFEIT_SUSPECT" and "CLONE_SUSPECT" in copied["reasons"]
    assert copied["summary"] == (
        "Potential copy: this code was already scanned at CNSHA (Shanghai) 1 second ago; "
        "the same item cannot be in both places. Hold the item."
    )
    with pytest.raises(InvalidInput, match="unknown location 'NL2R9'"):
        route.apply(
            judge(bundle, Scanned.from_request({"tag": tags[SERIALS[2]]}), max_age=DAY), "NL2R9"
        )
