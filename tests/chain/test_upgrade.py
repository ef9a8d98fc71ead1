"""Upgrading a deployed registry (issue 12): from a chain holding batches of the first
registry (contracts/legacy/BorderLedgerRegistryV1.sol, the contract before the rights
changes), `borderledger deploy --upgrade` deploys the new registry and keeps the old one in
the deployment file, and `borderledger check` still verifies the old batches' tags there,
with their original block and time; new batches go to the new registry."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from chain.contract import RegistryClient, deploy
from chain.enroll import enroll_batch
from chain.keystore import create_keystore
from chain.node import dev_private_key
from chain.tx import TransactionSender
from ledger.batch import BatchInput
from ledger.models import Status
from tests.chain.test_cli import PASSWORD, Cli
from tests.conftest import Chain

GTIN = "09506000134352"


def test_old_registry_batches_verify_after_an_upgrade(chain: Chain, tmp_path: Path) -> None:
    w3 = chain.registry.w3
    admin = TransactionSender(w3, chain.admin, chain.registry.decode_revert, backoff=0.05)
    old_address, _ = deploy(admin, "BorderLedgerRegistryV1", chain.admin.address)
    old = RegistryClient(w3, old_address, admin)
    old.accredit_rights_holder(chain.holder.address, "Acme", "TMK-1")  # V1: GTINs claimed
    as_holder = chain.client(chain.holder)
    as_holder = RegistryClient(w3, old_address, as_holder.sender)
    signer = chain.tag_signer()
    as_holder.add_signer(signer.address)
    batch = BatchInput.create(GTIN, "OLD-1", ["A1", "A2"], "281231")
    result = enroll_batch(
        batch, as_holder, chain.signer_key, tmp_path / "old", batch_secret=b"o" * 32, qr=False
    )
    registered = old.get_batch(result.batch_id)

    home = tmp_path / "home"
    for name, index in (("admin", 0), ("holder", 1), ("signer", 5)):
        create_keystore(home / "keys", name, PASSWORD, dev_private_key(index), scrypt_n=1024)
    deployment_file = home / "deployment.json"
    deployment_file.write_text(
        json.dumps(
            {
                "rpc_url": chain.node.url,
                "chain_id": chain.registry.chain_id,
                "registry": old_address,
                "admin": chain.admin.address,
            }
        )
    )
    cli = Cli(home, chain.node.url)  # no BORDERLEDGER_REGISTRY: the deployment file decides
    with (tmp_path / "old" / "tags.csv").open(newline="") as handle:
        old_uri = next(csv.DictReader(handle))["uri"]
    assert cli.json("check", old_uri, "--json")["genuine"] is True

    upgraded = cli.json("deploy", "--upgrade")
    assert upgraded["registry"] != old_address
    (previous,) = upgraded["previous"]  # type: ignore[misc]
    assert previous["registry"] == old_address
    assert previous["retired_at_block"] >= 1
    assert json.loads(deployment_file.read_text()) == upgraded

    # the old batch still verifies, on the registry it was registered on, unchanged
    report = cli.json("check", old_uri, "--batch-dir", str(tmp_path / "old"), "--json")
    assert report["genuine"] is True and report["in_batch"] is True
    assert report["registry"] == old_address
    assert old.get_batch(result.batch_id) == registered  # original block time kept
    # its holder recalls it with the CLI: on the registry holding it, not the new one
    recalled = cli.json("status", "batch", GTIN, "OLD-1", "recalled", "--key", "holder")
    assert old.get_batch(result.batch_id).status == Status.RECALLED
    receipt = w3.eth.get_transaction_receipt(recalled["tx_hash"])  # type: ignore[arg-type]
    assert receipt["to"] == old_address
    report = cli.json("check", old_uri, "--json", expect=3)
    assert report["registry"] == old_address and report["genuine"] is False

    # new batches go to the new registry, under its rules (the GTIN bound first)
    cli.json("accredit", "holder", "holder", "--name", "Acme", "--recordation", "TMK-1")
    cli.json("accredit", "bind-gtin", GTIN, "holder")
    cli.json("signer", "add", "signer")
    (tmp_path / "new.csv").write_text("serial\nB1\n")
    summary = cli.json(
        "enroll", str(tmp_path / "new.csv"), "--gtin", GTIN, "--lot", "NEW-1",
        "--out", str(tmp_path / "new"),
    )  # fmt: skip
    with (tmp_path / "new" / "tags.csv").open(newline="") as handle:
        new_uri = next(csv.DictReader(handle))["uri"]
    report = cli.json("check", new_uri, "--json")
    assert report["genuine"] is True and report["registry"] == upgraded["registry"]
    assert summary["count"] == 1
    # a tag of neither registry is still unknown
    unknown = new_uri.replace("/10/NEW-1/", "/10/NOPE/")
    assert cli.json("check", unknown, "--json", expect=3)["batch_registered"] is False


def test_upgrade_needs_a_deployment(chain: Chain, tmp_path: Path) -> None:
    home = tmp_path / "home"
    create_keystore(home / "keys", "admin", PASSWORD, dev_private_key(0), scrypt_n=1024)
    proc = Cli(home, chain.node.url)("deploy", "--upgrade", expect=2)
    assert "names no registry" in proc.stderr
