"""Signed offline scan records: canonical form, signatures, validation (ledger.scan_record)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.gs1 import CSET82
from ledger.scan_record import (
    SCHEMA,
    SCHEMA_1,
    SCHEMA_3,
    build_record,
    canonical_json,
    check_signature,
    decode_public_key,
    device_id_of,
    encode_public_key,
    format_time,
    parse_record,
    sign_record,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
RAW = base64.b64decode(encode_public_key(KEY.public_key()))
DEVICE = device_id_of(RAW)
TOKENS = st.text(alphabet="".join(sorted(CSET82)), min_size=1, max_size=20)
# What RFC 8785 can hold (I-JSON): finite doubles, integers to ±2^53, Unicode scalar values.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)))
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def record(**changes: object) -> str:
    fields: dict[str, object] = {
        "device_id": DEVICE,
        "payload": "(01)09506000134352(21)SN1",
        "kind": "gs1",
        "tag": None,
        "gtin": "09506000134352",
        "serial": "SN1",
        "lot": None,
        "location": "NLRTM",
        "scanned_at": datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
        **changes,
    }
    return build_record(**fields)  # type: ignore[arg-type]


@given(
    serial=TOKENS,
    lot=st.none() | TOKENS,
    seconds=st.integers(946_684_800, 4_102_444_800),
    micro=st.integers(0, 999_999),
    offset=st.integers(-14 * 60, 14 * 60),
    verdict=st.none() | st.dictionaries(TEXT, JSON_VALUES, max_size=4),
)
@settings(max_examples=200, deadline=None)
def test_round_trip_and_signature(
    serial: str,
    lot: str | None,
    seconds: int,
    micro: int,
    offset: int,
    verdict: dict[str, object] | None,
) -> None:
    at = datetime.fromtimestamp(seconds, UTC).replace(microsecond=micro)
    local = at.astimezone(timezone(timedelta(minutes=offset)))
    text = record(serial=serial, lot=lot, scanned_at=local, offline_verdict=verdict)
    assert text == canonical_json(json.loads(text))  # built canonical
    assert "\n" not in text and json.loads(text)["schema"] == SCHEMA  # JCS: raw UTF-8
    parsed = parse_record(text)
    assert parsed.scanned_at == at and parsed.serial == serial and parsed.lot == lot
    assert parsed.offline_verdict == verdict and parsed.device_id == DEVICE
    assert str(uuid.UUID(parsed.scan_id)) == parsed.scan_id
    signature = sign_record(KEY, text)
    assert check_signature(KEY.public_key(), text, signature)
    # Any change to the signed text, however small, breaks the signature.
    flipped = text.replace(f'"serial":{json.dumps(serial)}', f'"serial":{json.dumps(serial + "X")}')
    assert not check_signature(KEY.public_key(), flipped, signature)
    assert not check_signature(Ed25519PrivateKey.generate().public_key(), text, signature)


def test_times_have_one_spelling() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert format_time(at) == "2026-01-02T03:04:05.000006Z"
    assert format_time(at.astimezone(timezone(timedelta(hours=5)))) == format_time(at)
    assert format_time(at.replace(tzinfo=None)) == format_time(at)


def test_public_key_forms() -> None:
    text = encode_public_key(KEY.public_key())
    assert len(text) == 44
    urlsafe = base64.urlsafe_b64encode(RAW).decode().rstrip("=")
    from cryptography.hazmat.primitives import serialization

    pem = (
        KEY.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    for form in (text, urlsafe, pem, f"  {text}\n"):
        assert decode_public_key(form)[1] == RAW
    assert DEVICE.startswith("dev-") and len(DEVICE) == 36
    for bad, words in (
        ("!!!", "base64"),
        (base64.b64encode(b"x" * 31).decode(), "31"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "PEM"),
    ):
        with pytest.raises(InvalidInput, match=words):
            decode_public_key(bad)


def test_bad_signatures_are_false_not_errors() -> None:
    text = record()
    good = sign_record(KEY, text)
    assert check_signature(KEY.public_key(), text, good)
    # The 86th character carries 2 bits and 4 unused ones: another spelling of the same bytes.
    last = good[85]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = good[:85] + alphabet[alphabet.index(last) ^ 1] + good[86:]
    assert base64.b64decode(twin) == base64.b64decode(good)
    assert not check_signature(KEY.public_key(), text, twin)
    for signature in ("", "!!", base64.b64encode(b"x" * 63).decode(), "A" * 88):
        assert check_signature(KEY.public_key(), text, signature) is False


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda r: {**r, "schema": "other/1"}, "schema"),
        (lambda r: {k: v for k, v in r.items() if k != "lot"}, "missing lot"),
        (lambda r: {**r, "extra": 1}, "unknown extra"),
        (lambda r: {**r, "scanId": "not-a-uuid"}, "scanId"),
        (lambda r: {**r, "scanId": r["scanId"].upper()}, "scanId"),
        (lambda r: {**r, "deviceId": "dev-xyz"}, "deviceId"),
        (lambda r: {**r, "scannedAt": "2026-11-24T12:00:00+01:00"}, "scannedAt"),
        (lambda r: {**r, "scannedAt": 5}, "scannedAt"),
        (lambda r: {**r, "location": "nlrtm"}, "UN/LOCODE"),
        (lambda r: {**r, "kind": "foreign"}, "kind"),
        (lambda r: {**r, "payload": ""}, "payload"),
        (lambda r: {**r, "serial": None}, "tag, or gtin and serial"),
        (lambda r: {**r, "serial": 7}, "serial"),
        (lambda r: {**r, "offlineVerdict": [1]}, "offlineVerdict"),
    ],
)
def test_invalid_records_name_the_problem(change: object, words: str) -> None:
    base = json.loads(record())
    text = canonical_json(change(base))  # type: ignore[operator]
    with pytest.raises(InvalidInput, match=words):
        parse_record(text)


def test_not_json_or_too_big() -> None:
    for text, words in (("{", "not JSON"), ("[]", "not a JSON object"), ("x" * 20_000, "larger")):
        with pytest.raises(InvalidInput, match=words):
            parse_record(text)
    assert json.loads(record())["schema"] == SCHEMA


def test_offline_verdict_name_only_when_it_looks_like_one() -> None:
    assert parse_record(record(offline_verdict={"verdict": "GENUINE"})).offline_verdict_name == (
        "GENUINE"
    )
    for verdict in ({"verdict": "genuine\x00"}, {"verdict": 3}, {"other": "GENUINE"}, None):
        assert parse_record(record(offline_verdict=verdict)).offline_verdict_name is None


OLD = json.loads((Path(__file__).parent / "fixtures" / "scan_records_v1.json").read_text())


def test_records_signed_by_the_old_code_still_verify_and_parse() -> None:
    """Schema 1 records (ASCII-escaped), committed as an older device signed them."""
    key, raw = decode_public_key(OLD["publicKey"])
    assert device_id_of(raw) == OLD["deviceId"]
    for scan in OLD["scans"]:
        text = scan["record"]
        assert text.isascii() and json.loads(text)["schema"] == SCHEMA_1
        assert check_signature(key, text, scan["signature"])
        parsed = parse_record(text)
        assert parsed.device_id == OLD["deviceId"] and parsed.gtin == "09506000134352"
        # the old encoder is kept: it writes exactly what was signed
        assert canonical_json(json.loads(text), SCHEMA_1) == text
    verdict = parse_record(OLD["scans"][0]["record"]).offline_verdict
    assert verdict is not None and verdict["note"] == "vérifié — 東京 😀"
    assert canonical_json(json.loads(OLD["scans"][0]["record"])) != OLD["scans"][0]["record"]


def test_new_records_are_jcs_utf8() -> None:
    text = record(serial="SN1", offline_verdict={"verdict": "GENUINE", "note": "東京", "c": 1.0})
    assert '"note":"東京"' in text and '"c":1,' in text and json.loads(text)["schema"] == SCHEMA
    assert parse_record(text).offline_verdict == {"verdict": "GENUINE", "note": "東京", "c": 1}
    with pytest.raises(InvalidInput, match="not a JSON number"):
        record(offline_verdict={"x": float("inf")})


def test_schema_3_names_the_user_and_schema_2_has_no_user_field() -> None:
    from ledger.scan_record import SCHEMA_2, parse_record

    text = build_record(
        device_id="dev-" + "0" * 32,
        payload="x",
        kind="typed",
        tag=None,
        gtin="09506000134352",
        serial="S1",
        lot=None,
        location=None,
        scanned_at=datetime(2026, 12, 6, tzinfo=UTC),
        user="olivia@customs.example",
    )
    assert parse_record(text).user == "olivia@customs.example"
    record = {k: v for k, v in json.loads(text).items() if k != "shipment"}
    record["schema"] = SCHEMA_3
    old = {k: v for k, v in record.items() if k != "user"}
    assert parse_record(canonical_json({**old, "schema": SCHEMA_2}, SCHEMA_2)).user is None
    with pytest.raises(InvalidInput, match="unknown user"):
        parse_record(canonical_json({**record, "schema": SCHEMA_2}, SCHEMA_2))
    with pytest.raises(InvalidInput, match="missing user"):
        parse_record(canonical_json({**old, "schema": SCHEMA_3}))
    with pytest.raises(InvalidInput, match="user"):
        parse_record(canonical_json({**record, "user": ""}))


def test_schema_4_carries_the_shipment_and_schema_3_has_no_shipment_field() -> None:
    """Schema 4 adds the shipment reference (the rule of `shipment` on /v1/verify); schema 3
    records, without the field, are still read."""
    text = record(shipment="AWB 176-12345675", user="olivia@customs.example")
    fields = json.loads(text)
    assert fields["schema"] == SCHEMA == "borderledger/offline-scan/4"
    assert parse_record(text).shipment == "AWB 176-12345675"
    assert parse_record(record()).shipment is None and json.loads(record())["shipment"] is None
    v3 = {k: v for k, v in fields.items() if k != "shipment"}
    parsed = parse_record(canonical_json({**v3, "schema": SCHEMA_3}, SCHEMA_3))
    assert parsed.shipment is None and parsed.user == "olivia@customs.example"
    with pytest.raises(InvalidInput, match="unknown shipment"):
        parse_record(canonical_json({**fields, "schema": SCHEMA_3}, SCHEMA_3))
    with pytest.raises(InvalidInput, match="missing shipment"):
        parse_record(canonical_json(v3))
    for bad in ("", "-AWB1", "AWB\n1", "A" * 36, "AWB#1", 17):
        with pytest.raises(InvalidInput, match="shipment"):
            parse_record(canonical_json({**fields, "shipment": bad}))
    with pytest.raises(InvalidInput, match="shipment"):
        record(shipment="no;thanks")
