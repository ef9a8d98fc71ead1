"""The detector inside the gateway: findings on /v1/verify, stored alerts, the alert workflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from api.models import GatewayBatch, ScanEvent
from tests.stack import GTIN, Stack

POLICY = {"markets": ["NL", "DE"], "nodes": ["CNSHA", "NLRTM"]}


@pytest.fixture
def world(stack: Stack) -> dict[str, Any]:
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 19-1")
    officer = stack.org("NL Customs", "customs")
    auditor = stack.org("Court of Audit", "auditor")
    stack.grant(auditor)
    other = stack.org("Other Brand", "rights_holder", "TMK 20-2")
    batch = stack.enroll(holder["apiKey"], route_policy=POLICY)
    stack.sync()
    return {"holder": holder, "officer": officer, "auditor": auditor, "other": other, **batch}


def _scan(stack: Stack, key: str, serial: str, port: str, when: datetime) -> dict[str, Any]:
    return stack.verify(
        key, gtin=GTIN, serial=serial, location={"unlocode": port}, scanned_at=when.isoformat()
    )


def _alerts(stack: Stack, key: str, **params: Any) -> list[dict[str, Any]]:
    r = stack.client.get("/v1/alerts", params=params, headers=stack.headers(key))
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def test_diversion_finding_is_answered_recorded_and_listed(stack: Stack, world: Any) -> None:
    officer = world["officer"]["apiKey"]
    when = datetime.now(UTC) - timedelta(hours=1)
    answer = _scan(stack, officer, "SN0001", "USLAX", when)
    assert answer["verdict"] == "GENUINE_UNSIGNED"  # the verdict is not changed by findings
    assert "DIVERSION_SUSPECT" in answer["reasons"] and "CLONE_SUSPECT" not in answer["reasons"]
    [finding] = answer["findings"]
    assert finding["rule"] == "diversion" and finding["reasonCode"] == "DIVERSION_MARKET"
    assert finding["severity"] == "high" and finding["evidence"] == [answer["scanId"]]

    stack.sync()
    with Session(stack.gateway.engine) as session:
        row = session.exec(select(ScanEvent).where(ScanEvent.scan_id == answer["scanId"])).one()
    assert row.location == "USLAX" and "DIVERSION_SUSPECT" in row.reasons

    [alert] = _alerts(stack, officer)
    assert alert["alertId"] == finding["alertId"] and alert["status"] == "open"
    assert alert["batchId"] == world["batchId"] and alert["location"] == "USLAX"
    assert alert["serial"] == "SN0001" and alert["evidence"] == [answer["scanId"]]
    assert alert["organizationId"] == world["holder"]["id"]
    assert _alerts(stack, officer, port="USLAX", rule="diversion", severity="high") == [alert]
    assert _alerts(stack, officer, rule="DIVERSION_MARKET", batch=world["batchId"]) == [alert]
    assert _alerts(stack, officer, port="NLRTM") == []
    assert _alerts(stack, officer, rule="clone") == []
    assert _alerts(stack, officer, status="resolved") == []
    assert _alerts(stack, officer, since=(datetime.now(UTC) + timedelta(hours=1)).isoformat()) == []
    assert _alerts(stack, officer, until=(datetime.now(UTC) - timedelta(hours=1)).isoformat()) == []
    assert (
        len(_alerts(stack, officer, since=(datetime.now(UTC) - timedelta(hours=1)).isoformat()))
        == 1
    )


def test_same_tag_at_rotterdam_then_shanghai_ten_minutes_later_is_a_clone(
    stack: Stack, world: Any
) -> None:
    officer = world["officer"]["apiKey"]
    t0 = datetime.now(UTC) - timedelta(hours=2)
    first = _scan(stack, officer, "SN0002", "NLRTM", t0)
    assert first["findings"] == [] and "CLONE_SUSPECT" not in first["reasons"]
    second = _scan(stack, officer, "SN0002", "CNSHA", t0 + timedelta(minutes=10))
    assert "CLONE_SUSPECT" in second["reasons"]
    codes = {f["reasonCode"]: f for f in second["findings"]}
    travel = codes["CLONE_IMPOSSIBLE_TRAVEL"]
    assert travel["rule"] == "clone" and travel["severity"] == "critical"
    assert travel["evidence"] == sorted([first["scanId"], second["scanId"]])
    listed = _alerts(stack, officer, rule="CLONE_IMPOSSIBLE_TRAVEL")
    assert [a["alertId"] for a in listed] == [travel["alertId"]]


def test_a_legitimate_journey_raises_nothing(stack: Stack, world: Any) -> None:
    officer = world["officer"]["apiKey"]
    t0 = datetime.now(UTC) - timedelta(days=40)
    for port, days in (("CNSHA", 0), ("NLRTM", 30), ("DEHAM", 31)):
        answer = _scan(stack, officer, "SN0003", port, t0 + timedelta(days=days))
        assert answer["findings"] == [], answer["findings"]
        assert not {"CLONE_SUSPECT", "DIVERSION_SUSPECT"} & set(answer["reasons"])
    assert _alerts(stack, officer) == []


def test_unknown_location_is_refused_and_not_recorded(stack: Stack, world: Any) -> None:
    r = stack.client.post(
        "/v1/verify",
        json={"gtin": GTIN, "serial": "SN0004", "location": {"unlocode": "NL2R9"}},
        headers=stack.headers(world["officer"]["apiKey"]),
    )
    assert r.status_code == 422 and "NL2R9" in r.json()["error"]["message"]
    stack.sync()
    with Session(stack.gateway.engine) as session:
        assert session.exec(select(ScanEvent)).all() == []


@pytest.mark.parametrize(
    ("policy", "names"),
    [
        ({"markets": ["XX"], "nodes": ["CNSHA"]}, ["XX"]),
        ({"markets": ["NL"], "nodes": ["ZZZZZ", "nlrtm1"]}, ["ZZZZZ", "nlrtm1"]),
        ({"markets": "NL"}, ["markets"]),
        ({"markets": ["NL"], "ports": ["NLRTM"]}, ["ports"]),
        ({"markets": ["NL"], "released": {"NL": -1}}, ["released"]),
        ({"markets": ["NL"], "returns": "no"}, ["returns"]),
    ],
)
def test_bad_route_policy_is_refused_and_nothing_stored(
    stack: Stack, policy: dict[str, Any], names: list[str]
) -> None:
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 19-1")
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": GTIN, "lot": "BAD", "serials": ["A1", "A2"], "route_policy": policy},
        headers=stack.headers(holder["apiKey"]),
    )
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert all(name in message for name in names), message
    with Session(stack.gateway.engine) as session:
        assert session.exec(select(GatewayBatch)).all() == []


def test_policy_is_stored_normalized(stack: Stack) -> None:
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 19-1")
    batch = stack.enroll(
        holder["apiKey"], route_policy={"markets": ["de", "NL"], "nodes": ["cnsha", "NLRTM"]}
    )
    with Session(stack.gateway.engine) as session:
        stored = session.get(GatewayBatch, batch["batchId"])
    assert stored is not None
    assert stored.route_policy == {"markets": ["DE", "NL"], "nodes": ["CNSHA", "NLRTM"]}


def test_acknowledge_and_resolve_by_role(stack: Stack, world: Any) -> None:
    officer = world["officer"]["apiKey"]
    auditor = world["auditor"]["apiKey"]
    holder = world["holder"]["apiKey"]
    answer = _scan(stack, officer, "SN0005", "USLAX", datetime.now(UTC) - timedelta(minutes=5))
    alert_id = answer["findings"][0]["alertId"]

    # everyone who may read sees it, except another rights holder
    assert [a["alertId"] for a in _alerts(stack, auditor)] == [alert_id]
    assert [a["alertId"] for a in _alerts(stack, holder)] == [alert_id]
    assert _alerts(stack, world["other"]["apiKey"]) == []
    assert _alerts(stack, world["other"]["apiKey"], rights_holder=world["holder"]["id"]) == []

    def act(key: str, action: str, note: str | None = None) -> Any:
        return stack.client.post(
            f"/v1/alerts/{alert_id}/{action}", json={"note": note}, headers=stack.headers(key)
        )

    assert act(auditor, "acknowledge").status_code == 403
    assert act(holder, "acknowledge").status_code == 403
    assert act(auditor, "resolve", "x").status_code == 403
    r = act(officer, "acknowledge", "container held at berth 4")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged" and r.json()["note"] == "container held at berth 4"
    assert act(officer, "acknowledge").status_code == 409
    assert act(officer, "resolve").status_code == 422  # a resolution needs a note
    r = act(stack.admin_key, "resolve", "parallel import, papers in order")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved"
    assert act(officer, "resolve", "again").status_code == 409
    [listed] = _alerts(stack, auditor, status="resolved")
    assert listed["note"] == "parallel import, papers in order"
    assert _alerts(stack, auditor, status="open") == []
    r = stack.client.post(
        "/v1/alerts/00000000-0000-0000-0000-000000000000/acknowledge",
        json={},
        headers=stack.headers(officer),
    )
    assert r.status_code == 404


def test_status_from_the_index_is_judged_at_its_own_time(stack: Stack, world: Any) -> None:
    officer = world["officer"]["apiKey"]
    r = stack.client.post(
        f"/v1/batches/{world['batchId']}/status",
        json={"status": "stolen", "serial": "SN0006"},
        headers=stack.headers(world["holder"]["apiKey"]),
    )
    assert r.status_code == 202 and r.json()["status"] == "done", r.text
    stack.sync()
    # a scan from before the theft (delivered late) is not a finding; one after it is
    before = _scan(stack, officer, "SN0006", "NLRTM", datetime.now(UTC) - timedelta(days=2))
    assert before["verdict"] == "STOLEN" and before["findings"] == []
    after = stack.verify(officer, gtin=GTIN, serial="SN0006", location={"unlocode": "NLRTM"})
    [finding] = after["findings"]
    assert finding["reasonCode"] == "STOLEN_SEEN" and finding["rule"] == "status"
    assert after["scanId"] in finding["evidence"] and len(finding["evidence"]) == 2
    assert not {"CLONE_SUSPECT", "DIVERSION_SUSPECT"} & set(after["reasons"])


@pytest.mark.parametrize("moment", ["0.5", "1733500000", "1e9"])
def test_a_time_given_as_a_number_is_refused_not_read_as_unix_seconds(
    stack: Stack, world: Any, moment: str
) -> None:
    """Every time a request takes is RFC 3339 text (the document's `date-time`): a number
    would otherwise be read as Unix seconds (`0.5` is 1970) and filter or record silently."""
    admin = stack.headers(stack.admin_key)
    officer = stack.headers(world["officer"]["apiKey"])
    refused = [
        stack.client.get("/v1/alerts", params={"since": moment}, headers=officer),
        stack.client.get("/v1/alerts", params={"until": moment}, headers=officer),
        stack.client.get("/v1/audit", params={"since": moment}, headers=admin),
        stack.client.get("/v1/statistics/seizures", params={"to": moment}, headers=officer),
        stack.client.post(
            "/v1/verify",
            json={"gtin": GTIN, "serial": "SN0001", "scanned_at": float(moment)},
            headers=officer,
        ),
    ]
    for answer in refused:
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert "must be an ISO 8601 date and time" in error["message"], error
        assert "Value error" not in error["message"], error
    scans = stack.client.get(
        "/v1/alerts", params={"since": "2026-01-01T00:00:00Z"}, headers=officer
    )
    assert scans.status_code == 200, scans.text
