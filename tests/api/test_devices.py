"""Device registration and the sync of signed offline scans, on the real gateway stack."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from api.devices import sync_scans, syncing_device
from api.models import Organization, ScanEvent
from custody import entries
from ledger.scan_record import build_record
from scanner.device import DeviceKey, init_device
from tests.stack import GTIN, Stack

POLICY = {"markets": ["NL", "DE"], "nodes": ["CNSHA", "NLRTM"]}


@pytest.fixture
def world(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 19-1")
    officer = stack.org("NL Customs", "customs")
    other = stack.org("DE Zoll", "customs")
    batch = stack.enroll(holder["apiKey"], route_policy=POLICY, expiry="281231")
    stack.sync()
    tags = {t["serial"]: t["uri"] for t in stack.tags(holder["apiKey"], str(batch["batchId"]))}
    device, _ = init_device(tmp_path / "device")
    return {
        "holder": holder,
        "officer": officer,
        "other": other,
        "device": device,
        "tags": tags,
        **batch,
    }


def register(stack: Stack, key: str, device: DeviceKey, name: str = "handheld 7") -> Any:
    return stack.client.post(
        "/v1/devices",
        json={"name": name, "publicKey": device.public_key},
        headers=stack.headers(key),
    )


def signed(
    device: DeviceKey,
    *,
    serial: str = "SN0001",
    tag: str | None = None,
    location: str | None = "NLRTM",
    at: datetime | None = None,
    offline: dict[str, Any] | None = None,
    shipment: str | None = None,
) -> dict[str, str]:
    record = build_record(
        device_id=device.device_id,
        payload=tag or f"(01){GTIN}(21){serial}",
        kind="tag" if tag else "gs1",
        tag=tag,
        gtin=None if tag else GTIN,
        serial=None if tag else serial,
        lot=None,
        location=location,
        scanned_at=at or datetime.now(UTC) - timedelta(hours=3),
        offline_verdict=offline,
        shipment=shipment,
    )
    return {"record": record, "signature": device.sign(record)}


def sync(stack: Stack, key: str, device: DeviceKey, scans: list[dict[str, str]]) -> Any:
    return stack.client.post(
        "/v1/scans/sync",
        json={"deviceId": device.device_id, "scans": scans},
        headers=stack.headers(key),
    )


def rows(stack: Stack, scan_id: str) -> list[ScanEvent]:
    stack.gateway.scans.flush()
    with Session(stack.gateway.engine) as session:
        return list(session.exec(select(ScanEvent).where(ScanEvent.scan_id == scan_id)).all())


def test_register_list_revoke(stack: Stack, world: dict[str, Any]) -> None:
    officer, device = world["officer"]["apiKey"], world["device"]
    r = register(stack, officer, device)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["deviceId"] == device.device_id and body["publicKey"] == device.public_key
    assert body["organizationId"] == world["officer"]["id"] and body["revokedAt"] is None
    again = register(stack, officer, device, "renamed")  # a retry: same device, nothing new
    assert again.status_code == 201 and again.json()["deviceId"] == device.device_id
    assert again.json()["name"] == "handheld 7"
    pem = stack.client.post(
        "/v1/devices",
        json={"name": "x", "publicKey": device.public_key_pem},
        headers=stack.headers(officer),
    )
    assert pem.status_code == 201 and pem.json()["deviceId"] == device.device_id

    taken = register(stack, world["other"]["apiKey"], device)
    assert taken.status_code == 409 and "another organization" in taken.json()["error"]["message"]
    holder = register(stack, world["holder"]["apiKey"], device)
    assert holder.status_code == 403 and holder.json()["error"]["code"] == "forbidden"
    for bad in ("not-base64!" * 5, "QUJD" * 11, "A" * 40):
        r = stack.client.post(
            "/v1/devices", json={"name": "x", "publicKey": bad}, headers=stack.headers(officer)
        )
        assert r.status_code == 422, (bad, r.text)
        assert "publicKey" in r.json()["error"]["message"]

    listed = stack.client.get("/v1/devices", headers=stack.headers(officer)).json()
    assert [d["deviceId"] for d in listed] == [device.device_id]
    assert (
        stack.client.get("/v1/devices", headers=stack.headers(world["other"]["apiKey"])).json()
        == []
    )
    hidden = stack.client.get(
        f"/v1/devices/{device.device_id}", headers=stack.headers(world["other"]["apiKey"])
    )
    assert hidden.status_code == 404

    revoked = stack.client.post(
        f"/v1/devices/{device.device_id}/revoke", headers=stack.headers(officer)
    )
    assert revoked.status_code == 200 and revoked.json()["revokedAt"] is not None
    twice = stack.client.post(
        f"/v1/devices/{device.device_id}/revoke", headers=stack.headers(officer)
    )
    assert twice.json()["revokedAt"] == revoked.json()["revokedAt"]
    back = register(stack, officer, device)
    assert back.status_code == 409 and "revoked" in back.json()["error"]["message"]


def test_unregistered_revoked_or_foreign_device_is_refused_403(
    stack: Stack, world: dict[str, Any]
) -> None:
    officer, device = world["officer"]["apiKey"], world["device"]
    scans = [signed(device)]
    r = sync(stack, officer, device, scans)
    assert r.status_code == 403 and "not registered" in r.json()["error"]["message"]

    assert register(stack, officer, device).status_code == 201
    foreign = sync(stack, world["other"]["apiKey"], device, scans)
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "forbidden"
    holder = sync(stack, world["holder"]["apiKey"], device, scans)
    assert holder.status_code == 403

    stack.client.post(f"/v1/devices/{device.device_id}/revoke", headers=stack.headers(officer))
    revoked = sync(stack, officer, device, scans)
    assert revoked.status_code == 403 and "revoked" in revoked.json()["error"]["message"]
    assert rows(stack, _id(scans[0])) == []


def _id(scan: dict[str, str]) -> str:
    return str(json.loads(scan["record"])["scanId"])


def test_sync_judges_each_scan_and_rejects_bad_ones(stack: Stack, world: dict[str, Any]) -> None:
    officer, device = world["officer"]["apiKey"], world["device"]
    register(stack, officer, device)
    good = signed(device, tag=world["tags"]["SN0001"], offline={"verdict": "GENUINE"})
    tampered = signed(device, serial="SN0002")
    tampered["record"] = tampered["record"].replace("SN0002", "SN0003")
    future = signed(device, serial="SN0004", at=datetime.now(UTC) + timedelta(hours=1))
    slightly_ahead = signed(device, serial="SN0005", at=datetime.now(UTC) + timedelta(minutes=2))
    nowhere = signed(device, serial="SN0006", location="XXZZZ")
    stranger, _ = init_device(Path(str(world["device"].path.parent) + "-2"))
    foreign = signed(stranger, serial="SN0007")
    unknown = signed(device, serial="NOPE1", offline={"verdict": "GENUINE_UNSIGNED", "n": 1.5})
    garbage = {"record": "{not json", "signature": device.sign("{not json")}

    r = sync(
        stack,
        officer,
        device,
        [good, tampered, future, slightly_ahead, nowhere, foreign, unknown, garbage],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["counts"] == {"accepted": 3, "duplicate": 0, "rejected": 5}
    res = body["results"]
    assert [x["position"] for x in res] == list(range(8))
    assert res[0]["status"] == "accepted" and res[0]["verdict"] == "GENUINE"
    assert res[0]["offlineVerdict"] == "GENUINE" and res[0]["verdictDisagrees"] is False
    assert res[0]["origin"] == "offline" and res[0]["location"] == "NLRTM"
    assert (res[1]["status"], res[1]["reason"]) == ("rejected", "SIGNATURE_INVALID")
    assert res[1]["scanId"] == _id(tampered)
    assert (res[2]["status"], res[2]["reason"]) == ("rejected", "SCANNED_IN_FUTURE")
    assert res[3]["status"] == "accepted"  # within the clock skew
    assert (res[4]["status"], res[4]["reason"]) == ("rejected", "LOCATION_UNKNOWN")
    assert res[5]["reason"] == "SIGNATURE_INVALID"  # signed by another key
    assert res[6]["verdict"] == "COUNTERFEIT_SUSPECT" and res[6]["verdictDisagrees"] is True
    assert res[6]["offlineVerdict"] == "GENUINE_UNSIGNED"
    assert (res[7]["reason"], res[7]["scanId"]) == ("RECORD_INVALID", None)

    [row] = rows(stack, _id(good))
    assert row.origin == "offline" and row.device_id == device.device_id
    assert row.verdict == "GENUINE" and row.offline_verdict == "GENUINE"
    assert row.signed_record == good["record"] and row.signature == good["signature"]
    assert row.scanned_at.replace(tzinfo=UTC) < datetime.now(UTC) - timedelta(hours=2)
    assert row.organization_id == world["officer"]["id"]
    [suspect] = rows(stack, _id(unknown))
    assert (
        suspect.offline_verdict == "GENUINE_UNSIGNED" and suspect.verdict == "COUNTERFEIT_SUSPECT"
    )
    for bad in (tampered, future, nowhere, foreign):
        assert rows(stack, _id(bad)) == []


def test_device_mismatch_and_bad_bodies(
    stack: Stack, world: dict[str, Any], tmp_path: Path
) -> None:
    officer, device = world["officer"]["apiKey"], world["device"]
    register(stack, officer, device)
    other, _ = init_device(tmp_path / "other")
    register(stack, officer, other, "second")
    theirs = signed(other)  # validly signed by a device of the agency, sent as from `device`
    r = sync(stack, officer, device, [theirs])
    assert r.json()["results"][0]["reason"] == "SIGNATURE_INVALID"
    for body in (
        {"deviceId": device.device_id, "scans": []},
        {"deviceId": "dev-123", "scans": [theirs]},
        {"deviceId": device.device_id, "scans": [{"record": "{}"}]},
        {"deviceId": device.device_id, "scans": [{**theirs, "record": "{\x00}"}]},
    ):
        r = stack.client.post("/v1/scans/sync", json=body, headers=stack.headers(officer))
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_input"


def test_duplicate_sync_stores_nothing_twice(stack: Stack, world: dict[str, Any]) -> None:
    officer, device = world["officer"]["apiKey"], world["device"]
    register(stack, officer, device)
    scans = [signed(device, serial=f"SN{i:04d}") for i in range(5)]
    first = sync(stack, officer, device, scans).json()
    assert first["counts"]["accepted"] == 5
    again = sync(stack, officer, device, [*scans[:3], signed(device, serial="SN0009")]).json()
    assert [x["status"] for x in again["results"]] == ["duplicate"] * 3 + ["accepted"]
    for scan in scans:
        assert len(rows(stack, _id(scan))) == 1
    # The same scan id with other contents (re-signed) is not a duplicate: it is refused.
    changed = json.loads(scans[0]["record"])
    changed["location"] = "DEHAM"
    text = json.dumps(changed, sort_keys=True, separators=(",", ":"))
    conflict = sync(stack, officer, device, [{"record": text, "signature": device.sign(text)}])
    assert conflict.json()["results"][0]["reason"] == "SCAN_ID_CONFLICT"
    [row] = rows(stack, _id(scans[0]))
    assert row.location == "NLRTM"


def test_concurrent_retries_store_each_scan_once(stack: Stack, world: dict[str, Any]) -> None:
    officer, device = world["officer"]["apiKey"], world["device"]
    register(stack, officer, device)
    scans = [signed(device, serial=f"SN{i:04d}") for i in range(8)]
    items = [(s["record"], s["signature"]) for s in scans]
    with Session(stack.gateway.engine, expire_on_commit=False) as session:
        org = session.exec(select(Organization).where(Organization.name == "NL Customs")).one()
        dev = syncing_device(session, org, device.device_id)
    outcomes: list[list[str]] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        outcomes.append([r.status for r in sync_scans(stack.gateway, org, dev, items)])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == 4
    for i in range(len(scans)):
        statuses = sorted(o[i] for o in outcomes)
        assert statuses == ["accepted", "duplicate", "duplicate", "duplicate"], statuses
        assert len(rows(stack, _id(scans[i]))) == 1
    alerts = stack.client.get("/v1/alerts", headers=stack.headers(officer)).json()
    assert alerts == []  # each scan reached the detector once: no self-made clone


@pytest.mark.parametrize("offline_first", [True, False])
def test_late_offline_scan_and_online_scan_reveal_a_clone(
    stack: Stack, world: dict[str, Any], offline_first: bool
) -> None:
    """The same tag read online in Shanghai and offline in Rotterdam ten minutes apart; the
    offline scan reaches the gateway hours later, before or after the online one in time."""
    officer, device = world["officer"]["apiKey"], world["device"]
    register(stack, officer, device)
    t0 = datetime.now(UTC) - timedelta(hours=5)
    offline_at, online_at = (t0, t0 + timedelta(minutes=10))
    if not offline_first:
        offline_at, online_at = online_at, offline_at
    online = stack.verify(
        officer,
        tag=world["tags"]["SN0003"],
        location={"unlocode": "CNSHA"},
        scanned_at=online_at.isoformat(),
    )
    assert online["findings"] == []
    late = signed(device, tag=world["tags"]["SN0003"], location="NLRTM", at=offline_at)
    [result] = sync(stack, officer, device, [late]).json()["results"]
    # a late clone is answered as one: held, with where and when the code was also seen
    assert result["status"] == "accepted" and result["verdict"] == "COUNTERFEIT_SUSPECT"
    assert "CLONE_SUSPECT" in result["reasons"] and "SIGNATURE_VALID" in result["reasons"]
    seen = "10 minutes later" if offline_first else "10 minutes ago"
    assert result["summary"] == (
        f"Potential copy: this code was {'also' if offline_first else 'already'} scanned at "
        f"CNSHA (Shanghai) {seen}; the same item cannot be in both places. Hold the item."
    )
    travel = {f["reasonCode"]: f for f in result["findings"]}["CLONE_IMPOSSIBLE_TRAVEL"]
    assert travel["evidence"] == sorted([online["scanId"], _id(late)])
    [row] = rows(stack, _id(late))
    assert "CLONE_SUSPECT" in row.reasons and row.origin == "offline"
    assert row.verdict == "COUNTERFEIT_SUSPECT"
    listed = stack.client.get(
        "/v1/alerts", params={"rule": "CLONE_IMPOSSIBLE_TRAVEL"}, headers=stack.headers(officer)
    ).json()
    assert [a["alertId"] for a in listed] == [travel["alertId"]]
    [online_row] = rows(stack, online["scanId"])
    assert online_row.origin == "online" and online_row.device_id is None
    # Both scans are in the item's custody log, the synced one as it finally stands (with the
    # detector's reasons): its entry recomputes to the leaf the log holds.
    stack.gateway.scans.flush()
    timeline = stack.client.get(
        f"/v1/items/{GTIN}/SN0003/custody", headers=stack.headers(officer)
    ).json()
    logged = {e["record"]["scan_id"]: e for e in timeline["entries"] if e["kind"] == "scan"}
    assert set(logged) == {online["scanId"], _id(late)}
    entry = logged[_id(late)]
    assert "CLONE_SUSPECT" in entry["record"]["reasons"]
    assert entry["record"]["verdict"] == "COUNTERFEIT_SUSPECT"
    leaf = entries.entry_leaf(entry["kind"], entry["record"], entry["previous"])
    assert "0x" + leaf.hex() == entry["leafHash"]


def test_any_change_to_a_signed_record_is_rejected_and_not_stored(
    stack: Stack, world: dict[str, Any]
) -> None:
    """Property: flipping, inserting or deleting a character anywhere in a signed record (or
    its signature) never gets it stored; the answer is a per-scan rejection, never a 5xx."""
    officer, device = world["officer"]["apiKey"], world["device"]
    register(stack, officer, device)
    original = signed(device, serial="SN0010")
    printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)

    @given(
        where=st.sampled_from(["record", "signature"]),
        at=st.integers(0, 10_000),
        op=st.sampled_from(["flip", "insert", "delete"]),
        char=printable,
    )
    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(where: str, at: int, op: str, char: str) -> None:
        text = original[where]
        i = at % len(text)
        if op == "flip":
            if text[i] == char:
                return
            changed = text[:i] + char + text[i + 1 :]
        elif op == "insert":
            changed = text[:i] + char + text[i:]
        else:
            changed = text[:i] + text[i + 1 :]
        r = sync(stack, officer, device, [{**original, where: changed}])
        assert r.status_code in (200, 422), r.text
        if r.status_code == 200:
            [result] = r.json()["results"]
            assert result["status"] == "rejected", result
            assert result["reason"] == "SIGNATURE_INVALID"

    check()
    assert rows(stack, _id(original)) == []
    [ok] = sync(stack, officer, device, [original]).json()["results"]
    assert ok["status"] == "accepted"


def test_records_signed_by_the_old_scanner_still_sync(
    stack: Stack, world: dict[str, Any], tmp_path: Path
) -> None:
    """Schema 1 records (ASCII-escaped JSON, before RFC 8785), committed as an older scanner
    signed them, are accepted and stored byte for byte."""
    old = json.loads(
        (Path(__file__).parents[1] / "ledger" / "fixtures" / "scan_records_v1.json").read_text()
    )
    device = DeviceKey(
        tmp_path / "old-device",
        Ed25519PrivateKey.from_private_bytes(bytes.fromhex(old["deviceSeed"])),
    )
    assert device.device_id == old["deviceId"] and device.public_key == old["publicKey"]
    officer = world["officer"]["apiKey"]
    assert register(stack, officer, device).status_code == 201
    r = sync(stack, officer, device, old["scans"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["counts"] == {"accepted": 2, "duplicate": 0, "rejected": 0}, body
    # GS1 text without a tag: the serial is in an enrolled batch, the tag signature unseen
    assert [x["verdict"] for x in body["results"]] == ["GENUINE_UNSIGNED"] * 2
    assert body["results"][0]["offlineVerdict"] == "GENUINE"
    for scan in old["scans"]:
        [row] = rows(stack, _id(scan))
        assert row.signed_record == scan["record"] and row.signature == scan["signature"]
    again = sync(stack, officer, device, old["scans"]).json()
    assert again["counts"]["duplicate"] == 2


def test_synced_scans_name_their_user_or_the_syncing_key(
    stack: Stack, world: dict[str, Any]
) -> None:
    """Schema 3 records name the person signed in on the device: the stored scan is theirs
    when they are a user of the agency; schema 2 records (no user) stay accepted and are the
    syncing key's."""
    from ledger.scan_record import SCHEMA_2, canonical_json
    from tests.people import make_user

    officer, device = world["officer"]["apiKey"], world["device"]
    assert register(stack, officer, device).status_code == 201
    invitation = make_user(stack, officer, "olivia@customs.example", "officer")
    mine = build_record(
        device_id=device.device_id,
        payload=f"(01){GTIN}(21)SN0002",
        kind="gs1",
        tag=None,
        gtin=GTIN,
        serial="SN0002",
        lot=None,
        location="NLRTM",
        scanned_at=datetime.now(UTC) - timedelta(hours=1),
        user="olivia@customs.example",
    )
    v2 = json.loads(signed(device, serial="SN0003")["record"])
    del v2["user"], v2["shipment"]
    v2_text = canonical_json({**v2, "schema": SCHEMA_2}, SCHEMA_2)
    scans = [
        {"record": mine, "signature": device.sign(mine)},
        {"record": v2_text, "signature": device.sign(v2_text)},
    ]
    body = sync(stack, officer, device, scans).json()
    assert body["counts"]["accepted"] == 2, body
    [by_user] = rows(stack, json.loads(mine)["scanId"])
    assert (by_user.actor_kind, by_user.actor_id, by_user.actor_name) == (
        "user",
        invitation["user"]["id"],
        "olivia@customs.example",
    )
    [by_key] = rows(stack, v2["scanId"])
    assert by_key.actor_kind == "api_key" and by_key.actor_name == officer[:12]


def test_synced_scans_keep_their_shipment_and_schema_3_still_syncs(
    stack: Stack, world: dict[str, Any]
) -> None:
    """Schema 4 records carry the shipment reference the officer set: it lands on the scan row,
    as `shipment` on /v1/verify does. A schema 3 record (no `shipment` field) still syncs, with
    no shipment; a shipment /v1/verify would refuse is refused here too, naming it."""
    from ledger.scan_record import SCHEMA_3, canonical_json

    officer, device = world["officer"]["apiKey"], world["device"]
    assert register(stack, officer, device).status_code == 201
    with_shipment = signed(device, serial="SN0002", shipment="AWB 176-12345675")
    v3 = json.loads(signed(device, serial="SN0003")["record"])
    del v3["shipment"]
    v3_text = canonical_json({**v3, "schema": SCHEMA_3}, SCHEMA_3)
    bad = json.loads(signed(device, serial="SN0004")["record"])
    bad_text = canonical_json({**bad, "shipment": "AWB;DROP"})
    scans = [
        with_shipment,
        {"record": v3_text, "signature": device.sign(v3_text)},
        {"record": bad_text, "signature": device.sign(bad_text)},
    ]
    body = sync(stack, officer, device, scans).json()
    assert body["counts"] == {"accepted": 2, "duplicate": 0, "rejected": 1}, body
    rejected = body["results"][2]
    assert rejected["reason"] == "RECORD_INVALID" and "shipment" in rejected["message"], rejected
    [row] = rows(stack, _id(with_shipment))
    assert row.shipment == "AWB 176-12345675" and row.signed_record == with_shipment["record"]
    [old] = rows(stack, v3["scanId"])
    assert old.shipment is None and old.signed_record == v3_text
    assert rows(stack, bad["scanId"]) == []
