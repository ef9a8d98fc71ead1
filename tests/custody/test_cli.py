"""`borderledger audit` against a real gateway (uvicorn) on a real chain (Anvil): an honest
gateway verifies; an edited row, a deleted row and a checkpoint never anchored are caught."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update
from sqlmodel import Session, select
from typer.testing import CliRunner

from api.models import Checkpoint, CheckpointStatus, ScanEvent
from api.threaded import serve_in_thread
from borderledger.cli import app
from chain.node import LocalNode
from custody import entries
from custody.audit import audit_timeline
from custody.cli import Web3ChainView, fetch_timeline
from ledger.errors import InvalidInput
from tests.stack import GTIN, Stack, running_stack

AGENCY = "NL Customs"
SERIAL = "SN0007"


@dataclass
class Audited:
    stack: Stack
    url: str
    key: str
    world: dict[str, Any]

    def run(self, *extra: str) -> tuple[int, dict[str, Any]]:
        result = CliRunner().invoke(
            app,
            [
                "audit", GTIN, SERIAL, "--gateway", self.url, "--rpc", self.stack.node.url,
                "--api-key", self.key, "--registry", self.stack.registry.address, "--json",
                *extra,
            ],
        )  # fmt: skip
        lines = [line for line in result.output.splitlines() if line.startswith("{")]
        assert lines, result.output
        report: dict[str, Any] = json.loads(lines[-1])
        return result.exit_code, report


def _document(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-24T10:00:00Z",
        "epcisBody": {"eventList": events},
    }


@pytest.fixture
def audited(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> Iterator[Audited]:
    with running_stack(anvil, database, tmp_path, anchor_organization=AGENCY) as stack:
        holder = stack.org("Acme Pharma", "rights_holder", "TMK 19-1")
        officer = stack.org(AGENCY, "customs")
        auditor = stack.org("Court of Audit", "auditor")
        stack.grant(auditor)
        batch = stack.enroll(holder["apiKey"])
        stack.sync()
        key = officer["apiKey"]
        start = datetime.now(UTC) - timedelta(days=2)
        # History: three scans and a custody event, then a checkpoint; two more scans and a
        # second checkpoint; a last scan left pending.
        for hours in (0, 5, 10):
            stack.verify(key, gtin=GTIN, serial=SERIAL, location={"unlocode": "CNSHA"},
                         scanned_at=(start + timedelta(hours=hours)).isoformat())  # fmt: skip
        r = stack.client.post(
            "/v1/epcis/capture",
            json=_document(
                [
                    {
                        "type": "ObjectEvent",
                        "eventID": "urn:uuid:ship-7",
                        "eventTime": (start + timedelta(hours=12)).isoformat(),
                        "eventTimeZoneOffset": "+00:00",
                        "epcList": [f"https://id.gs1.org/01/{GTIN}/21/{SERIAL}"],
                        "action": "OBSERVE",
                        "bizStep": "shipping",
                        "readPoint": {"id": "urn:un:locode:CNSHA"},
                    }
                ]
            ),
            headers=stack.headers(key),
        )
        assert r.status_code == 200, r.text
        stack.gateway.scans.flush()
        stack.gateway.custody.anchorer.run_once(force=True)
        for hours in (30, 31):
            stack.verify(key, gtin=GTIN, serial=SERIAL, location={"unlocode": "NLRTM"},
                         scanned_at=(start + timedelta(hours=hours)).isoformat())  # fmt: skip
        stack.verify(key, gtin=GTIN, serial="SN0008", location={"unlocode": "NLRTM"})
        stack.gateway.scans.flush()
        stack.gateway.custody.anchorer.run_once(force=True)
        stack.sync()

        with serve_in_thread(stack.client.app, "uvicorn-audit") as url:
            world = {"holder": holder, "officer": officer, "batch": batch}
            yield Audited(stack, url, auditor["apiKey"], world)


def _failed(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["state"] == "failed"]


def test_an_honest_gateway_verifies_from_the_command_line(audited: Audited) -> None:
    env = {**os.environ, "BORDERLEDGER_API_KEY": audited.key}
    done = subprocess.run(
        [sys.executable, "-m", "borderledger", "audit", GTIN, SERIAL, "--gateway", audited.url,
         "--rpc", audited.stack.node.url, "--registry", audited.stack.registry.address],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all verified" in done.stdout and "NOT verified" not in done.stdout
    code, report = audited.run()
    assert code == 0 and report["ok"] and report["failed"] == 0
    subjects = [c["subject"] for c in report["checks"]]
    assert sum(s.startswith("entry ") for s in subjects) == 6  # 5 scans + 1 custody event
    assert sum(s.startswith("checkpoint ") for s in subjects) == 2
    assert any(s.startswith("consistency ") for s in subjects)
    assert "enrollment" in subjects and "anchoring agency" in subjects


def test_a_scan_verdict_edited_in_the_database_fails_that_entry(audited: Audited) -> None:
    engine = audited.stack.gateway.engine
    with Session(engine) as session:
        scans = session.exec(
            select(ScanEvent).where(ScanEvent.serial == SERIAL).order_by(ScanEvent.scanned_at)
        ).all()
        target = scans[1]
        session.execute(
            update(ScanEvent).where(ScanEvent.id == target.id).values(verdict="COUNTERFEIT_SUSPECT")  # type: ignore[arg-type]
        )
        session.commit()
    code, report = audited.run()
    assert code == 1 and not report["ok"]
    [failed] = _failed(report)
    assert failed["subject"].startswith("entry ") and "changed since logged" in failed["detail"]


def test_a_row_deleted_from_the_database_is_noticed(audited: Audited) -> None:
    engine = audited.stack.gateway.engine
    with Session(engine) as session:
        scans = session.exec(
            select(ScanEvent).where(ScanEvent.serial == SERIAL).order_by(ScanEvent.scanned_at)
        ).all()
        session.execute(delete(ScanEvent).where(ScanEvent.id == scans[1].id))  # type: ignore[arg-type]
        session.commit()
    code, report = audited.run()
    assert code == 1
    [failed] = _failed(report)
    assert failed["subject"].startswith("history of") and "deleted?" in failed["detail"]


def test_a_checkpoint_never_anchored_fails(audited: Audited) -> None:
    gateway = audited.stack.gateway
    agency = audited.world["officer"]["address"]
    # More entries, then the gateway claims a checkpoint over them it never anchored.
    key = audited.world["officer"]["apiKey"]
    audited.stack.verify(key, gtin=GTIN, serial=SERIAL, location={"unlocode": "NLRTM"})
    gateway.scans.flush()
    size = gateway.custody.mirror.catch_up()
    root = gateway.custody.mirror.log.root(size)
    with Session(gateway.engine) as session:
        session.add(
            Checkpoint(
                agency=agency, size=size, root="0x" + root.hex(),
                status=CheckpointStatus.ANCHORED.value, tx_hash="0x" + "ab" * 32, block_number=1,
            )
        )  # fmt: skip
        session.commit()
    code, report = audited.run()
    assert code == 1
    failed = _failed(report)
    assert any(
        c["subject"] == f"checkpoint {size}" and "never anchored" in c["detail"] for c in failed
    )
    # The entry that only the fake checkpoint covers is not verified either.
    assert any(c["subject"].startswith(f"entry {size - 1} ") for c in failed)


def test_pending_entries_fail_only_when_strict(audited: Audited) -> None:
    key = audited.world["officer"]["apiKey"]
    audited.stack.verify(key, gtin=GTIN, serial=SERIAL, location={"unlocode": "NLRTM"})
    audited.stack.gateway.scans.flush()
    code, report = audited.run()
    assert code == 0 and report["pending"] == 1
    code, report = audited.run("--strict")
    assert code == 1 and report["failed"] == 1


def test_a_wrong_chain_or_registry_fails(audited: Audited) -> None:
    timeline = audited.stack.client.get(
        f"/v1/items/{GTIN}/{SERIAL}/custody", headers=audited.stack.headers(audited.key)
    ).json()
    view = Web3ChainView(audited.stack.node.url, audited.stack.registry.address)
    forged = json.loads(json.dumps(timeline))
    forged["log"]["chainId"] = 1
    forged["checkpoints"][0]["root"] = "0x" + "11" * 32
    report = audit_timeline(forged, view, registry="0x" + "22" * 20)
    failed = {c.subject for c in report.checks if not c.ok}
    assert {"chain", "registry", f"checkpoint {forged['checkpoints'][0]['size']}"} <= failed
    with pytest.raises(InvalidInput):
        audit_timeline({"entries": []}, view)


def test_entries_logged_before_jcs_still_audit(
    anvil: LocalNode,
    database: tuple[str, str | None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A gateway that logged version 1 entries (the encoder before RFC 8785, whose bytes
    tests/custody/fixtures/entries_v1.json pins), anchored them, then moved to version 2:
    `borderledger audit` verifies the old entries and the new ones side by side."""
    with running_stack(anvil, database, tmp_path, anchor_organization=AGENCY) as stack:
        holder = stack.org("Acme Pharma", "rights_holder", "TMK 19-1")
        officer = stack.org(AGENCY, "customs")
        auditor = stack.org("Court of Audit", "auditor")
        stack.grant(auditor)
        stack.enroll(holder["apiKey"])
        stack.sync()
        key = officer["apiKey"]
        start = datetime.now(UTC) - timedelta(days=2)
        monkeypatch.setattr(entries, "ENTRY_VERSION", 1)  # the gateway as it was
        stack.verify(key, gtin=GTIN, serial=SERIAL, location={"unlocode": "CNSHA"},
                     scanned_at=start.isoformat())  # fmt: skip
        old_event = {
            "type": "ObjectEvent",
            "eventID": "urn:uuid:old-ship-7",
            "eventTime": (start + timedelta(hours=2)).isoformat(),
            "eventTimeZoneOffset": "+00:00",
            "epcList": [f"https://id.gs1.org/01/{GTIN}/21/{SERIAL}"],
            "action": "OBSERVE",
            "bizStep": "shipping",
            "readPoint": {"id": "urn:un:locode:CNSHA"},
            # written 10.0 and with \u-free UTF-8 by version 1; 10 by version 2
            "ex:temperature": 10.0,
            "ex:note": "Zollamt München — 東京",
        }
        r = stack.client.post(
            "/v1/epcis/capture", json=_document([old_event]), headers=stack.headers(key)
        )
        assert r.status_code == 200, r.text
        stack.gateway.scans.flush()
        stack.gateway.custody.anchorer.run_once(force=True)
        monkeypatch.setattr(entries, "ENTRY_VERSION", 2)  # the upgrade
        stack.verify(key, gtin=GTIN, serial=SERIAL, location={"unlocode": "NLRTM"},
                     scanned_at=(start + timedelta(hours=30)).isoformat())  # fmt: skip
        stack.gateway.scans.flush()
        stack.gateway.custody.anchorer.run_once(force=True)
        stack.sync()
        with serve_in_thread(stack.client.app, "uvicorn-audit") as url:
            audited = Audited(stack, url, auditor["apiKey"], {})
            code, report = audited.run()
            assert code == 0 and report["ok"] and report["failed"] == 0, report
            entry_checks = [c for c in report["checks"] if c["subject"].startswith("entry ")]
            assert len(entry_checks) == 3
            assert all(c["state"] == "verified" for c in entry_checks)
            timeline = fetch_timeline(url, GTIN, SERIAL, auditor["apiKey"])
        assert [e["v"] for e in timeline["entries"]] == [1, 1, 2]
        old = timeline["entries"][1]["record"]["event"]
        assert old["ex:temperature"] == 10.0 and old["ex:note"] == "Zollamt München — 東京"
        # the version is inside the hashed bytes: a timeline naming another one fails
        view = Web3ChainView(stack.node.url, stack.registry.address)
        forged = copy.deepcopy(timeline)
        forged["entries"][1]["v"] = 2
        failed = [c for c in audit_timeline(forged, view).checks if c.state == "failed"]
        assert [c.subject.split(" (")[0] for c in failed] == [
            f"entry {timeline['entries'][1]['logIndex']}"
        ]
        # a timeline from before versions were shown (no `v`) is read as version 1
        unnamed = copy.deepcopy(timeline)
        for entry in unnamed["entries"][:2]:
            del entry["v"]
        assert audit_timeline(unnamed, view).ok
