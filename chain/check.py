"""Checking one tag against the chain, as anyone holding the tag can.

The registry's `checkTag` view does the judging (signature recovered on chain, key status,
membership proof, statuses); this module adds the reasons an officer needs to read a failure,
and, when the batch's files are at hand, the salt and proof that show the item is in the batch.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chain.contract import RegistryClient
from ledger.digital_link import parse_digital_link
from ledger.errors import InvalidBatchFile
from ledger.merkle import MerkleTree, leaf_hash
from ledger.models import ZERO_ADDRESS, Status
from ledger.tags import TagDomain, recover_signer, tag_digest


@dataclass
class TagReport:
    """What the chain says about one tag. `genuine` is the single answer; `reasons` say why not."""

    gtin: str
    lot: str
    serial: str
    batch_id: str
    batch_registered: bool
    holder: str | None
    signer: str | None
    signature_valid: bool
    in_batch: bool | None
    status: str
    genuine: bool
    reasons: list[str] = field(default_factory=list)
    registry: str = ""
    chain_id: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def find_item_proof(batch_dir: Path, gtin: str, serial: str) -> tuple[bytes, list[bytes]] | None:
    """(salt, proof) of an item from an enrollment's output directory, or None if absent."""
    tags_csv, tree_bin = batch_dir / "tags.csv", batch_dir / "tree.bin"
    if not tags_csv.exists() or not tree_bin.exists():
        raise InvalidBatchFile(
            f"{batch_dir} is not an enrollment output (needs tags.csv and tree.bin)"
        )
    with tags_csv.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["serial"] == serial and row["gtin"] == gtin:
                salt = bytes.fromhex(row["salt"])
                break
        else:
            return None
    tree = MerkleTree.from_bytes(tree_bin.read_bytes())
    try:
        return salt, tree.proof(leaf_hash(gtin, serial, salt))
    except KeyError:
        return None


def check_tag_uri(registry: RegistryClient, uri: str, batch_dir: Path | None = None) -> TagReport:
    """Judge a tag URI on chain; raises InvalidDigitalLink for a malformed URI."""
    link = parse_digital_link(uri)
    salt: bytes | None = None
    proof: list[bytes] = []
    found_in_files = None
    if batch_dir is not None:
        found = find_item_proof(batch_dir, link.gtin, link.serial)
        found_in_files = found is not None
        if found:
            salt, proof = found
    check = registry.check_tag(link.gtin, link.serial, link.lot, link.signature, salt, proof)
    reasons: list[str] = []
    if not check.batch_registered:
        reasons.append(f"no batch of GTIN {link.gtin} lot {link.lot!r} is registered")
    if link.signature is None:
        reasons.append("the tag carries no signature")
    elif check.signer == ZERO_ADDRESS:
        reasons.append("the signature is malformed or malleable")
    elif check.batch_registered and not check.signature_valid:
        reasons.append(_signer_problem(registry, check.signer, check.holder))
    if link.signature is not None and check.signer != ZERO_ADDRESS:
        domain = TagDomain(registry.chain_id, registry.address)
        local = recover_signer(
            tag_digest(domain.separator, link.gtin, link.serial, link.lot), link.signature
        )
        if local != check.signer:
            reasons.append(f"the chain recovered {check.signer} but this client recovered {local}")
    if found_in_files is False:
        reasons.append(f"serial {link.serial!r} is not in the batch files at {batch_dir}")
    elif found_in_files and not check.in_batch:
        reasons.append("the Merkle proof from the batch files does not verify on chain")
    status = check.effective_status
    if status != Status.ACTIVE:
        reasons.append(f"the item is {status.name.lower()}")
    return TagReport(
        gtin=link.gtin,
        lot=link.lot,
        serial=link.serial,
        batch_id=check.batch_id,
        batch_registered=check.batch_registered,
        holder=check.holder if check.batch_registered else None,
        signer=check.signer if check.signer != ZERO_ADDRESS else None,
        signature_valid=check.signature_valid,
        in_batch=check.in_batch if found_in_files is not None else None,
        status=status.name.lower(),
        genuine=not reasons,
        reasons=reasons,
        registry=registry.address,
        chain_id=registry.chain_id,
    )


def _signer_problem(registry: RegistryClient, signer: str, holder: str) -> str:
    key = registry.signer_key(signer)
    if not key.registered:
        return f"the tag is signed by {signer}, which is not a registered signer key"
    if key.holder != holder:
        return f"the tag is signed by {signer}, a key of {key.holder}, not of the batch's holder {holder}"
    return f"the tag is signed by {signer}, which was revoked at {key.revoked_at} and not active when the batch was registered"
