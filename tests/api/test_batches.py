"""Batches through the gateway: enrollment (JSON, CSV, background job), reading, tag
downloads and status changes, against a real chain and database."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.models import PendingWrite, WriteStatus
from chain.enroll import qr_file_stem
from ledger.batch import batch_id_of
from ledger.digital_link import parse_digital_link
from ledger.gs1 import gtin_check_digit
from scanner.decode import decode_image_bytes
from tests.stack import GTIN, Stack, api_error, other_gateway

SERIALS = [f"SN{i:04d}" for i in range(12)]
#: CSET 82 characters that need quoting in CSV or escaping in a URI.
ODD_SERIALS = ["a/b", "50%", "x,y", 'q"t', "it's", "?&=", "..", "Z"]


def _logs(stack: Stack) -> int:
    return len(stack.registry.contract.events.BatchRegistered.get_logs(from_block=0))


def _counts(stack: Stack) -> dict[str, int]:
    """Rows of every table an enrollment writes to, and batches registered on chain."""
    with stack.gateway.engine.connect() as connection:
        counts = {
            table: int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() or 0)
            for table in ("gateway_batches", "batch_trees", "pending_writes", "jobs")
        }
    counts["chain"] = _logs(stack)
    return counts


@pytest.fixture
def holder(stack: Stack) -> dict[str, Any]:
    return stack.org("Acme Pharma", "rights_holder", "TMK 1")


@pytest.fixture
def officer(stack: Stack) -> dict[str, Any]:
    return stack.org("NL Customs", "customs")


def _post_csv(
    stack: Stack, key: str, text: str | bytes, content_type: str = "text/csv", **query: str
) -> Any:
    content = text.encode() if isinstance(text, str) else text
    return stack.client.post(
        "/v1/batches",
        params=query,
        content=content,
        headers={**stack.headers(key), "Content-Type": content_type},
    )


# ------------------------------------------------------------------------------ enrollment


def test_json_enrollment_is_registered_and_readable(stack: Stack, holder: dict[str, Any]) -> None:
    before = _logs(stack)
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": GTIN, "lot": "L1", "serials": SERIALS, "expiry": "281231"},
        headers=stack.headers(holder["apiKey"]),
    )
    assert r.status_code == 201, r.text
    batch = r.json()
    assert batch["batchId"] == "0x" + batch_id_of(GTIN, "L1").hex()
    assert batch["count"] == len(SERIALS) and batch["expiry"] == "281231"
    assert batch["registration"] == "done" and batch["txHash"] and batch["block"]
    assert batch["signer"] == holder["signer"]
    assert _logs(stack) == before + 1
    on_chain = stack.registry.get_batch(batch["batchId"])
    assert on_chain.root == batch["root"] and on_chain.item_count == len(SERIALS)
    assert on_chain.holder == holder["address"]

    stack.sync()
    r = stack.client.get(f"/v1/batches/{batch['batchId']}", headers=stack.headers(holder["apiKey"]))
    assert r.status_code == 200, r.text
    read = r.json()
    assert read["root"] == batch["root"] and read["txHash"] == batch["txHash"]
    assert read["status"] == "active" and read["registration"] == "done"
    # ids are accepted in either case
    r = stack.client.get(
        f"/v1/batches/{batch['batchId'].upper().replace('0X', '0x')}",
        headers=stack.headers(holder["apiKey"]),
    )
    assert r.status_code == 200 and r.json()["batchId"] == batch["batchId"]


def test_retry_is_idempotent_and_other_serials_conflict(
    stack: Stack, holder: dict[str, Any]
) -> None:
    body = {"gtin": GTIN, "lot": "L1", "serials": SERIALS}
    key = stack.headers(holder["apiKey"])
    first = stack.client.post("/v1/batches", json=body, headers=key)
    assert first.status_code == 201, first.text
    after_first = _counts(stack)

    again = stack.client.post("/v1/batches", json=body, headers=key)
    assert again.status_code == 200, again.text
    assert again.json()["txHash"] == first.json()["txHash"]
    assert again.json()["root"] == first.json()["root"]
    assert _counts(stack) == after_first  # nothing new in the database or on chain

    # the same lot with other serials, or another expiry, is a conflict; nothing is written
    for changed in (
        {**body, "serials": [*SERIALS[:-1], "OTHER"]},
        {**body, "serials": list(reversed(SERIALS))},
        {**body, "serials": [*SERIALS, "EXTRA"]},
        {**body, "expiry": "300101"},
    ):
        r = stack.client.post("/v1/batches", json=changed, headers=key)
        api_error(r, 409, "conflict", "already enrolled")
    assert _counts(stack) == after_first

    # a retry of the same batch as CSV is the same batch
    r = _post_csv(stack, holder["apiKey"], "serial\n" + "\n".join(SERIALS), gtin=GTIN, lot="L1")
    assert r.status_code == 200 and r.json()["txHash"] == first.json()["txHash"]
    assert _counts(stack) == after_first


def test_csv_enrollment_with_query_or_columns(
    stack: Stack, holder: dict[str, Any], officer: dict[str, Any]
) -> None:
    # gtin and lot as query parameters; odd serials quoted as RFC 4180 says; a BOM; CRLF
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["Serial"])
    for serial in ODD_SERIALS:
        writer.writerow([serial])
    r = _post_csv(
        stack,
        holder["apiKey"],
        "\ufeff" + buffer.getvalue(),
        content_type="text/csv; charset=utf-8",
        gtin=GTIN,
        lot="CSV/1",
        expiry="271130",
    )
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["count"] == len(ODD_SERIALS) and first["lot"] == "CSV/1"
    assert first["expiry"] == "271130" and first["registration"] == "done"

    # gtin and lot as columns (a GTIN-13 is padded to 14 digits), blank lines skipped
    rows = "gtin,lot,serial\n" + "".join(f"{GTIN[1:]},CSV2,C{i}\n" for i in range(5)) + "\n\n"
    r = _post_csv(stack, holder["apiKey"], rows, content_type="application/csv")
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["gtin"] == GTIN and second["lot"] == "CSV2" and second["count"] == 5

    stack.sync()
    tags = stack.tags(holder["apiKey"], first["batchId"])
    assert [t["serial"] for t in tags] == ODD_SERIALS
    for tag in tags:
        verdict = stack.verify(officer["apiKey"], tag=tag["uri"])
        assert verdict["verdict"] == "GENUINE", (tag, verdict)
        assert verdict["item"]["serial"] == tag["serial"]
    typed = stack.verify(officer["apiKey"], gtin=GTIN, serial="C3", lot="CSV2")
    assert typed["verdict"] == "GENUINE_UNSIGNED"

    # old Mac line ends (CR only) are line ends too
    r = _post_csv(stack, holder["apiKey"], "serial\rM1\rM2\r", gtin=GTIN, lot="CR")
    assert r.status_code == 201 and r.json()["count"] == 2, r.text


def _json(body: dict[str, Any]) -> tuple[bytes, str, dict[str, str]]:
    import json

    return json.dumps(body).encode(), "application/json", {}


def _csv(text: str | bytes, **query: str) -> tuple[bytes, str, dict[str, str]]:
    raw = text.encode() if isinstance(text, str) else text
    return raw, "text/csv", {"gtin": GTIN, "lot": "BAD", **query}


BAD_UPLOADS = {
    "gtin-check-digit": (
        _json({"gtin": "09506000134353", "lot": "BAD", "serials": ["A"]}),
        422,
        ["check digit"],
    ),
    "gtin-letters": (_json({"gtin": "0950600013435X", "lot": "BAD", "serials": ["A"]}), 422, []),
    "duplicate-serials": (
        _json({"gtin": GTIN, "lot": "BAD", "serials": ["A", "B", "A"]}),
        422,
        ["'A'", "twice"],
    ),
    "serial-with-space": (
        _json({"gtin": GTIN, "lot": "BAD", "serials": ["A", "B 1"]}),
        422,
        ["'B 1'", "CSET 82"],
    ),
    "serial-too-long": (_json({"gtin": GTIN, "lot": "BAD", "serials": ["X" * 21]}), 422, ["20"]),
    "serial-empty-string": (_json({"gtin": GTIN, "lot": "BAD", "serials": [""]}), 422, ["empty"]),
    "no-serials": (_json({"gtin": GTIN, "lot": "BAD", "serials": []}), 422, ["serials"]),
    "lot-21-chars": (_json({"gtin": GTIN, "lot": "L" * 21, "serials": ["A"]}), 422, ["lot"]),
    "lot-with-space": (_json({"gtin": GTIN, "lot": "L 1", "serials": ["A"]}), 422, ["lot"]),
    "bad-expiry": (
        _json({"gtin": GTIN, "lot": "BAD", "serials": ["A"], "expiry": "241399"}),
        422,
        [],
    ),
    "unknown-field": (_json({"gtin": GTIN, "lot": "BAD", "serials": ["A"], "x": 1}), 422, ["x"]),
    "missing-lot": (_json({"gtin": GTIN, "serials": ["A"]}), 422, ["lot"]),
    "not-json": ((b"{gtin: 1", "application/json", {}), 422, []),
    "csv-no-serial-column": (_csv("sn\nA\nB\n"), 422, ["serial"]),
    "csv-empty": (_csv(""), 422, ["serial"]),
    "csv-header-only": (_csv("serial\n"), 422, ["no serials"]),
    "csv-ragged-rows": (_csv("serial,note\nA,x\nB\nC,y\n"), 422, ["line 3", "fields"]),
    "csv-not-utf8": (_csv(b"serial\nA\ncaf\xe9\n"), 422, ["UTF-8"]),
    "csv-nul-byte": (_csv(b"serial\nA\x00B\n"), 422, []),
    "csv-unterminated-quote": (_csv('serial\n"A\nB\n'), 422, []),
    "csv-bare-cr": (_csv("\r0"), 422, ["serial"]),
    "csv-field-over-csv-module-limit": (_csv("serial\n" + "A" * 200_000 + "\n"), 422, ["CSV"]),
    "csv-empty-serial": (_csv("serial,note\nA,x\n,y\n"), 422, ["empty"]),
    "csv-duplicate-serials": (_csv("serial\nA\nB\nA\n"), 422, ["twice"]),
    "csv-serial-with-space": (_csv("serial\nA\n'B C'\n"), 422, ["CSET 82"]),
    "csv-no-gtin": (
        (b"serial\nA\n", "text/csv", {"lot": "BAD"}),
        422,
        ["gtin"],
    ),
    "csv-two-lots": (
        (b"serial,lot\nA,L1\nB,L2\n", "text/csv", {"gtin": GTIN}),
        422,
        ["lot"],
    ),
    "csv-lot-21-chars": (_csv("serial\nA\n", lot="L" * 21), 422, ["lot"]),
    "csv-gtin-check-digit": (_csv("serial\nA\n", gtin="09506000134353"), 422, ["check digit"]),
    "text-plain": (
        (b"serial\nA\n", "text/plain", {"gtin": GTIN, "lot": "BAD"}),
        422,
        ["content type"],
    ),
    "xml": ((b"<batch/>", "application/xml", {}), 422, ["content type"]),
    "form": ((b"gtin=1&lot=2", "application/x-www-form-urlencoded", {}), 422, ["content type"]),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS), ids=list(BAD_UPLOADS))
def test_bad_upload_is_refused_and_nothing_written(
    stack: Stack, holder: dict[str, Any], case: str
) -> None:
    (content, content_type, query), status, words = BAD_UPLOADS[case]
    before = _counts(stack)
    r = stack.client.post(
        "/v1/batches",
        params=query,
        content=content,
        headers={**stack.headers(holder["apiKey"]), "Content-Type": content_type},
    )
    api_error(r, status, "invalid_input", *words)
    assert _counts(stack) == before


def test_oversized_upload_is_413_and_nothing_written(stack: Stack, holder: dict[str, Any]) -> None:
    stack.gateway.settings.max_upload_bytes = 200
    before = _counts(stack)
    big = "serial\n" + "".join(f"S{i:05d}\n" for i in range(100))  # ~700 bytes
    r = _post_csv(stack, holder["apiKey"], big, gtin=GTIN, lot="BIG")
    api_error(r, 413, "payload_too_large", "200")
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": GTIN, "lot": "BIG", "serials": [f"S{i:05d}" for i in range(100)]},
        headers=stack.headers(holder["apiKey"]),
    )
    api_error(r, 413, "payload_too_large")

    # without a Content-Length (chunked), the limit holds while reading
    def chunks() -> Iterator[bytes]:
        yield b"serial\n"
        for i in range(100):
            yield f"S{i:05d}\n".encode()

    r = stack.client.post(
        "/v1/batches",
        params={"gtin": GTIN, "lot": "BIG"},
        content=chunks(),
        headers={**stack.headers(holder["apiKey"]), "Content-Type": "text/csv"},
    )
    api_error(r, 413, "payload_too_large")
    assert _counts(stack) == before
    # under the limit it goes through
    r = _post_csv(stack, holder["apiKey"], "serial\nA\nB\n", gtin=GTIN, lot="SMALL")
    assert r.status_code == 201, r.text


def test_unknown_batch_is_404(stack: Stack, holder: dict[str, Any]) -> None:
    unknown = "0x" + batch_id_of(GTIN, "NOPE").hex()
    key = stack.headers(holder["apiKey"])
    api_error(stack.client.get(f"/v1/batches/{unknown}", headers=key), 404, "not_found")
    api_error(stack.client.get(f"/v1/batches/{unknown}/tags", headers=key), 404, "not_found")
    r = stack.client.post(f"/v1/batches/{unknown}/status", json={"status": "recalled"}, headers=key)
    api_error(r, 404, "not_found")
    # ids that cannot be batch ids (a NUL byte included: PostgreSQL refuses it in a query)
    for malformed in ("nope", "0x1234", "0x" + "zz" * 32, "%00", "0x" + "00" * 31 + "%00"):
        for suffix in ("", "/tags"):
            r = stack.client.get(f"/v1/batches/{malformed}{suffix}", headers=key)
            api_error(r, 404, "not_found")
        r = stack.client.post(
            f"/v1/batches/{malformed}/status", json={"status": "recalled"}, headers=key
        )
        api_error(r, 404, "not_found")
    for job in ("nope", "%00", "00000000-0000-0000-0000-000000000000"):
        api_error(stack.client.get(f"/v1/jobs/{job}", headers=key), 404, "not_found")


# --------------------------------------------------------------------------------- tags


def test_tag_downloads_csv_zip_pdf(
    stack: Stack, holder: dict[str, Any], officer: dict[str, Any]
) -> None:
    serials = [*SERIALS[:6], *ODD_SERIALS]
    batch = stack.enroll(holder["apiKey"], lot="T/1", serials=serials)
    stack.sync()
    key = stack.headers(holder["apiKey"])

    r = stack.client.get(f"/v1/batches/{batch['batchId']}/tags?format=csv", headers=key)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["serial"] for row in rows] == serials
    assert {row["gtin"] for row in rows} == {GTIN} and {row["lot"] for row in rows} == {"T/1"}
    uris = {row["serial"]: row["uri"] for row in rows}
    for row in rows:
        link = parse_digital_link(row["uri"])
        assert (link.gtin, link.lot, link.serial) == (GTIN, "T/1", row["serial"])
        verdict = stack.verify(officer["apiKey"], tag=row["uri"])
        assert verdict["verdict"] == "GENUINE", (row, verdict)
        assert verdict["proof"]["salt"].removeprefix("0x") == row["salt"].removeprefix("0x")
    # downloads are deterministic: the same tags every time
    again = stack.client.get(f"/v1/batches/{batch['batchId']}/tags", headers=key)
    assert again.text == r.text

    r = stack.client.get(f"/v1/batches/{batch['batchId']}/tags?format=zip", headers=key)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(archive.namelist())
    for serial in serials:
        stem = qr_file_stem(serial)
        assert f"png/{stem}.png" in names and f"svg/{stem}.svg" in names, serial
    assert len(names) == 2 * len(serials)
    for serial in (serials[0], "a/b", 'q"t'):
        png = archive.read(f"png/{qr_file_stem(serial)}.png")
        assert png.startswith(b"\x89PNG")
        decoded = decode_image_bytes(png)
        assert [d.text for d in decoded] == [uris[serial]]
        assert decoded[0].format == "QRCode"
        svg = archive.read(f"svg/{qr_file_stem(serial)}.svg")
        assert b"<svg" in svg

    r = stack.client.get(f"/v1/batches/{batch['batchId']}/tags?format=pdf", headers=key)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and len(r.content) > 1000

    r = stack.client.get(f"/v1/batches/{batch['batchId']}/tags?format=xml", headers=key)
    api_error(r, 422, "invalid_input", "format")

    # the admin may download them too
    r = stack.client.get(
        f"/v1/batches/{batch['batchId']}/tags", headers=stack.headers(stack.admin_key)
    )
    assert r.status_code == 200 and r.text == again.text


# ------------------------------------------------------------------------------ statuses


def _status(stack: Stack, key: str, batch_id: str, **body: Any) -> Any:
    return stack.client.post(
        f"/v1/batches/{batch_id}/status", json=body, headers=stack.headers(key)
    )


def test_item_and_batch_status_changes_reach_verification(
    stack: Stack, holder: dict[str, Any], officer: dict[str, Any]
) -> None:
    batch = stack.enroll(holder["apiKey"], serials=SERIALS)
    other = stack.enroll(holder["apiKey"], lot="L2", serials=SERIALS[:4])
    stack.sync()
    tags = {t["serial"]: t["uri"] for t in stack.tags(holder["apiKey"], batch["batchId"])}
    tags2 = {t["serial"]: t["uri"] for t in stack.tags(holder["apiKey"], other["batchId"])}
    bid = batch["batchId"]

    changes = {"SN0001": "stolen", "SN0002": "decommissioned", "SN0003": "destroyed"}
    changes["SN0004"] = "recalled"
    for serial, status in changes.items():
        r = _status(stack, holder["apiKey"], bid, serial=serial, status=status)
        assert r.status_code == 202, r.text
        write = r.json()
        assert write["status"] == "done" and write["txHash"] and write["kind"] == "set_item_status"
    stack.sync()

    def check(uri: str) -> dict[str, Any]:
        return stack.verify(officer["apiKey"], tag=uri)

    stolen = check(tags["SN0001"])
    assert stolen["verdict"] == "STOLEN" and "ITEM_STOLEN" in stolen["reasons"]
    decommissioned = check(tags["SN0002"])
    assert decommissioned["verdict"] == "DECOMMISSIONED"
    assert "ITEM_DECOMMISSIONED" in decommissioned["reasons"]
    destroyed = check(tags["SN0003"])
    assert destroyed["verdict"] == "COUNTERFEIT_SUSPECT"
    assert "ITEM_DESTROYED" in destroyed["reasons"]
    recalled = check(tags["SN0004"])
    assert recalled["verdict"] == "RECALLED" and "ITEM_RECALLED" in recalled["reasons"]
    assert check(tags["SN0000"])["verdict"] == "GENUINE"
    # the same serial in another lot is another item
    assert check(tags2["SN0001"])["verdict"] == "GENUINE"
    # a typed serial sees the status too
    typed = stack.verify(officer["apiKey"], gtin=GTIN, serial="SN0001", lot="L1")
    assert typed["verdict"] == "STOLEN"

    # a recovered item goes back to active
    r = _status(stack, holder["apiKey"], bid, serial="SN0001", status="active")
    assert r.status_code == 202 and r.json()["status"] == "done", r.text
    stack.sync()
    assert check(tags["SN0001"])["verdict"] == "GENUINE"

    # the whole batch recalled: every item is RECALLED, except what is worse already
    r = _status(stack, holder["apiKey"], bid, status="recalled")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "done" and r.json()["kind"] == "set_batch_status"
    stack.sync()
    recalled = check(tags["SN0000"])
    assert recalled["verdict"] == "RECALLED" and "BATCH_RECALLED" in recalled["reasons"]
    assert check(tags["SN0003"])["verdict"] == "COUNTERFEIT_SUSPECT"
    assert check(tags2["SN0000"])["verdict"] == "GENUINE"
    read = stack.client.get(f"/v1/batches/{bid}", headers=stack.headers(holder["apiKey"]))
    assert read.json()["status"] == "recalled"

    r = _status(stack, holder["apiKey"], other["batchId"], status="decommissioned")
    assert r.status_code == 202 and r.json()["status"] == "done", r.text
    stack.sync()
    assert check(tags2["SN0002"])["verdict"] == "DECOMMISSIONED"

    # a destroyed batch: every item a suspect
    r = _status(stack, holder["apiKey"], other["batchId"], status="destroyed")
    assert r.status_code == 202 and r.json()["status"] == "done", r.text
    stack.sync()
    destroyed = check(tags2["SN0002"])
    assert (
        destroyed["verdict"] == "COUNTERFEIT_SUSPECT" and "ITEM_DESTROYED" in destroyed["reasons"]
    )
    assert stack.registry.get_batch(other["batchId"]).status.name == "DESTROYED"


def test_status_change_errors(stack: Stack, holder: dict[str, Any]) -> None:
    batch = stack.enroll(holder["apiKey"], serials=SERIALS)
    stack.sync()
    bid = batch["batchId"]
    with stack.gateway.engine.connect() as connection:
        writes = connection.execute(sa.text("SELECT count(*) FROM pending_writes")).scalar()

    r = _status(stack, holder["apiKey"], bid, serial="NOT-IN-BATCH", status="stolen")
    api_error(r, 404, "not_found", "NOT-IN-BATCH")
    r = _status(stack, holder["apiKey"], bid, serial="SN 1", status="stolen")
    assert r.status_code in (404, 422), r.text
    for body in (
        {"status": "lost"},
        {"status": "STOLEN "},
        {"status": 2},
        {},
        {"status": "stolen", "serial": "X" * 21},
        {"status": "stolen", "extra": True},
    ):
        r = _status(stack, holder["apiKey"], bid, **body)
        api_error(r, 422, "invalid_input")
    with stack.gateway.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM pending_writes")).scalar() == writes
    assert stack.registry.get_batch(bid).status.name == "ACTIVE"


def test_status_idempotency_key_is_per_organization(stack: Stack, holder: dict[str, Any]) -> None:
    rival = stack.org("Rival", "rights_holder", gtins=("00012345600012",))
    mine = stack.enroll(holder["apiKey"], serials=SERIALS)
    theirs = stack.client.post(
        "/v1/batches",
        json={"gtin": "00012345600012", "lot": "R1", "serials": SERIALS},
        headers=stack.headers(rival["apiKey"]),
    )
    assert theirs.status_code == 201, theirs.text
    stack.sync()

    def change(key: str, batch_id: str, status: str) -> Any:
        return stack.client.post(
            f"/v1/batches/{batch_id}/status",
            json={"status": status},
            headers={**stack.headers(key), "Idempotency-Key": "k-1"},
        )

    first = change(holder["apiKey"], mine["batchId"], "recalled")
    assert first.status_code == 202 and first.json()["status"] == "done", first.text
    retry = change(holder["apiKey"], mine["batchId"], "recalled")
    assert retry.status_code == 202 and retry.json()["id"] == first.json()["id"]
    assert retry.json()["txHash"] == first.json()["txHash"]
    # another organization using the same key gets its own write
    other = change(rival["apiKey"], theirs.json()["batchId"], "stolen")
    assert other.status_code == 202, other.text
    assert other.json()["id"] != first.json()["id"] and other.json()["status"] == "done"
    assert stack.registry.get_batch(theirs.json()["batchId"]).status.name == "STOLEN"
    assert stack.registry.get_batch(mine["batchId"]).status.name == "RECALLED"

    # the same key for another change is a conflict, not a silent no-op
    r = change(holder["apiKey"], mine["batchId"], "stolen")
    api_error(r, 409, "conflict", "Idempotency-Key")
    assert stack.registry.get_batch(mine["batchId"]).status.name == "RECALLED"
    # a key cannot name one of the gateway's own writes, and the longest key fits
    for odd in (f"register:{mine['batchId']}", "x" * 200):
        r = stack.client.post(
            f"/v1/batches/{mine['batchId']}/status",
            json={"status": "active"},
            headers={**stack.headers(holder["apiKey"]), "Idempotency-Key": odd},
        )
        assert r.status_code == 202, r.text
        assert r.json()["kind"] == "set_batch_status" and r.json()["status"] == "done"
    assert stack.registry.get_batch(mine["batchId"]).status.name == "ACTIVE"


# ----------------------------------------------------------------------------- large batches


def test_large_batch_is_enrolled_as_a_job(
    stack: Stack, holder: dict[str, Any], officer: dict[str, Any]
) -> None:
    stack.gateway.settings.sync_enroll_limit = 50
    serials = [f"BIG{i:05d}" for i in range(200)]
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": GTIN, "lot": "BIG", "serials": serials},
        headers=stack.headers(holder["apiKey"]),
    )
    assert r.status_code == 202, r.text
    accepted = r.json()
    job_id = accepted["jobId"]
    assert accepted["batchId"] == "0x" + batch_id_of(GTIN, "BIG").hex()

    deadline = time.monotonic() + 60
    while True:
        r = stack.client.get(f"/v1/jobs/{job_id}", headers=stack.headers(holder["apiKey"]))
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert job["status"] == "done", job
    assert job["done"] == job["total"] == 200 and job["kind"] == "enroll"
    result = job["result"]
    assert result["batchId"] == accepted["batchId"] and result["count"] == 200
    assert result["registration"] == "done" and result["txHash"]
    assert stack.registry.get_batch(result["batchId"]).root == result["root"]

    # another organization cannot see the job; the admin can
    rival = stack.org("Rival", "rights_holder")
    for key in (rival["apiKey"], officer["apiKey"]):
        r = stack.client.get(f"/v1/jobs/{job_id}", headers=stack.headers(key))
        api_error(r, 404, "not_found")
    r = stack.client.get(f"/v1/jobs/{job_id}", headers=stack.headers(stack.admin_key))
    assert r.status_code == 200 and r.json()["status"] == "done"
    api_error(
        stack.client.get("/v1/jobs/no-such-job", headers=stack.headers(holder["apiKey"])),
        404,
        "not_found",
    )

    stack.sync()
    tags = stack.tags(holder["apiKey"], result["batchId"])
    assert len(tags) == 200
    assert stack.verify(officer["apiKey"], tag=tags[199]["uri"])["verdict"] == "GENUINE"
    typed = stack.verify(officer["apiKey"], gtin=GTIN, serial="BIG00123")
    assert typed["verdict"] == "GENUINE_UNSIGNED"


def test_done_means_verifiable_from_every_gateway(
    stack: Stack, holder: dict[str, Any], officer: dict[str, Any], database: tuple[str, str | None]
) -> None:
    """One gateway answers the registration "done"; another, on the same database, verifies a
    tag of the batch at once, before the index reached its block: PENDING (never suspect),
    saying which block; GENUINE once the index catches up. Codes of batches nobody enrolled
    stay suspect, and their answer is remembered briefly."""
    with other_gateway(stack, database) as other:
        officer_headers = stack.headers(officer["apiKey"])

        def scan(client: TestClient, **body: Any) -> dict[str, Any]:
            r = client.post("/v1/verify", json=body, headers=officer_headers)
            assert r.status_code == 200, r.text
            answer: dict[str, Any] = r.json()
            return answer

        # the other gateway has already judged this GTIN unknown: no stale negative survives
        before = scan(other, gtin=GTIN, serial=SERIALS[0], lot="L1")
        assert before["verdict"] == "COUNTERFEIT_SUSPECT" and before["reasons"][0] == "GTIN_UNKNOWN"
        time.sleep(0.6)  # longer than a remembered answer (api.registrations.TTL)
        batch = stack.enroll(holder["apiKey"], serials=SERIALS)
        assert batch["registration"] == "done" and batch["block"]
        tag = {t["serial"]: t["uri"] for t in stack.tags(holder["apiKey"], batch["batchId"])}[
            SERIALS[0]
        ]
        for client in (other, stack.client):
            for body in ({"tag": tag}, {"gtin": GTIN, "serial": SERIALS[0], "lot": "L1"}):
                answer = scan(client, **body)
                assert answer["verdict"] == "PENDING", answer
                assert answer["reasons"][0] == "REGISTRATION_PENDING", answer
                index_block = answer["index"]["block"]
                assert index_block < batch["block"]
                assert answer["summary"] == (
                    f"Registration pending: registered at block {batch['block']}; this "
                    f"gateway's index is at block {index_block} and catching up. Scan again in "
                    "a few seconds."
                )
        # another lot of the same GTIN, and an unknown GTIN, are still suspect
        fake_lot = scan(other, gtin=GTIN, serial=SERIALS[0], lot="L9")
        assert fake_lot["verdict"] == "COUNTERFEIT_SUSPECT", fake_lot
        unknown = scan(other, gtin="00012345600012", serial="X1")
        assert unknown["verdict"] == "COUNTERFEIT_SUSPECT" and unknown["reasons"] == [
            "GTIN_UNKNOWN"
        ] + [r for r in unknown["reasons"] if r == "INDEX_STALE"]
        stack.sync()
        time.sleep(0.25)  # the other process reloads its snapshot when the checkpoint moves
        assert scan(other, tag=tag)["verdict"] == "GENUINE"
        assert scan(stack.client, tag=tag)["verdict"] == "GENUINE"


def test_a_queued_registration_is_pending_not_on_chain(
    stack: Stack, holder: dict[str, Any], officer: dict[str, Any]
) -> None:
    """While the registration write is still queued (chain unreachable), its tags are PENDING
    with a summary saying the registration is not yet on chain."""
    batch = stack.enroll(holder["apiKey"], serials=SERIALS)
    with Session(stack.gateway.engine) as session:
        write = session.exec(
            select(PendingWrite).where(
                PendingWrite.idempotency_key == f"register:{batch['batchId']}"
            )
        ).one()
        write.status, write.block_number = WriteStatus.QUEUED, None
        session.add(write)
        session.commit()
    stack.gateway.registrations.invalidate()
    answer = stack.verify(officer["apiKey"], gtin=GTIN, serial=SERIALS[1], lot="L1")
    assert answer["verdict"] == "PENDING" and answer["reasons"][0] == "REGISTRATION_PENDING"
    assert answer["summary"] == (
        "Registration pending: the batch is enrolled at this gateway, its registration is not "
        "yet on chain. Scan again in a few seconds."
    )


def test_a_flood_of_fake_codes_reads_the_registrations_once(
    stack: Stack, officer: dict[str, Any]
) -> None:
    """Codes of GTINs nobody enrolled stay suspect, and however many arrive, the database is
    asked about unindexed registrations at most once per `api.registrations.TTL`."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "pending_writes" in statement:
            statements.append(statement)

    sa.event.listen(stack.gateway.engine, "before_cursor_execute", count)
    try:
        started = time.monotonic()
        for n in range(40):
            body = f"0001234{n:06d}"
            gtin = body + str(gtin_check_digit(body))
            answer = stack.verify(officer["apiKey"], gtin=gtin, serial="X1", lot="L1")
            assert answer["verdict"] == "COUNTERFEIT_SUSPECT"
            assert answer["reasons"][0] == "GTIN_UNKNOWN"
        elapsed = time.monotonic() - started
    finally:
        sa.event.remove(stack.gateway.engine, "before_cursor_execute", count)
    assert 1 <= len(statements) <= 1 + int(elapsed / 0.5), (len(statements), elapsed)
