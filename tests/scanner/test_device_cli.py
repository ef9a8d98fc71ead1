"""`borderledger device`, `scan --queue` and `sync` as subprocesses against a real gateway."""

from __future__ import annotations

import json
import socket
import sqlite3
import stat
import subprocess
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from api.models import ScanEvent
from tests.scanner.conftest import SERIALS, Served
from tests.scanner.test_cli import photo_of
from tests.stack import borderledger


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return borderledger(home, *args)


def last_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout.strip(), proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def init_and_register(served: Served, home: Path) -> dict[str, Any]:
    proc = cli(home, "device", "init", "--json")
    assert proc.returncode == 0, proc.stderr
    device = last_json(proc)
    r = served.stack.client.post(
        "/v1/devices",
        json={"name": "handheld", "publicKey": device["publicKey"]},
        headers=served.stack.headers(served.officer_key),
    )
    assert r.status_code == 201, r.text
    assert r.json()["deviceId"] == device["deviceId"]
    return device


def sync(served: Served, home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    proc = cli(
        home, "sync", "--gateway", served.url, "--api-key", served.officer_key, "--json", *args
    )
    return proc.returncode, last_json(proc)


def stored(served: Served, scan_id: str) -> list[ScanEvent]:
    served.stack.gateway.scans.flush()
    with Session(served.stack.gateway.engine) as session:
        return list(session.exec(select(ScanEvent).where(ScanEvent.scan_id == scan_id)).all())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_device_init_prints_the_key_and_keeps_it(tmp_path: Path) -> None:
    proc = cli(tmp_path, "device", "init")
    assert proc.returncode == 0, proc.stderr
    assert "created device key" in proc.stdout and "public key:" in proc.stdout
    key_file = tmp_path / "device" / "device_key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first = last_json(cli(tmp_path, "device", "show", "--json"))
    again = cli(tmp_path, "device", "init", "--json")
    assert last_json(again)["created"] is False
    assert last_json(again)["publicKey"] == first["publicKey"]
    assert first["publicKey"] in proc.stdout and first["deviceId"] in proc.stdout
    other = last_json(cli(tmp_path, "device", "init", "--dir", str(tmp_path / "x"), "--json"))
    assert other["deviceId"] != first["deviceId"]
    key_file.chmod(0o644)
    refused = cli(tmp_path, "device", "show")
    assert refused.returncode == 1 and "chmod 600" in refused.stderr


def test_queue_then_sync_then_sync_again(served: Served, tmp_path: Path) -> None:
    device = init_and_register(served, tmp_path)
    a = photo_of(served, tmp_path / "a.jpg", SERIALS[0])
    b = photo_of(served, tmp_path / "b.jpg", SERIALS[1], "datamatrix", seed=1)
    # --queue needs no gateway at all.
    proc = cli(tmp_path, "scan", str(a), str(b), "--queue", "--location", "NLRTM", "--json")
    assert proc.returncode == 1, proc.stderr  # nothing judged yet: not cleared
    report = last_json(proc)
    assert report["counts"]["queued"] == 2 and report["counts"]["judged"] == 0
    ids = [c["queued"] for c in report["codes"]]
    assert all(stored(served, i) == [] for i in ids)
    shown = cli(tmp_path, "scan", str(a), "--queue")
    assert "QUEUED" in shown.stdout and "borderledger sync" in shown.stdout

    code, result = sync(served, tmp_path)
    assert code == 0, result
    assert result["counts"] == {"accepted": 3, "duplicate": 0, "rejected": 0}
    assert result["queue"]["pending"] == 0
    verdicts = {r["scanId"]: r["verdict"] for r in result["results"]}
    assert verdicts[ids[0]] == "GENUINE" and verdicts[ids[1]] == "GENUINE_UNSIGNED"
    [row] = stored(served, ids[0])
    assert row.origin == "offline" and row.device_id == device["deviceId"]
    assert row.location == "NLRTM"

    code, result = sync(served, tmp_path)  # nothing left to send
    assert code == 0 and result["sent"] == 0

    # The answer to a sync was lost (the rows are still pending): sending again is harmless.
    db = sqlite3.connect(tmp_path / "device" / "queue.db")
    with db:
        db.execute("UPDATE scans SET status = 'pending', result = NULL")
    db.close()
    code, result = sync(served, tmp_path, "--batch-size", "2")
    assert code == 0, result
    assert result["counts"] == {"accepted": 0, "duplicate": 3, "rejected": 0}
    assert all(len(stored(served, i)) == 1 for i in ids)


def test_unreachable_gateway_queues_automatically(served: Served, tmp_path: Path) -> None:
    image = photo_of(served, tmp_path / "a.jpg", SERIALS[2])
    down = f"http://127.0.0.1:{closed_port()}"
    no_device = cli(tmp_path, "scan", str(image), "--gateway", down, "--api-key", "k")
    assert no_device.returncode == 1 and "cannot reach the gateway" in no_device.stderr

    init_and_register(served, tmp_path)
    proc = cli(
        tmp_path, "scan", str(image), "--gateway", down, "--api-key", "k", "--location", "NLRTM"
    )
    assert proc.returncode == 1, proc.stderr
    assert "gateway unreachable, scans queued" in proc.stdout and "QUEUED" in proc.stdout
    as_json = cli(tmp_path, "scan", str(image), "--gateway", down, "--api-key", "k", "--json")
    report = last_json(as_json)
    assert report["counts"]["queued"] == 1 and "cannot reach" in report["queued_because"]

    unreachable = cli(tmp_path, "sync", "--gateway", down, "--api-key", "k")
    assert unreachable.returncode == 1 and "stay queued" in unreachable.stderr
    code, result = sync(served, tmp_path)
    assert code == 0 and result["counts"]["accepted"] == 2


def test_sync_refused_for_unregistered_device_and_tampered_rows(
    served: Served, tmp_path: Path
) -> None:
    assert cli(tmp_path, "device", "init").returncode == 0
    image = photo_of(served, tmp_path / "a.jpg", SERIALS[3])
    assert cli(tmp_path, "scan", str(image), "--queue").returncode == 1
    proc = cli(tmp_path, "sync", "--gateway", served.url, "--api-key", served.officer_key)
    assert proc.returncode == 1 and "not registered" in proc.stderr and "403" in proc.stderr
    with sqlite3.connect(tmp_path / "device" / "queue.db") as db:
        assert db.execute("SELECT status FROM scans").fetchall() == [("pending",)]

    device = last_json(cli(tmp_path, "device", "show", "--json"))
    served.stack.client.post(
        "/v1/devices",
        json={"name": "h", "publicKey": device["publicKey"]},
        headers=served.stack.headers(served.officer_key),
    )
    db = sqlite3.connect(tmp_path / "device" / "queue.db")
    with db:  # someone edits the queued scan on the device
        db.execute("UPDATE scans SET record = replace(record, 'SN0003', 'SN0004')")
    db.close()
    code, result = sync(served, tmp_path)
    assert code == 1, result
    [rejected] = result["results"]
    assert rejected["status"] == "rejected" and rejected["reason"] == "SIGNATURE_INVALID"
    assert result["queue"]["rejected"] == 1 and result["queue"]["pending"] == 0
    assert stored(served, rejected["scanId"]) == []

    bad = cli(tmp_path, "sync", "--dir", str(tmp_path / "nowhere"), "--gateway", served.url)
    assert bad.returncode == 1 and "device init" in bad.stderr


def test_a_row_the_gateway_cannot_read_does_not_block_the_queue(
    served: Served, tmp_path: Path
) -> None:
    """In process: a queue row edited to hold a control character is refused by the gateway's
    request validation (422); the other scans of its batch still sync."""
    from scanner.device import init_device
    from scanner.payload import typed
    from scanner.queue import ScanQueue
    from scanner.sync import sync_queue
    from tests.stack import GTIN

    device, _ = init_device(tmp_path / "device")
    served.stack.client.post(
        "/v1/devices",
        json={"name": "h", "publicKey": device.public_key},
        headers=served.stack.headers(served.officer_key),
    )
    with ScanQueue(tmp_path / "device" / "queue.db") as queue:
        scans = [queue.append(device, typed(GTIN, s), "NLRTM") for s in SERIALS[:3]]
        with queue.db:
            queue.db.execute(
                "UPDATE scans SET record = replace(record, 'NLRTM', 'NL' || char(1) || 'TM') "
                "WHERE scan_id = ?",
                (scans[1].scan_id,),
            )
        report = sync_queue(queue, device, served.url, served.officer_key)
        assert report.counts == {"accepted": 2, "duplicate": 0, "rejected": 1}
        [refused] = queue.entries("rejected")
        assert refused.scan_id == scans[1].scan_id
        assert refused.result is not None and refused.result["reason"] == "REQUEST_INVALID"
        assert queue.counts()["pending"] == 0
    assert len(stored(served, scans[0].scan_id)) == 1


def test_offline_verdicts_travel_in_the_record_and_disagreements_are_flagged(
    served: Served, tmp_path: Path
) -> None:
    """A code judged offline (verdict filled in before queueing, as an offline verifier
    leaves it) carries that verdict in its signed record; sync compares it with the online
    verdict and `sync` exits 3 on a disagreement."""
    from scanner.device_cli import Judge
    from scanner.online import CodeResult, Verifier
    from scanner.payload import typed
    from tests.stack import GTIN

    device = init_and_register(served, tmp_path)
    agreed = CodeResult("typed", typed(GTIN, SERIALS[4]))
    agreed.verdict, agreed.reasons = "GENUINE_UNSIGNED", ["SIGNATURE_MISSING"]
    agreed.response = {"verdict": "GENUINE_UNSIGNED", "bundle": {"block": 7}}
    wrong = CodeResult("typed", typed(GTIN, "NOT-ENROLLED"))
    wrong.verdict, wrong.response = "GENUINE_UNSIGNED", None
    with Verifier("", "") as unused:
        judge = Judge(unused, tmp_path / "device", True, "NLRTM")
        try:
            for result in (agreed, wrong):
                judge(result)
        finally:
            judge.close()
    with sqlite3.connect(tmp_path / "device" / "queue.db") as db:
        records = [json.loads(r) for (r,) in db.execute("SELECT record FROM scans ORDER BY seq")]
    assert records[0]["offlineVerdict"] == {
        "verdict": "GENUINE_UNSIGNED",
        "bundle": {"block": 7},
        "reasons": ["SIGNATURE_MISSING"],
    }
    assert records[1]["offlineVerdict"]["verdict"] == "GENUINE_UNSIGNED"
    assert {r["deviceId"] for r in records} == {device["deviceId"]}

    code, result = sync(served, tmp_path)
    assert code == 3, result
    by_id = {r["scanId"]: r for r in result["results"]}
    first, second = by_id[agreed.queued], by_id[wrong.queued]
    assert first["verdictDisagrees"] is False and first["verdict"] == "GENUINE_UNSIGNED"
    assert second["verdictDisagrees"] is True and second["verdict"] == "COUNTERFEIT_SUSPECT"
    [row] = stored(served, str(wrong.queued))
    assert row.offline_verdict == "GENUINE_UNSIGNED" and row.verdict == "COUNTERFEIT_SUSPECT"


def test_a_sync_burst_waits_out_the_rate_limit(served: Served, tmp_path: Path) -> None:
    """A device syncing faster than the gateway's `sync` limit waits for each 429's
    Retry-After and sends on: every scan arrives, none is lost or refused."""
    from limits import parse_many

    from scanner.device import init_device
    from scanner.payload import typed
    from scanner.queue import ScanQueue
    from scanner.sync import sync_queue
    from tests.stack import GTIN

    device, _ = init_device(tmp_path / "device")
    served.stack.client.post(
        "/v1/devices",
        json={"name": "h", "publicKey": device.public_key},
        headers=served.stack.headers(served.officer_key),
    )
    limiter = served.stack.client.app.limiter  # type: ignore[attr-defined]
    limiter.per_key["sync"] = parse_many("2/second")
    with ScanQueue(tmp_path / "device" / "queue.db") as queue:
        scans = [queue.append(device, typed(GTIN, s), "NLRTM") for s in SERIALS[:5]]
        report = sync_queue(queue, device, served.url, served.officer_key, batch_size=1)
        assert report.counts == {"accepted": 5, "duplicate": 0, "rejected": 0}
        assert queue.counts()["pending"] == 0
    assert all(len(stored(served, s.scan_id)) == 1 for s in scans)


def test_shipment_reference_travels_offline_and_online(served: Served, tmp_path: Path) -> None:
    """`--shipment` goes into the signed offline record (schema 4) and onto the synced scan
    row; online it is sent with the scan. A reference /v1/verify would refuse is refused
    before anything is read."""
    init_and_register(served, tmp_path)
    bundle = tmp_path / "bundle.json"
    fetched = cli(
        tmp_path,
        "bundle",
        "fetch",
        "--gateway",
        served.url,
        "--api-key",
        served.officer_key,
        "--out",
        str(bundle),
    )
    assert fetched.returncode == 0, fetched.stderr
    offline = cli(
        tmp_path,
        "scan",
        "--offline",
        "--bundle",
        str(bundle),
        "--code",
        served.tags[SERIALS[0]],
        "--location",
        "NLRTM",
        "--shipment",
        "AWB 176-12345675",
        "--json",
    )
    report = last_json(offline)
    assert report["counts"]["queued"] == 1, (report, offline.stderr)
    [scan_id] = [c["queued"] for c in report["codes"]]
    db = sqlite3.connect(tmp_path / "device" / "queue.db")
    [(record,)] = db.execute("SELECT record FROM scans WHERE scan_id = ?", (scan_id,)).fetchall()
    db.close()
    assert json.loads(record)["schema"] == "borderledger/offline-scan/4"
    assert json.loads(record)["shipment"] == "AWB 176-12345675"
    assert stored(served, scan_id) == []

    code, result = sync(served, tmp_path)
    assert code == 0 and result["counts"]["accepted"] == 1, result
    [row] = stored(served, scan_id)
    assert row.origin == "offline" and row.shipment == "AWB 176-12345675"
    assert row.location == "NLRTM" and row.serial == SERIALS[0]

    online = cli(
        tmp_path,
        "scan",
        "--code",
        served.tags[SERIALS[1]],
        "--gateway",
        served.url,
        "--api-key",
        served.officer_key,
        "--shipment",
        "ENT-2026/0042",
        "--json",
    )
    assert last_json(online)["counts"]["judged"] == 1, online.stderr
    served.stack.gateway.scans.flush()
    with Session(served.stack.gateway.engine) as session:
        rows = session.exec(select(ScanEvent).where(ScanEvent.shipment == "ENT-2026/0042")).all()
    assert [(r.serial, r.origin) for r in rows] == [(SERIALS[1], "online")]

    bad = cli(tmp_path, "scan", "--code", served.tags[SERIALS[2]], "--shipment", "AWB;1")
    assert bad.returncode == 2 and "--shipment 'AWB;1' is not a shipment reference" in bad.stderr
