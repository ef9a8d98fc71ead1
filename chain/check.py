"""Checking one tag against the chain, as anyone holding the tag can.

The registry's `checkTag` view gathers the evidence (signature recovered on chain, key
status, membership proof, statuses); when the batch's files are at hand they give the salt and
proof that show the item is in the batch. The verdict engine (`ledger.verdicts`) names and
weighs it as the gateway and the offline verifier do: the same verdict and reason codes, and
a line of text per reason for people.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chain.contract import RegistryClient
from ledger.digital_link import DigitalLink, parse_digital_link
from ledger.errors import InvalidBatchFile
from ledger.merkle import MerkleTree, leaf_hash
from ledger.models import ZERO_ADDRESS, Status, TagCheck
from ledger.tags import TagDomain, recover_signer, tag_digest
from ledger.verdicts import DESCRIPTIONS, Reason, Verdict, decide, signer_reason, status_reason


@dataclass
class TagReport:
    """What the chain says about one tag. `genuine` is the single answer (verdict GENUINE);
    `reasons` are the verdict's reason codes and `details` say each in words."""

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
    verdict: str = ""
    reasons: list[str] = field(default_factory=list)  # reason codes (ledger.verdicts.Reason)
    details: list[str] = field(default_factory=list)  # the same reasons, in words
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


def check_tag_uri(
    registry: RegistryClient,
    uri: str,
    batch_dir: Path | None = None,
    *,
    item_proof: tuple[bytes, list[bytes]] | None = None,
) -> TagReport:
    """Judge a tag URI on chain; raises InvalidDigitalLink for a malformed URI.

    Membership is checked with the item's salt and Merkle proof, found in the enrollment
    output `batch_dir` or given as `item_proof`; without either it is not checked
    (MEMBERSHIP_NOT_CHECKED), as offline."""
    link = parse_digital_link(uri)
    salt: bytes | None = None
    proof: list[bytes] = []
    proof_found: bool | None = None
    if item_proof is not None:
        (salt, proof), proof_found = item_proof, True
    elif batch_dir is not None:
        found = find_item_proof(batch_dir, link.gtin, link.serial)
        proof_found = found is not None
        if found:
            salt, proof = found
    check = registry.check_tag(link.gtin, link.serial, link.lot, link.signature, salt, proof)
    status = check.effective_status
    reasons: list[tuple[Reason, str]] = []

    def say(reason: Reason, detail: str | None = None, *, first: bool = False) -> None:
        entry = (reason, detail or DESCRIPTIONS[reason])
        if first:
            reasons.insert(0, entry)
        else:
            reasons.append(entry)

    if not check.batch_registered:
        # bound on its own or under a bound company prefix: a known brand's product
        known = registry.resolve_gtin_holder(link.gtin)[0] != ZERO_ADDRESS
        say(
            Reason.BATCH_UNKNOWN if known else Reason.GTIN_UNKNOWN,
            f"no batch of GTIN {link.gtin} lot {link.lot!r} is registered",
        )
    else:
        if proof_found is None:
            say(Reason.MEMBERSHIP_NOT_CHECKED)
        elif not proof_found:
            where = f"the batch files at {batch_dir}"
            say(Reason.SERIAL_UNKNOWN, f"serial {link.serial!r} is not in {where}", first=True)
        elif check.in_batch:
            say(Reason.SERIAL_IN_BATCH)
        else:
            say(Reason.SERIAL_UNKNOWN, "the Merkle proof does not verify on chain", first=True)
        if link.signature is None:
            say(Reason.SIGNATURE_MISSING, "the tag carries no signature")
        elif check.signer == ZERO_ADDRESS:
            say(Reason.SIGNATURE_INVALID, "the signature is malformed or malleable", first=True)
        else:
            reason, detail = _signer(registry, link, check)
            say(reason, detail, first=reason != Reason.SIGNATURE_VALID)
        flag = status_reason(status, check.item_status == Status.ACTIVE)
        if flag is not None:
            level = "" if check.item_status != Status.ACTIVE else " (its whole batch)"
            say(flag, f"the item is {status.name.lower()}{level}")
    verdict = decide([r for r, _ in reasons], status)
    return TagReport(
        gtin=link.gtin,
        lot=link.lot,
        serial=link.serial,
        batch_id=check.batch_id,
        batch_registered=check.batch_registered,
        holder=check.holder if check.batch_registered else None,
        signer=check.signer if check.signer != ZERO_ADDRESS else None,
        signature_valid=check.signature_valid,
        in_batch=check.in_batch if proof_found is not None else None,
        status=status.name.lower(),
        genuine=verdict == Verdict.GENUINE,
        verdict=verdict.value,
        reasons=[r.value for r, _ in reasons],
        details=[d for _, d in reasons],
        registry=registry.address,
        chain_id=registry.chain_id,
    )


def _signer(registry: RegistryClient, link: DigitalLink, check: TagCheck) -> tuple[Reason, str]:
    """The signature's reason: the registry's `signatureValid`, and when it says no, why
    (the verdict engine's signer rule on the key's and the batch's records)."""
    signer = check.signer
    domain = TagDomain(registry.chain_id, registry.address)
    assert link.signature is not None
    digest = tag_digest(domain.separator, link.gtin, link.serial, link.lot)
    local = recover_signer(digest, link.signature)
    if local != signer:
        return (
            Reason.SIGNATURE_INVALID,
            f"the chain recovered {signer} but this client recovered {local}",
        )
    if check.signature_valid:
        return Reason.SIGNATURE_VALID, f"signed by {signer}, a key of the batch's holder"
    key = registry.signer_key(signer)
    batch = registry.get_batch(check.batch_id)
    revoked = registry.rights_holder(check.holder).revoked_at
    reason = signer_reason(
        key if key.registered else None, check.holder, batch.registered_at, revoked
    )
    if reason == Reason.SIGNER_UNKNOWN:
        return reason, f"the tag is signed by {signer}, which is not a registered signer key"
    if reason == Reason.SIGNER_FOREIGN:
        return reason, (
            f"the tag is signed by {signer}, a key of {key.holder}, "
            f"not of the batch's holder {check.holder}"
        )
    if reason == Reason.SIGNER_REVOKED:
        return reason, (
            f"the tag is signed by {signer}, which was revoked at {key.revoked_at} and not "
            "active when the batch was registered"
        )
    return Reason.SIGNATURE_INVALID, f"the registry does not accept {signer} for this batch"
