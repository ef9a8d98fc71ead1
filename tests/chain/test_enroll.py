"""Enrollment end to end on both nodes: outputs, idempotency, crash recovery, bad input."""

from __future__ import annotations

import csv
import json
import secrets
import threading
from pathlib import Path

import pytest

from chain.check import check_tag_uri, find_item_proof
from chain.enroll import enroll_batch, qr_file_stem
from chain.node import rpc_request
from ledger.batch import BatchInput, item_key_of
from ledger.errors import BatchConflict, InvalidInput, PermissionDenied
from ledger.merkle import MerkleTree, leaf_hash, verify_proof
from ledger.models import Status
from scanner.decode import decode_file
from tests.conftest import Chain

GTIN = "09506000134352"


def _ready(chain: Chain):
    chain.registry.accredit_rights_holder(chain.holder.address, "Acme", "TMK-1")
    chain.registry.bind_gtin(GTIN, chain.holder.address)
    holder = chain.client(chain.holder)
    holder.add_signer(chain.tag_signer().address)
    return holder


def _batch(n: int = 40, lot: str = "L1") -> BatchInput:
    return BatchInput.create(
        GTIN, lot, [f"SN{i:05d}/{chr(65 + i % 26)}" for i in range(n)], "281231"
    )


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "tags.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _events(chain: Chain, batch_id: bytes) -> int:
    event = chain.registry.contract.events.BatchRegistered
    return len(event.get_logs(from_block=0, argument_filters={"batchId": batch_id}))


def test_enrollment_writes_tags_that_verify_on_chain(chain: Chain, tmp_path: Path) -> None:
    holder = _ready(chain)
    batch = _batch(30)
    out = tmp_path / "out"
    result = enroll_batch(
        batch, holder, chain.signer_key, out, batch_secret=b"k" * 32, qr=True, workers=2
    )

    on_chain = chain.registry.get_batch(result.batch_id)
    assert on_chain.root == result.root
    assert on_chain.item_count == 30
    assert on_chain.holder == chain.holder.address
    tree = MerkleTree.from_bytes((out / "tree.bin").read_bytes())
    assert "0x" + tree.root.hex() == result.root
    rows = _rows(out)
    assert [r["serial"] for r in rows] == batch.serials
    for row in rows[:8]:
        leaf = leaf_hash(row["gtin"], row["serial"], bytes.fromhex(row["salt"]))
        assert verify_proof(tree.root, leaf, tree.proof(leaf))
        report = check_tag_uri(chain.registry, row["uri"], out)
        assert report.genuine, report.reasons
        assert report.in_batch is True
        assert report.signer == chain.tag_signer().address
    # A printed QR code reads back (real zxing-cpp) as exactly the tag in tags.csv.
    row = rows[3]
    decoded = decode_file(out / "qr" / f"{qr_file_stem(row['serial'])}.png")
    assert [d.text for d in decoded] == [row["uri"]]
    assert (
        (out / "qr" / f"{qr_file_stem(row['serial'])}.svg").read_bytes().lstrip().startswith(b"<")
    )
    summary = json.loads((out / "batch.json").read_text())
    assert summary["tx_hash"] == result.tx_hash
    assert summary["metadata_hash"] == result.metadata_hash
    registration = chain.registry.batch_registration(result.batch_id)
    assert registration is not None
    assert registration["metadata_hash"] == result.metadata_hash
    assert registration["block_number"] == result.block_number
    assert not (out / ".work").exists()


def test_enrolling_twice_registers_once(chain: Chain, tmp_path: Path) -> None:
    holder = _ready(chain)
    batch = _batch(12)
    first = enroll_batch(
        batch, holder, chain.signer_key, tmp_path / "a", batch_secret=b"s" * 32, qr=False
    )
    again = enroll_batch(
        batch, holder, chain.signer_key, tmp_path / "a", batch_secret=b"s" * 32, qr=False
    )
    elsewhere = enroll_batch(
        batch, holder, chain.signer_key, tmp_path / "b", batch_secret=b"s" * 32, qr=False
    )
    assert again.already_registered and elsewhere.already_registered
    assert first.tx_hash == again.tx_hash == elsewhere.tx_hash
    assert first.root == elsewhere.root
    assert _events(chain, batch.batch_id) == 1
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")


def test_same_lot_with_other_serials_is_a_conflict(chain: Chain, tmp_path: Path) -> None:
    holder = _ready(chain)
    enroll_batch(
        _batch(5), holder, chain.signer_key, tmp_path / "a", batch_secret=b"s" * 32, qr=False
    )
    with pytest.raises(BatchConflict, match="registered with root"):
        enroll_batch(
            _batch(6), holder, chain.signer_key, tmp_path / "b", batch_secret=b"s" * 32, qr=False
        )
    assert not (tmp_path / "b" / "tags.csv").exists()


def test_enrollment_needs_an_accredited_holder_and_its_own_active_key(
    chain: Chain, tmp_path: Path
) -> None:
    stranger = chain.client(chain.stranger)
    with pytest.raises(PermissionDenied, match="not an accredited rights holder"):
        enroll_batch(_batch(), stranger, chain.signer_key, tmp_path / "x", batch_secret=b"s" * 32)
    holder = _ready(chain)
    with pytest.raises(PermissionDenied, match="not a registered key"):
        enroll_batch(
            _batch(), holder, secrets.token_bytes(32), tmp_path / "x", batch_secret=b"s" * 32
        )
    holder.revoke_signer(chain.tag_signer().address)
    with pytest.raises(PermissionDenied, match="revoked"):
        enroll_batch(_batch(), holder, chain.signer_key, tmp_path / "x", batch_secret=b"s" * 32)
    assert not (tmp_path / "x").exists()
    assert not chain.registry.get_batch(_batch().batch_id).registered


def test_killed_after_sending_resumes_the_same_transaction(chain: Chain, tmp_path: Path) -> None:
    """The run sends its transaction and dies before the receipt; the node then loses it from
    its mempool. The re-run re-broadcasts the journalled bytes: one registration, same hash."""
    holder = _ready(chain)
    batch = _batch(25)
    out = tmp_path / "out"
    url = chain.node.url
    rpc_request(url, "evm_setAutomine", [False])
    outcome: dict[str, object] = {}

    def first_run() -> None:
        try:
            enroll_batch(batch, holder, chain.signer_key, out, batch_secret=b"j" * 32, qr=False)
        except Exception as exc:  # the "kill": the receipt wait times out
            outcome["error"] = exc

    holder.sender._receipt_timeout = 3  # type: ignore[union-attr]
    thread = threading.Thread(target=first_run)
    thread.start()
    thread.join(30)
    journal = json.loads((out / ".register-tx.json").read_text())
    assert "error" in outcome
    assert not (out / "tags.csv").exists(), "outputs appear only once the root is on chain"
    drop = "anvil_dropAllTransactions" if chain.node.kind == "anvil" else "hardhat_dropTransaction"
    rpc_request(url, drop, [] if chain.node.kind == "anvil" else [journal["tx_hash"]])
    assert rpc_request(url, "eth_getTransactionByHash", [journal["tx_hash"]]) is None
    rpc_request(url, "evm_setAutomine", [True])

    holder.sender._receipt_timeout = 60  # type: ignore[union-attr]
    result = enroll_batch(batch, holder, chain.signer_key, out, batch_secret=b"j" * 32, qr=False)
    assert result.tx_hash == journal["tx_hash"]
    assert _events(chain, batch.batch_id) == 1
    assert not (out / ".register-tx.json").exists()
    assert len(_rows(out)) == 25


def test_killed_with_transaction_pending_completes_without_a_second_one(
    chain: Chain, tmp_path: Path
) -> None:
    holder = _ready(chain)
    batch = _batch(8)
    out = tmp_path / "out"
    rpc_request(chain.node.url, "evm_setAutomine", [False])
    holder.sender._receipt_timeout = 2  # type: ignore[union-attr]
    with pytest.raises(TimeoutError):
        enroll_batch(batch, holder, chain.signer_key, out, batch_secret=b"p" * 32, qr=False)
    journal = json.loads((out / ".register-tx.json").read_text())
    rpc_request(chain.node.url, "evm_setAutomine", [True])
    rpc_request(chain.node.url, "evm_mine")
    result = enroll_batch(batch, holder, chain.signer_key, out, batch_secret=b"p" * 32, qr=False)
    assert result.tx_hash == journal["tx_hash"]
    assert result.already_registered
    assert _events(chain, batch.batch_id) == 1


def test_status_changes_show_in_checks(chain: Chain, tmp_path: Path) -> None:
    holder = _ready(chain)
    out = tmp_path / "out"
    result = enroll_batch(
        _batch(10), holder, chain.signer_key, out, batch_secret=b"t" * 32, qr=False
    )
    row = _rows(out)[2]
    found = find_item_proof(out, row["gtin"], row["serial"])
    assert found is not None
    salt, proof = found
    holder.set_item_status(row["gtin"], row["lot"], row["serial"], salt, proof, Status.STOLEN)
    stolen = check_tag_uri(chain.registry, row["uri"], out)
    assert not stolen.genuine and stolen.status == "stolen"
    # The status needs no salt: an officer holding only the tag sees it too.
    without_files = check_tag_uri(chain.registry, row["uri"])
    assert not without_files.genuine and without_files.status == "stolen"
    assert (
        chain.registry.item_status(result.batch_id, item_key_of(row["gtin"], row["serial"]))
        == Status.STOLEN
    )
    other = check_tag_uri(chain.registry, _rows(out)[3]["uri"], out)
    assert other.genuine
    holder.set_batch_status(result.batch_id, Status.RECALLED)
    recalled = check_tag_uri(chain.registry, _rows(out)[3]["uri"], out)
    assert not recalled.genuine and recalled.status == "recalled"


def test_invalid_batches_are_refused_before_anything_is_computed() -> None:
    with pytest.raises(InvalidInput, match="09506000134353"):
        BatchInput.create("09506000134353", "L1", ["A"])
    with pytest.raises(InvalidInput, match=r"appears twice.*#1 and #3"):
        BatchInput.create(GTIN, "L1", ["A", "B", "A"])
    with pytest.raises(InvalidInput, match=r"serial #2.*CSET 82"):
        BatchInput.create(GTIN, "L1", ["A", "B C"])
    with pytest.raises(InvalidInput, match="at most 20"):
        BatchInput.create(GTIN, "L1", ["X" * 21])
    with pytest.raises(InvalidInput, match="no serials"):
        BatchInput.create(GTIN, "L1", [])
    with pytest.raises(InvalidInput, match="YYMMDD"):
        BatchInput.create(GTIN, "L1", ["A"], "281331")
