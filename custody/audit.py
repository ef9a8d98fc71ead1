"""Auditing an item's custody timeline against the chain, trusting nothing the gateway says.

`audit_timeline(timeline, chain)` takes the JSON of `GET /v1/items/{gtin}/{serial}/custody`
and a `ChainView` (the auditor's own RPC connection) and checks:

1. the chain: the auditor's RPC serves the chain id the timeline names, and the registry is
   the one the auditor expects (when given); the anchoring agency is accredited there;
2. every checkpoint (size, root) the timeline relies on is what the agency anchored on chain
   (`checkpointRoot(agency, size)`), and consecutive checkpoints are consistent (RFC 9162
   consistency proofs: nothing deleted or rewritten between them);
3. every log-backed entry: its leaf is recomputed from the shown record and links in the
   entry format version the timeline names (`custody.entries`; the version is inside the
   hashed bytes, so naming another one only makes the entry fail), and its inclusion proof
   leads to its anchored checkpoint's root; an entry not yet covered by a checkpoint is
   reported as pending (a failure with `strict`). An entry withheld from the reader (another
   party's record) shows its leaf hash only: its proof is checked from that hash;
4. the item's chain of entries: each entry's `previous` link about the item must point at an
   entry the timeline shows, so an entry deleted from the middle of the history is noticed;
5. the enrollment: the item's leaf (GTIN, serial, salt) is in the batch's Merkle root, the
   batch id is that of (GTIN, lot), the registry holds that root for the batch, and the
   registration transaction succeeded in the stated block, sent to the registry. After a
   registry upgrade an old batch is on the registry the upgrade replaced: the enrollment
   names it (`registry`), and it must be one the timeline lists under
   `log.previousRegistries` (and, when the auditor pins registries, one of its `previous`);
6. status changes: each stated transaction succeeded in its stated block.

A pure function over the `ChainView` protocol (no web3 here), so it is tested with real
chains through `custody.cli` and reasoned about without one.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from custody import entries
from custody.log import proof_from_hex, verify_consistency, verify_inclusion
from ledger import merkle
from ledger.batch import batch_id_of
from ledger.errors import InvalidInput

ZERO32 = b"\x00" * 32


class ChainView(Protocol):
    """What the auditor asks the chain, through its own RPC connection."""

    def chain_id(self) -> int: ...

    def registry(self) -> str: ...

    def agency_name(self, agency: str, registry: str | None = None) -> str: ...

    def checkpoint_root(self, agency: str, size: int, registry: str | None = None) -> bytes:
        """The root `agency` anchored at `size` on the registry (or the named one)."""
        ...

    def batch_root(self, batch_id: str, registry: str | None = None) -> str | None:
        """The root the registry (or the named one) holds for `batch_id` (None if not
        registered)."""
        ...

    def tx_block(self, tx_hash: str) -> tuple[int, str] | None:
        """(block number, recipient) of a successful transaction, None if absent/failed."""
        ...


@dataclass
class Check:
    subject: str
    ok: bool
    detail: str
    #: "verified" | "failed" | "pending"
    state: str = ""
    #: the log index of the entry this check is about (None: not about one entry); a report
    #: that lists the timeline's entries (the PDF) finds each entry's result by it
    log_index: int | None = None

    def __post_init__(self) -> None:
        if not self.state:
            self.state = "verified" if self.ok else "failed"


@dataclass
class AuditReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(
        self, subject: str, ok: bool, detail: str, state: str = "", log_index: int | None = None
    ) -> None:
        self.checks.append(Check(subject, ok, detail, state, log_index))

    def of_entry(self, log_index: int) -> list[Check]:
        """The checks about the entry at `log_index`: its own proof and, when the item's
        history shows a gap right before it, that finding too."""
        return [c for c in self.checks if c.log_index == log_index]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verified": sum(c.state == "verified" for c in self.checks),
            "failed": sum(c.state == "failed" for c in self.checks),
            "pending": sum(c.state == "pending" for c in self.checks),
            "checks": [
                {"subject": c.subject, "state": c.state, "detail": c.detail} for c in self.checks
            ],
        }


def _hash(text: object) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        return None
    return raw if len(raw) == 32 else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def audit_timeline(
    timeline: Mapping[str, Any],
    chain: ChainView,
    *,
    registry: str | None = None,
    previous: tuple[str, ...] = (),
    strict: bool = False,
) -> AuditReport:
    """Check everything in `timeline` that can be checked against `chain` (module docstring).
    `registry` and `previous`: the registries the auditor trusts (the current one and those
    an upgrade replaced), when it pins them."""
    if not isinstance(timeline, Mapping) or not isinstance(timeline.get("log"), Mapping):
        raise InvalidInput("not a custody timeline: no 'log' object")
    report = AuditReport()
    log = timeline["log"]
    agency = log.get("agency")
    trusted = _registries(log, chain, registry, previous)
    _check_chain(report, chain, log, registry, trusted)
    roots = _check_checkpoints(report, chain, timeline, agency, trusted)
    _check_entries(report, timeline, roots, strict)
    _check_item_chain(report, timeline)
    _check_enrollment(report, chain, timeline.get("enrollment"), trusted)
    for change in timeline.get("statusChanges") or []:
        found = chain.tx_block(str(change.get("txHash")))
        ok = found is not None and found[0] == change.get("blockNumber")
        report.add(
            f"status change {change.get('status')} ({change.get('level')})",
            ok,
            f"tx {change.get('txHash')} in block {change.get('blockNumber')}"
            + ("" if ok else ": not found on chain in that block"),
        )
    return report


def _others(chain: ChainView, trusted: set[str]) -> list[str]:
    """The trusted registries other than the view's own (those an upgrade replaced)."""
    return sorted(trusted - {chain.registry().lower()})


def _check_chain(
    report: AuditReport,
    chain: ChainView,
    log: Mapping[str, Any],
    registry: str | None,
    trusted: set[str],
) -> None:
    chain_id = chain.chain_id()
    report.add(
        "chain",
        log.get("chainId") == chain_id,
        f"timeline names chain {log.get('chainId')}, the RPC serves chain {chain_id}",
    )
    claimed = str(log.get("registry") or "")
    if registry is not None:
        report.add(
            "registry",
            claimed.lower() == registry.lower(),
            f"timeline names registry {claimed}, expected {registry}",
        )
    agency = log.get("agency")
    if agency:
        name = chain.agency_name(str(agency))
        for other in _others(chain, trusted):  # accredited before an upgrade only
            name = name or chain.agency_name(str(agency), other)
        report.add(
            "anchoring agency",
            bool(name),
            f"{agency} is accredited on chain as {name!r}"
            if name
            else f"{agency} is not an accredited customs agency",
        )


def _check_checkpoints(
    report: AuditReport,
    chain: ChainView,
    timeline: Mapping[str, Any],
    agency: object,
    trusted: set[str] | None = None,
) -> dict[int, bytes]:
    """Checkpoints the chain confirms: size -> root (a checkpoint anchored before a registry
    upgrade is on the registry it replaced)."""
    confirmed: dict[int, bytes] = {}
    listed = timeline.get("checkpoints") or []
    for cp in listed:
        size, root = _int(cp.get("size")), _hash(cp.get("root"))
        subject = f"checkpoint {size}"
        if size is None or size <= 0 or root is None or not isinstance(agency, str):
            report.add(subject, False, "malformed checkpoint (size, root or agency)")
            continue
        if cp.get("agency") not in (None, agency):
            report.add(subject, False, f"anchored by {cp.get('agency')}, not the log's agency")
            continue
        anchored = chain.checkpoint_root(agency, size)
        for other in _others(chain, trusted or set()):
            if anchored != ZERO32:
                break
            anchored = chain.checkpoint_root(agency, size, other)
        if anchored == root:
            confirmed[size] = root
            report.add(subject, True, f"root {root.hex()[:16]}… anchored on chain by {agency}")
        elif anchored == ZERO32:
            report.add(subject, False, f"never anchored on chain by {agency} at size {size}")
        else:
            report.add(
                subject, False, f"chain holds root {anchored.hex()[:16]}…, not {root.hex()[:16]}…"
            )
    sizes = sorted(_int(c.get("size")) or 0 for c in listed)
    proofs = {
        (_int(p.get("from")), _int(p.get("to"))): p.get("proof")
        for p in timeline.get("consistency") or []
    }
    for old, new in itertools.pairwise(sizes):
        subject = f"consistency {old} → {new}"
        proof = proofs.get((old, new))
        if proof is None:
            report.add(subject, False, "no consistency proof given")
            continue
        if old not in confirmed or new not in confirmed:
            report.add(subject, False, "a checkpoint is not confirmed on chain")
            continue
        try:
            ok = verify_consistency(old, new, confirmed[old], confirmed[new], proof_from_hex(proof))
        except InvalidInput:
            ok = False
        report.add(subject, ok, "nothing deleted or rewritten" if ok else "proof does not verify")
    return confirmed


def _check_entries(
    report: AuditReport, timeline: Mapping[str, Any], roots: Mapping[int, bytes], strict: bool
) -> None:
    for entry in timeline.get("entries") or []:
        index = _int(entry.get("logIndex"))
        subject = f"entry {index} ({entry.get('kind')}: {entry.get('summary', '')})"
        if entry.get("withheld") is True:
            # Withheld from this reader: only its leaf hash is shown, so the proof shows
            # the entry is in the anchored log, not what it says.
            withheld = _hash(entry.get("leafHash"))
            if withheld is None:
                report.add(subject, False, "withheld entry without a leaf hash", log_index=index)
                continue
            leaf = withheld
        else:
            try:
                leaf = entries.entry_leaf(
                    str(entry.get("kind")),
                    entry.get("record") or {},
                    entry.get("previous") or {},
                    entry.get("v", 1),  # timelines before versions were shown held version 1
                )
            except InvalidInput as exc:
                report.add(subject, False, f"cannot recompute the entry: {exc}", log_index=index)
                continue
        if index is None:
            report.add(subject, False, "no log index")
            continue
        size = _int(entry.get("checkpointSize"))
        if entry.get("anchoring") != "anchored" or size is None:
            report.add(
                subject,
                not strict,
                "pending anchoring: no anchored checkpoint covers it yet",
                "failed" if strict else "pending",
                log_index=index,
            )
            continue
        if size not in roots:
            report.add(
                subject, False, f"its checkpoint {size} is not confirmed on chain", log_index=index
            )
            continue
        try:
            proof = proof_from_hex(entry.get("inclusionProof") or [])
        except InvalidInput as exc:
            report.add(subject, False, f"malformed inclusion proof: {exc}", log_index=index)
            continue
        if verify_inclusion(leaf, index, size, proof, roots[size]):
            shown = "its leaf hash" if entry.get("withheld") is True else "it"
            report.add(
                subject, True, f"{shown} in checkpoint {size} anchored on chain", log_index=index
            )
        else:
            report.add(
                subject,
                False,
                f"the shown record does not hash into checkpoint {size}: changed since logged",
                log_index=index,
            )


def _check_item_chain(report: AuditReport, timeline: Mapping[str, Any]) -> None:
    key = (timeline.get("item") or {}).get("key")
    shown = {
        _int(e.get("logIndex")): e
        for e in timeline.get("entries") or []
        if key in (e.get("previous") or {})
    }
    missing = []
    for index, entry in shown.items():
        prev = entry["previous"][key]
        if prev is not None and prev not in shown:
            missing.append((index, prev))
    for index, prev in sorted(missing, key=lambda m: (m[1], m[0])):
        report.add(
            f"history of {key}",
            False,
            f"entry {index} follows entry {prev}, which the timeline does not show (deleted?)",
            log_index=index,
        )
    if shown and not missing:
        report.add(f"history of {key}", True, f"{len(shown)} entries, none missing between")


def _registries(
    log: Mapping[str, Any], chain: ChainView, registry: str | None, previous: tuple[str, ...]
) -> set[str]:
    """The registries (lowercase) an enrollment may be on: the current one and those the
    timeline lists as replaced — only those the auditor pinned, when it pins."""
    named = {chain.registry().lower()}
    listed = log.get("previousRegistries")
    if isinstance(listed, list):
        named |= {str(r).lower() for r in listed}
    if registry is not None:
        named &= {registry.lower(), *(p.lower() for p in previous)}
    return named


def _check_enrollment(
    report: AuditReport,
    chain: ChainView,
    enrollment: Mapping[str, Any] | None,
    registries: set[str] | None = None,
) -> None:
    if not enrollment:
        report.add("enrollment", True, "the gateway names no enrollment for this item", "pending")
        return
    gtin, serial, lot = enrollment.get("gtin"), enrollment.get("serial"), enrollment.get("lot")
    batch_id, root = str(enrollment.get("batchId")), _hash(enrollment.get("root"))
    salt, claimed_leaf = _hash(enrollment.get("salt")), _hash(enrollment.get("leaf"))
    problems = []
    holder = str(enrollment.get("registry") or chain.registry())
    if registries is not None and holder.lower() not in registries:
        problems.append(f"registry {holder} is neither the timeline's nor one it replaced")
    if not (isinstance(gtin, str) and isinstance(serial, str) and isinstance(lot, str)):
        problems.append("GTIN, serial or lot missing")
    elif "0x" + batch_id_of(gtin, lot).hex() != batch_id:
        problems.append(f"batch id {batch_id} is not that of GTIN {gtin} lot {lot}")
    if root is None or salt is None:
        problems.append("root or salt missing")
    elif isinstance(gtin, str) and isinstance(serial, str):
        leaf = merkle.leaf_hash(gtin, serial, salt)
        path = [p for p in (_hash(x) for x in enrollment.get("merkleProof") or []) if p]
        if claimed_leaf is not None and leaf != claimed_leaf:
            problems.append("the leaf is not that of (GTIN, serial, salt)")
        if not merkle.verify_proof(root, leaf, path):
            problems.append("the item is not under the batch root")
    on_chain = chain.batch_root(batch_id, holder)
    if on_chain is None:
        problems.append(f"batch {batch_id} is not registered on chain")
    elif root is not None and on_chain.lower() != "0x" + root.hex():
        problems.append(f"the chain holds root {on_chain} for the batch")
    tx = enrollment.get("batchRegistrationTx")
    found = chain.tx_block(str(tx))
    if found is None:
        problems.append(f"registration tx {tx} not found on chain or failed")
    else:
        block, to = found
        if block != enrollment.get("batchRegistrationBlock"):
            problems.append(f"registration tx is in block {block}, not the stated one")
        if to.lower() != holder.lower():
            problems.append(f"registration tx was not sent to the registry {holder}")
    report.add(
        "enrollment",
        not problems,
        "; ".join(problems)
        or f"in batch {batch_id[:18]}…, registered in block {found and found[0]}",
    )
