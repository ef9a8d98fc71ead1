"""`borderledger bundle fetch` and `borderledger scan --offline` as subprocesses against a real
gateway over HTTP: pinning, trust on first use, tampered bundles refused, verdicts offline."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.digital_link import DigitalLink
from ledger.trustbundle import (
    PAYLOAD_FORMAT_1,
    BundleRefused,
    canonical_bytes,
    public_key_hex,
    sign_bundle,
)
from scanner.bundles import open_bundle
from tests.scanner.conftest import SERIALS, Served
from tests.stack import GTIN, borderledger


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return borderledger(home, *args)


def fetch(served: Served, home: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli(
        home,
        "bundle",
        "fetch",
        "--gateway",
        served.url,
        "--api-key",
        served.officer_key,
        "--out",
        str(out),
        *extra,
    )


def last_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout.strip(), proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def gateway_key(served: Served) -> str:
    key: str = served.stack.client.get("/v1/trust-bundle/key").json()["publicKey"]
    return key


def test_fetch_trust_on_first_use_then_pinned(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    first = fetch(served, tmp_path, out)
    assert first.returncode == 0, first.stderr
    assert "trust on first use" in first.stderr and gateway_key(served) in first.stderr
    assert "verified" in first.stdout
    pin = tmp_path / "bundle.json.pin"
    assert pin.read_text().strip() == gateway_key(served)
    second = last_json(fetch(served, tmp_path, out, "--json"))
    assert second["keySource"] == "pinned earlier" and second["publicKey"] == gateway_key(served)
    assert second["counts"] == {"holders": 1, "signers": 1, "batches": 1, "flaggedItems": 0}
    # an explicit pin of the right key
    third = last_json(fetch(served, tmp_path, out, "--pin", gateway_key(served), "--json"))
    assert third["keySource"] == "--pin"


def test_fetch_refuses_another_key_and_keeps_the_old_bundle(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    assert fetch(served, tmp_path, out).returncode == 0
    before = out.read_bytes()
    other = public_key_hex(Ed25519PrivateKey.generate())
    # the gateway's key is not the one pinned: refused, nothing overwritten
    (tmp_path / "bundle.json.pin").write_text(other + "\n")
    refused = fetch(served, tmp_path, out)
    assert refused.returncode == 2
    assert (
        "trust bundle refused" in refused.stderr
        and "not by the pinned gateway key" in refused.stderr
    )
    assert out.read_bytes() == before
    refused = fetch(served, tmp_path, tmp_path / "new.json", "--pin", other)
    assert refused.returncode == 2 and not (tmp_path / "new.json").exists()
    bad = fetch(served, tmp_path, tmp_path / "new.json", "--pin", "abc")
    assert bad.returncode == 2 and "64 hex digits" in bad.stderr
    # a key that may not fetch bundles (the rights holder's would be refused as well)
    denied = cli(
        tmp_path, "bundle", "fetch", "--gateway", served.url, "--api-key", "nope", "--out", str(out)
    )
    assert denied.returncode == 1 and "refused the API key" in denied.stderr


def test_scan_offline_verdicts_and_age(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    assert fetch(served, tmp_path, out).returncode == 0
    forged = DigitalLink(GTIN, "L1", "NOT-ENROLLED", b"\x01" * 64 + b"\x1b").to_uri()
    proc = cli(
        tmp_path,
        "scan",
        "--offline",
        "--bundle",
        str(out),
        "--code",
        served.tags[SERIALS[0]],
        "--location",
        "NLRTM",
        "--json",
    )
    report = last_json(proc)
    assert proc.returncode == 0, proc.stderr
    (code,) = report["codes"]
    assert code["verdict"] == "GENUINE" and code["offline"] is True
    assert code["findings"] == []  # no route policy on this batch, one sighting
    assert "MEMBERSHIP_NOT_CHECKED" in code["reasons"]
    assert report["mode"] == "offline" and report["bundle"]["stale"] is False
    assert report["bundle"]["ageSeconds"] < 600 and report["bundle"]["blockAgeSeconds"] < 600

    # a suspect and a typed serial; with --gateway-key instead of the pin file
    (tmp_path / "bundle.json.pin").unlink()
    proc = cli(
        tmp_path,
        "scan",
        "--offline",
        "--bundle",
        str(out),
        "--gateway-key",
        gateway_key(served),
        "--code",
        DigitalLink(GTIN, "L9", SERIALS[0]).to_uri(),
        "--serial",
        GTIN,
        SERIALS[1],
        "--json",
    )
    assert proc.returncode == 3, proc.stderr
    verdicts = {c["payload"]["serial"]: c for c in last_json(proc)["codes"]}
    assert verdicts[SERIALS[0]]["verdict"] == "COUNTERFEIT_SUSPECT"
    assert verdicts[SERIALS[0]]["reasons"][0] == "BATCH_UNKNOWN"
    assert verdicts[SERIALS[1]]["verdict"] == "UNVERIFIED"

    # Rich output says how old the bundle is, and warns past --max-age
    proc = cli(
        tmp_path,
        "scan",
        "--offline",
        "--bundle",
        str(out),
        "--gateway-key",
        gateway_key(served),
        "--code",
        forged,
        "--max-age",
        "0.001",
    )
    assert proc.returncode == 3
    assert "index block" in proc.stdout and "issued" in proc.stdout
    assert "warning:" in proc.stdout and "older than" in proc.stdout
    assert "BUNDLE_STALE" in proc.stdout and "COUNTERFEIT_SUSPECT" in proc.stdout


def test_tampered_bundles_are_refused_by_scan(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    assert fetch(served, tmp_path, out).returncode == 0
    envelope = json.loads(out.read_bytes())
    payload = json.loads(base64.urlsafe_b64decode(envelope["payload"] + "=="))
    tag = served.tags[SERIALS[0]]

    def scan_with(name: str, data: bytes, *extra: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / name
        path.write_bytes(data)
        (tmp_path / (name + ".pin")).write_text(gateway_key(served))
        return cli(tmp_path, "scan", "--offline", "--bundle", str(path), "--code", tag, *extra)

    # one byte of the signed payload
    raw = bytearray(out.read_bytes())
    at = (
        raw.index(b'"payload": "') + 40
        if b'"payload": "' in raw
        else raw.index(b'"payload":"') + 40
    )
    raw[at] = ord("A") if raw[at] != ord("A") else ord("B")
    one_byte = scan_with("one-byte.json", bytes(raw))
    # one field: the batch marked active again, the payload re-encoded, the signature kept
    payload["batches"][0]["status"] = "active"
    payload["index"]["block"] += 100
    edited = {
        **envelope,
        "payload": base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode(),
    }
    one_field = scan_with("one-field.json", json.dumps(edited).encode())
    # the same payload re-signed with another key (also written into the envelope)
    resigned = sign_bundle(payload, Ed25519PrivateKey.generate())
    other_key = scan_with("resigned.json", json.dumps(resigned).encode())
    not_json = scan_with("garbage.json", b"\x00\x01garbage")
    for proc in (one_byte, one_field, other_key, not_json):
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert "trust bundle refused" in proc.stderr
        assert "Traceback" not in proc.stderr and not proc.stdout.strip()
    assert "altered" in one_field.stderr or "altered" in one_byte.stderr
    assert "not by the pinned gateway key" in other_key.stderr


def test_offline_option_errors(served: Served, tmp_path: Path) -> None:
    tag = served.tags[SERIALS[0]]
    cases = [
        (["--offline", "--code", tag], "--offline needs --bundle"),
        (["--bundle", "x.json", "--code", tag], "--bundle goes with --offline"),
        (
            [
                "--offline",
                "--bundle",
                str(tmp_path / "none.json"),
                "--code",
                tag,
                "--gateway-key",
                "ab" * 32,
            ],
            "cannot read",
        ),
        (
            ["--offline", "--bundle", str(tmp_path / "none.json"), "--code", tag],
            "no gateway key",
        ),
        (
            ["--offline", "--bundle", "b.json", "--verify-chain", "http://x", "--code", tag],
            "needs the network",
        ),
    ]
    bundle = tmp_path / "bundle.json"
    assert fetch(served, tmp_path, bundle).returncode == 0
    cases.append(
        (
            ["--offline", "--bundle", str(bundle), "--code", tag, "--location", "NL2R9"],
            "unknown location 'NL2R9'",
        )
    )
    for args, message in cases:
        proc = cli(tmp_path, "scan", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)


def test_a_bundle_signed_by_the_old_gateway_still_loads(tmp_path: Path) -> None:
    """A `borderledger/trust-bundle/1` envelope (pre-RFC 8785 bytes: `valid_from` written
    `1767225600.0`), committed as the old gateway signed it, verifies and is read by the
    scanner with the key it was pinned with; the bytes are not what JCS writes."""
    fixtures = Path(__file__).parent / "fixtures"
    key = (fixtures / "trust_bundle_v1.key").read_text().strip()
    path = tmp_path / "bundle.json"
    path.write_bytes((fixtures / "trust_bundle_v1.json").read_bytes())
    bundle = open_bundle(path, key)
    assert bundle.payload["format"] == PAYLOAD_FORMAT_1
    [holder] = bundle.holders.values()
    assert holder["name"] == "Acmé Pharma — 東京"
    [batch] = bundle.batches.values()
    assert batch.raw["routePolicy"]["valid_from"] == 1767225600.0
    assert bundle.items[(batch.batch_id, "0x" + "34" * 32)].name.lower() == "stolen"
    signed = unb64(json.loads(path.read_bytes())["payload"])
    assert b'"valid_from":1767225600.0' in signed and canonical_bytes(bundle.payload) != signed
    with pytest.raises(BundleRefused, match="signed by key"):
        open_bundle(path, public_key_hex(Ed25519PrivateKey.generate()))
