"""The `borderledger` command as a user runs it: real processes, real node, real files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chain.keystore import create_keystore
from chain.node import dev_private_key
from scanner.decode import decode_file
from tests.conftest import Chain

PASSWORD = "correct horse battery staple"


class Cli:
    def __init__(self, home: Path, rpc_url: str, registry: str | None = None) -> None:
        self.env = {
            **os.environ,
            "BORDERLEDGER_HOME": str(home),
            "BORDERLEDGER_RPC_URL": rpc_url,
            "BORDERLEDGER_KEYSTORE_PASSWORD": PASSWORD,
            "BORDERLEDGER_KEYSTORE_SCRYPT_N": "1024",
            "COLUMNS": "200",
        }
        if registry:
            self.env["BORDERLEDGER_REGISTRY"] = registry

    def __call__(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "borderledger", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def json(self, *args: str, expect: int = 0) -> dict[str, object]:
        return json.loads(self(*args, expect=expect).stdout)  # type: ignore[no-any-return]


@pytest.fixture
def cli(chain: Chain, tmp_path: Path) -> Cli:
    """A CLI user with keystores for admin, holder and signer, using the `chain` registry."""
    keys = tmp_path / "home" / "keys"
    for name, index in (("admin", 0), ("holder", 1), ("signer", 5), ("stranger", 3)):
        create_keystore(keys, name, PASSWORD, dev_private_key(index), scrypt_n=1024)
    return Cli(tmp_path / "home", chain.node.url, chain.registry.address)


def _csv(path: Path, serials: list[str], header: str = "serial") -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([header])
        writer.writerows([s] for s in serials)
    return path


def test_full_flow_accredit_sign_enroll_check_revoke_steal(
    cli: Cli, chain: Chain, tmp_path: Path
) -> None:
    cli.json("accredit", "holder", "holder", "--name", "Acme Pharma", "--recordation", "TMK 19-1")
    bound = cli.json("accredit", "bind-gtin", "09506000134352", "holder")
    assert chain.registry.gtin_holder("09506000134352") == bound["holder"]
    cli.json("accredit", "agency", chain.agency.address, "--name", "NL Customs")
    assert chain.registry.customs_agency(chain.agency.address) == "NL Customs"
    added = cli.json("signer", "add", "signer")
    assert added["signer"] == chain.tag_signer().address

    serials = ["A1", "A2", "B,3", 'Q"4', "X/5"]
    out = tmp_path / "out"
    summary = cli.json(
        "enroll",
        str(_csv(tmp_path / "s.csv", serials)),
        "--gtin",
        "9506000134352",
        "--lot",
        "LOT-7",
        "--out",
        str(out),
    )
    assert summary["count"] == 5
    assert summary["gtin"] == "09506000134352"
    assert chain.registry.get_batch(str(summary["batchId"])).root == summary["root"]
    with (out / "tags.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["serial"] for r in rows] == serials
    pngs = sorted((out / "qr").glob("*.png"))
    assert len(pngs) == 5
    assert {decode_file(p)[0].text for p in pngs} == {r["uri"] for r in rows}

    report = cli.json("check", rows[2]["uri"], "--batch-dir", str(out), "--json")
    assert report["genuine"] is True and report["in_batch"] is True
    plain = cli("check", rows[0]["uri"]).stdout
    assert "GENUINE" in plain

    # Re-running the same enrollment registers nothing new.
    again = cli.json(
        "enroll",
        str(_csv(tmp_path / "s.csv", serials)),
        "--gtin",
        "9506000134352",
        "--lot",
        "LOT-7",
        "--out",
        str(out),
    )
    assert again["alreadyRegistered"] is True and again["txHash"] == summary["txHash"]

    # Revoking the key later does not invalidate tags of a batch registered while it was active.
    cli.json("signer", "revoke", "signer")
    assert cli.json("check", rows[1]["uri"], "--json")["genuine"] is True

    cli.json("status", "item", str(out), "A2", "stolen")
    stolen = cli.json("check", rows[1]["uri"], "--json", expect=3)
    assert stolen["status"] == "stolen"
    assert "the item is stolen" in stolen["details"]
    assert stolen["verdict"] == "STOLEN" and "ITEM_STOLEN" in stolen["reasons"]

    # Revoking the holder leaves its earlier batch as it was; it changes no status any more.
    cli.json("accredit", "revoke-holder", "holder")
    assert cli.json("check", rows[0]["uri"], "--json")["genuine"] is True
    refused = cli("status", "item", str(out), "A1", "stolen", expect=1)
    assert "RightsHolderIsRevoked" in refused.stderr


def test_forged_and_tampered_tags_are_potential_suspects(
    cli: Cli, chain: Chain, tmp_path: Path
) -> None:
    cli("accredit", "holder", "holder", "--name", "Acme")
    cli("accredit", "bind-gtin", "09506000134352", "holder")
    cli("signer", "add", "signer")
    out = tmp_path / "out"
    cli(
        "enroll",
        str(_csv(tmp_path / "s.csv", ["S1", "S2"])),
        "--gtin",
        "09506000134352",
        "--lot",
        "L",
        "--out",
        str(out),
        "--no-qr",
    )
    uri = (out / "tags.csv").read_text().splitlines()[1].rsplit(",", 1)[1]
    swapped = uri.replace("/21/S1", "/21/S2")
    report = cli.json("check", swapped, "--json", expect=3)
    assert report["signature_valid"] is False
    assert any("not a registered signer key" in r for r in report["details"])
    assert report["reasons"][0] == "SIGNER_UNKNOWN"
    other_lot = uri.replace("/10/L/", "/10/M/")
    report = cli.json("check", other_lot, "--json", expect=3)
    assert report["batch_registered"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "https://x/01/09506000134353/10/L/21/S"], "check digit"),
        (["check", "not a url"], "not an http(s) URL"),
        (["check", "https://x/01/09506000134352/10/L/21/S?sig=abc"], "sig decodes to"),
        (["status", "batch", "09506000134352", "L", "lost"], "not one of"),
        (["accredit", "holder", "0x1234", "--name", "A"], "not an Ethereum address"),
        (["keys", "new", "../evil"], "key name"),
    ],
)
def test_bad_input_exits_2_with_a_message(cli: Cli, args: list[str], message: str) -> None:
    proc = cli(*args, expect=2)
    assert message in proc.stderr


def test_bad_batch_files_write_nothing(cli: Cli, chain: Chain, tmp_path: Path) -> None:
    cli("accredit", "holder", "holder", "--name", "Acme")
    cli("accredit", "bind-gtin", "09506000134352", "holder")
    cli("signer", "add", "signer")
    out = tmp_path / "out"
    dup = cli(
        "enroll",
        str(_csv(tmp_path / "d.csv", ["A", "B", "A"])),
        "--gtin",
        "09506000134352",
        "--lot",
        "L",
        "--out",
        str(out),
        expect=2,
    )
    assert "'A' appears twice" in dup.stderr
    bad_gtin = cli(
        "enroll",
        str(_csv(tmp_path / "g.csv", ["A"])),
        "--gtin",
        "12345678901234",
        "--lot",
        "L",
        "--out",
        str(out),
        expect=2,
    )
    assert "12345678901234" in bad_gtin.stderr
    no_col = cli(
        "enroll",
        str(_csv(tmp_path / "h.csv", ["A"], header="sn")),
        "--gtin",
        "09506000134352",
        "--lot",
        "L",
        "--out",
        str(out),
        expect=2,
    )
    assert "no 'serial' column" in no_col.stderr
    missing = cli(
        "enroll",
        str(tmp_path / "nope.csv"),
        "--gtin",
        "09506000134352",
        "--lot",
        "L",
        "--out",
        str(out),
        expect=2,
    )
    assert "cannot read" in missing.stderr
    assert not out.exists()
    assert not chain.registry.get_batch(
        chain.registry.batch_id_of("09506000134352", "L")
    ).registered


def test_wrong_role_and_unknown_signer_are_refused(cli: Cli, chain: Chain, tmp_path: Path) -> None:
    proc = cli("accredit", "holder", "stranger", "--name", "X", "--key", "holder", expect=1)
    assert "AccessControlUnauthorizedAccount" in proc.stderr
    cli("accredit", "holder", "holder", "--name", "Acme")
    cli("accredit", "bind-gtin", "09506000134352", "holder")
    out = tmp_path / "out"
    proc = cli(
        "enroll",
        str(_csv(tmp_path / "s.csv", ["A"])),
        "--gtin",
        "09506000134352",
        "--lot",
        "L",
        "--out",
        str(out),
        expect=1,
    )
    assert "is not a registered key" in proc.stderr
    proc = cli("signer", "add", "signer", "--key", "stranger", expect=1)
    assert "AccessControlUnauthorizedAccount" in proc.stderr
    assert not out.exists()


def test_wrong_password_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    cli.env["BORDERLEDGER_KEYSTORE_PASSWORD"] = "wrong"
    proc = cli("signer", "add", "signer", expect=1)
    assert "wrong password" in proc.stderr


def test_keystores_hold_no_plain_private_key(cli: Cli, tmp_path: Path) -> None:
    created = cli.json("keys", "new", "fresh")
    text = Path(str(created["keystore"])).read_text()
    assert json.loads(text)["crypto"]["kdf"] == "scrypt"
    assert dev_private_key(0).hex() not in (tmp_path / "home" / "keys" / "admin.json").read_text()
    assert oct(Path(str(created["keystore"])).stat().st_mode & 0o777) == "0o600"
    listed = cli.json("keys", "list")
    assert set(listed["keys"]) >= {"admin", "holder", "signer", "fresh"}  # type: ignore[arg-type]
