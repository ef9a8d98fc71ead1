"""The device key (scanner.device) and the offline queue (scanner.queue), on real files."""

from __future__ import annotations

import json
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from ledger.errors import InvalidInput, KeystoreError
from ledger.scan_record import check_signature, decode_public_key, parse_record
from scanner.device import KEY_FILE, init_device, load_device
from scanner.payload import classify, typed
from scanner.queue import ScanQueue

GTIN = "09506000134352"


def test_init_creates_a_private_key_file_once(tmp_path: Path) -> None:
    directory = tmp_path / "dev"
    key, created = init_device(directory)
    assert created
    assert stat.S_IMODE((directory / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert (directory / KEY_FILE).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again, created_again = init_device(directory)
    assert not created_again and again.device_id == key.device_id
    assert load_device(directory).public_key == key.public_key
    public, raw = decode_public_key(key.public_key)
    assert len(raw) == 32 and key.device_id.startswith("dev-")
    assert check_signature(public, "hello", key.sign("hello"))


def test_load_refuses_missing_open_or_foreign_keys(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="device init"):
        load_device(tmp_path / "none")
    key, _ = init_device(tmp_path / "open")
    key.path.chmod(0o644)
    with pytest.raises(KeystoreError, match="chmod 600"):
        load_device(tmp_path / "open")
    ec = tmp_path / "ec"
    ec.mkdir()
    pem = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (ec / KEY_FILE).write_bytes(pem)
    (ec / KEY_FILE).chmod(0o600)
    with pytest.raises(KeystoreError, match="not an Ed25519"):
        load_device(ec)
    (ec / KEY_FILE).write_bytes(b"garbage")
    with pytest.raises(KeystoreError, match="not a readable PEM"):
        load_device(ec)


def test_queue_appends_signed_records_and_marks_answers(tmp_path: Path) -> None:
    device, _ = init_device(tmp_path / "dev")
    public, _ = decode_public_key(device.public_key)
    path = tmp_path / "dev" / "queue.db"
    at = datetime.now(UTC) - timedelta(minutes=3)
    with ScanQueue(path) as queue:
        first = queue.append(device, typed(GTIN, "SN0001", "L1"), "NLRTM", at)
        second = queue.append(
            device,
            classify(f"(01){GTIN}(21)SN0002"),
            None,
            offline_verdict={"verdict": "GENUINE_UNSIGNED", "bundleAge": 3600.5},
        )
        with pytest.raises(InvalidInput, match="kind"):
            queue.append(device, classify("https://example.com/"), "NLRTM")
    with ScanQueue(path) as queue:  # survives a restart
        pending = queue.pending()
        assert [p.scan_id for p in pending] == [first.scan_id, second.scan_id]
        assert queue.pending(after=first.seq) == [pending[1]]
        for scan in pending:
            assert check_signature(public, scan.record, scan.signature)
        record = parse_record(first.record)
        assert (record.gtin, record.serial, record.lot, record.location) == (
            GTIN,
            "SN0001",
            "L1",
            "NLRTM",
        )
        assert record.scanned_at == at and record.device_id == device.device_id
        assert record.kind == "typed" and record.offline_verdict is None
        assert second.fields["offlineVerdict"]["bundleAge"] == 3600.5
        assert second.fields["payload"] == f"(01){GTIN}(21)SN0002"

        queue.mark(first.scan_id, "accepted", {"verdict": "GENUINE"})
        queue.mark(first.scan_id, "rejected", {"reason": "late"})  # only a pending row changes
        assert queue.counts() == {"pending": 1, "accepted": 1, "duplicate": 0, "rejected": 0}
        [done] = queue.entries("accepted")
        assert done.result == {"verdict": "GENUINE"}
        with pytest.raises(ValueError, match="status"):
            queue.mark(second.scan_id, "pending", {})
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):  # the schema refuses states that do not exist
        db.execute("UPDATE scans SET status = 'lost'")
    db.close()
    assert json.loads(first.record)["scanId"] == first.scan_id


def test_queue_in_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(KeystoreError, match="cannot open the scan queue"):
        ScanQueue(blocker / "queue.db")
