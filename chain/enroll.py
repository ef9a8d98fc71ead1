"""Enrollment: a batch of serials in, signed tags out, its Merkle root on chain.

Output directory of one batch:

    tags.csv        gtin,lot,serial,salt,uri — one signed GS1 Digital Link per item
    tree.bin        every Merkle tree node (32 bytes each, npm library layout): proofs later
    metadata.json   the off-chain metadata whose keccak256 is registered with the root
    qr/             one PNG and one SVG QR code per item (optional)
    batch.json      the summary: batch id, root, count, transaction, block, registry

Everything is computed into temporary files first and renamed into place only after the root
is on chain, so a failed run leaves no half-written output. Results are deterministic (salts
are HMACs of the batch secret, signatures are RFC 6979), so a re-run produces the same root:
enrolling a registered batch again registers nothing and reports the original transaction,
and a run killed after sending its transaction re-broadcasts the same signed bytes from its
journal instead of sending a second one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chain.contract import RIGHTS_HOLDER_ROLE, RegistryClient
from chain.tx import write_atomic
from ledger.batch import BatchInput
from ledger.canonical import canonical_json
from ledger.errors import BatchConflict, ChainError, InvalidInput, PermissionDenied, ReceiptTimeout
from ledger.hashing import keccak256
from ledger.issuance import TAGS_CSV_HEADER, TaggingJob, tag_batch
from ledger.merkle import MerkleTree
from ledger.qr import render_png, render_svg
from ledger.tags import TagDomain, TagSigner

Progress = Callable[[str, int, int], None]
"""progress(phase, done, total): called as work advances, for a progress bar."""


def derive_batch_secret(holder_key: bytes, batch_id: bytes) -> bytes:
    """The batch secret, derived from the holder's account key so that no extra secret has to
    be stored and a re-run finds the same salts: HMAC-SHA256(key, "BorderLedger batch" || id)."""
    return hmac.new(holder_key, b"BorderLedger batch" + batch_id, hashlib.sha256).digest()


@dataclass
class EnrollmentResult:
    batch_id: str
    gtin: str
    lot: str
    root: str
    item_count: int
    metadata_hash: str
    tx_hash: str
    block_number: int
    registry: str
    chain_id: int
    signer: str
    holder: str
    out_dir: str
    already_registered: bool = False
    gas_used: int | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def batch_metadata(batch: BatchInput, signer: str, root: bytes) -> bytes:
    """RFC 8785 canonical JSON of the batch's off-chain metadata (its keccak256 is anchored).

    Every field is ASCII (digits, GS1 CSET 82, hex) or a small integer, so these are the same
    bytes the earlier encoder (`json.dumps`, sorted keys, no spaces) wrote for every batch:
    the format stays `batch-metadata/1` and anchored hashes stay valid."""
    meta = {
        "schema": "borderledger/batch-metadata/1",
        "gtin": batch.gtin,
        "lot": batch.lot,
        "expiry": batch.expiry,
        "itemCount": len(batch),
        "root": "0x" + root.hex(),
        "signer": signer,
    }
    return canonical_json(meta)


def _check_parties(registry: RegistryClient, holder: str, signer: str) -> None:
    if not registry.has_role(RIGHTS_HOLDER_ROLE, holder):
        raise PermissionDenied(
            f"account {holder} is not an accredited rights holder on registry {registry.address}"
        )
    key = registry.signer_key(signer)
    if not key.registered:
        raise PermissionDenied(
            f"signer {signer} is not a registered key: add it with `borderledger signer add`"
        )
    if key.holder != holder:
        raise PermissionDenied(f"signer {signer} belongs to {key.holder}, not to {holder}")
    if key.revoked_at:
        raise PermissionDenied(
            f"signer {signer} was revoked at {key.revoked_at}; sign with an active key"
        )


def enroll_batch(
    batch: BatchInput,
    registry: RegistryClient,
    signer_key: bytes,
    out_dir: Path,
    *,
    batch_secret: bytes | None = None,
    holder_key: bytes | None = None,
    host: str = "id.borderledger.example",
    qr: bool = True,
    workers: int | None = None,
    progress: Progress | None = None,
) -> EnrollmentResult:
    """Enroll `batch` from the registry client's sender (the rights holder); see module doc."""
    if registry.sender is None:
        raise InvalidInput("enrollment needs a registry client with a sender (the rights holder)")
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    holder = registry.sender.address
    domain = TagDomain(registry.chain_id, registry.address)
    signer = TagSigner(signer_key, domain)
    _check_parties(registry, holder, signer.address)
    batch_id = batch.batch_id
    if batch_secret is None:
        if holder_key is None:
            raise InvalidInput("give a batch secret or the holder key to derive it from")
        batch_secret = derive_batch_secret(holder_key, batch_id)
    on_chain = registry.get_batch(batch_id)
    if on_chain.registered and on_chain.holder != holder:
        raise BatchConflict(
            f"batch {batch.gtin}/{batch.lot} (0x{batch_id.hex()}) is registered by {on_chain.holder}, not {holder}"
        )
    summary_file = out_dir / "batch.json"
    if on_chain.registered and summary_file.exists():
        previous = json.loads(summary_file.read_text())
        if previous.get("root") == on_chain.root and previous.get("item_count") == len(batch):
            previous["already_registered"] = True
            return EnrollmentResult(
                **{k: v for k, v in previous.items() if k in EnrollmentResult.__dataclass_fields__}
            )
    timings["checks"] = time.perf_counter() - clock

    work = out_dir / ".work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    job = TaggingJob(batch.gtin, batch.lot, batch_secret, signer_key, domain.separator, host)

    clock = time.perf_counter()
    leaves = bytearray()
    done = 0
    with (work / "tags.csv").open("w", encoding="utf-8", newline="") as tags_csv:
        tags_csv.write(TAGS_CSV_HEADER)

        def advance(items: int) -> None:
            nonlocal done
            done += items
            if progress:
                progress("sign", done, len(batch))

        for chunk in tag_batch(job, batch.serials, workers, advance):
            leaves += chunk.leaves
            tags_csv.write(chunk.csv_lines)
    timings["sign_and_leaves"] = time.perf_counter() - clock

    clock = time.perf_counter()
    tree = MerkleTree.from_leaves([bytes(leaves[i : i + 32]) for i in range(0, len(leaves), 32)])
    (work / "tree.bin").write_bytes(tree.nodes)
    metadata = batch_metadata(batch, signer.address, tree.root)
    (work / "metadata.json").write_bytes(metadata)
    metadata_hash = keccak256(metadata)
    timings["tree"] = time.perf_counter() - clock

    if on_chain.registered and on_chain.root != "0x" + tree.root.hex():
        shutil.rmtree(work)
        raise BatchConflict(
            f"batch {batch.gtin}/{batch.lot} is registered with root {on_chain.root}; these serials give"
            f" 0x{tree.root.hex()} (different serials, or a different batch secret)"
        )

    if qr:
        clock = time.perf_counter()
        _write_qr_codes(work / "tags.csv", work / "qr", len(batch), progress)
        timings["qr"] = time.perf_counter() - clock

    clock = time.perf_counter()
    journal = out_dir / ".register-tx.json"
    if on_chain.registered:
        registration = registry.batch_registration(batch_id)
        if registration is None:
            raise ChainError(
                f"batch 0x{batch_id.hex()} is registered but its BatchRegistered event is not found"
            )
        tx_hash, block, gas_used, already = (
            registration["tx_hash"],
            registration["block_number"],
            None,
            True,
        )
    else:
        try:
            receipt = registry.register_batch(
                batch.gtin, batch.lot, tree.root, len(batch), metadata_hash, journal=journal
            )
        except ReceiptTimeout:
            raise  # still pending, perhaps: keep the journal so a re-run waits for the same tx
        except ChainError:
            # The node refused the journalled transaction (its nonce was used by another one,
            # or it landed from another run): trust the chain, not the journal.
            journal.unlink(missing_ok=True)
            now = registry.get_batch(batch_id)
            if not now.registered or now.root != "0x" + tree.root.hex():
                raise
            receipt = None
        if receipt is None:
            registration = registry.batch_registration(batch_id) or {}
            tx_hash, block, gas_used = (
                registration.get("tx_hash", ""),
                registration.get("block_number", 0),
                None,
            )
        else:
            tx_hash, block, gas_used = receipt.tx_hash, receipt.block_number, receipt.gas_used
        already = False
    timings["chain"] = time.perf_counter() - clock

    result = EnrollmentResult(
        batch_id="0x" + batch_id.hex(),
        gtin=batch.gtin,
        lot=batch.lot,
        root="0x" + tree.root.hex(),
        item_count=len(batch),
        metadata_hash="0x" + metadata_hash.hex(),
        tx_hash=tx_hash,
        block_number=block,
        registry=registry.address,
        chain_id=domain.chain_id,
        signer=signer.address,
        holder=holder,
        out_dir=str(out_dir),
        already_registered=already,
        gas_used=gas_used,
        timings={k: round(v, 4) for k, v in timings.items()},
    )
    for name in ("tags.csv", "tree.bin", "metadata.json", "qr"):
        target = out_dir / name
        if (work / name).exists():
            if target.is_dir():
                shutil.rmtree(target)
            (work / name).replace(target)
    shutil.rmtree(work)
    write_atomic(summary_file, json.dumps(result.to_json(), indent=2).encode())
    journal.unlink(missing_ok=True)
    return result


def qr_file_stem(serial: str) -> str:
    """File name (without extension) of an item's QR code: the percent-encoded serial."""
    stem = quote(serial, safe="")
    return stem.replace(".", "%2E") if stem.strip(".") == "" else stem


def _write_qr_codes(tags_csv: Path, directory: Path, total: int, progress: Progress | None) -> None:
    import csv

    directory.mkdir()
    with tags_csv.open(newline="", encoding="utf-8") as handle:
        for done, row in enumerate(csv.DictReader(handle), start=1):
            stem = qr_file_stem(row["serial"])
            (directory / f"{stem}.png").write_bytes(render_png(row["uri"]))
            (directory / f"{stem}.svg").write_bytes(render_svg(row["uri"]))
            if progress and (done % 50 == 0 or done == total):
                progress("qr", done, total)
