"""Verdicts with no network, from a trust bundle the gateway signed (ledger/trustbundle.py).

The judgement follows the gateway's (api/verification.py) step by step, with the same verdict
and reason names where the meaning is the same, so an officer reads an offline verdict like
an online one:

1. GTIN unknown, lot unknown, or a signature that is bad, unknown, foreign or revoked
   → COUNTERFEIT_SUSPECT (GTIN_UNKNOWN, BATCH_UNKNOWN, SIGNATURE_INVALID, SIGNER_UNKNOWN,
   SIGNER_FOREIGN, SIGNER_REVOKED); destroyed → COUNTERFEIT_SUSPECT (ITEM_DESTROYED);
2. stolen / recalled / decommissioned (item, else batch) → STOLEN / RECALLED / DECOMMISSIONED;
3. a valid signature of the GTIN holder's key, active when the batch was registered → GENUINE.

What differs, and says so in the reasons:

- **Membership is not checked** (`MEMBERSHIP_NOT_CHECKED`). A tag carries no salt or Merkle
  proof, and the bundle carries neither salts nor serial lists (they would tell anyone holding
  a bundle which serials are genuine). A GENUINE offline verdict rests on the holder's
  signature alone: the holder's key signed exactly this GTIN, lot and serial. A serial the
  holder signed but never enrolled, which the gateway calls SERIAL_UNKNOWN, passes offline.
- **Unsigned input gets `UNVERIFIED`** (a typed serial, a GS1 DataMatrix, an unsigned link):
  the GTIN and lot are known and no status is flagged, but nothing vouches for the serial. Hold
  it until it is verified online. (Online, with the batch held by the gateway, the same input
  is GENUINE_UNSIGNED or SERIAL_UNKNOWN.) A flagged item status is still found offline — it is
  stored under keccak256(gtin, serial), no salt needed — and setting it on chain required the
  item's proof, so a stolen/recalled/decommissioned/destroyed verdict means the same offline.
- **Bundle age**: every verdict states the bundle's index block, how old its block and its
  issue are, and `BUNDLE_STALE` when older than the configured maximum.

Domain module: no web3, no FastAPI, no network.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from detector import Batch as DetectorBatch
from detector import Detector, DetectorError, LocationRegistry, RoutePolicy, Scan
from detector.rules import AlertClass
from ledger.batch import batch_id_of, item_key_of
from ledger.digital_link import parse_digital_link
from ledger.errors import InvalidInput, InvalidSignature
from ledger.gs1 import normalize_gtin, validate_lot, validate_serial
from ledger.models import Status
from ledger.tags import TagDomain, recover_signer, tag_digest, to_checksum_address
from ledger.trustbundle import (
    BundleRefused,
    envelope_from_bytes,
    key_id,
    verify_bundle,
)
from ledger.verdicts import STATUS_REASONS, SUSPECT_REASONS


class Verdict(StrEnum):
    """The gateway's verdicts, plus UNVERIFIED (offline, nothing vouches for the serial)."""

    GENUINE = "GENUINE"
    COUNTERFEIT_SUSPECT = "COUNTERFEIT_SUSPECT"
    RECALLED = "RECALLED"
    STOLEN = "STOLEN"
    DECOMMISSIONED = "DECOMMISSIONED"
    UNVERIFIED = "UNVERIFIED"


class Reason(StrEnum):
    """The gateway's reason codes that apply offline, plus the offline-only ones."""

    GTIN_UNKNOWN = "GTIN_UNKNOWN"
    BATCH_UNKNOWN = "BATCH_UNKNOWN"
    SIGNATURE_MISSING = "SIGNATURE_MISSING"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    SIGNER_UNKNOWN = "SIGNER_UNKNOWN"
    SIGNER_FOREIGN = "SIGNER_FOREIGN"
    SIGNER_REVOKED = "SIGNER_REVOKED"
    SIGNATURE_VALID = "SIGNATURE_VALID"
    BATCH_RECALLED = "BATCH_RECALLED"
    ITEM_RECALLED = "ITEM_RECALLED"
    ITEM_STOLEN = "ITEM_STOLEN"
    ITEM_DECOMMISSIONED = "ITEM_DECOMMISSIONED"
    ITEM_DESTROYED = "ITEM_DESTROYED"
    #: Added by the detector's rules (RouteCheck), as the gateway adds them.
    CLONE_SUSPECT = "CLONE_SUSPECT"
    DIVERSION_SUSPECT = "DIVERSION_SUSPECT"
    #: Offline only: Merkle membership could not be checked (no salt or proof offline).
    MEMBERSHIP_NOT_CHECKED = "MEMBERSHIP_NOT_CHECKED"
    #: Offline only: the bundle is older than the configured maximum age.
    BUNDLE_STALE = "BUNDLE_STALE"


OFFLINE_ONLY = frozenset({Reason.MEMBERSHIP_NOT_CHECKED, Reason.BUNDLE_STALE})

# The gateway's rules (ledger.verdicts); SERIAL_UNKNOWN needs the batch's tree, never offline.
_SUSPECT = {Reason(code) for code in SUSPECT_REASONS if code in Reason.__members__}
_STATUS_REASON = {key: Reason(code) for key, code in STATUS_REASONS.items()}
SUMMARIES = {
    Verdict.GENUINE: "Genuine: signed by the rights holder and registered on chain "
    "(offline: membership in the batch not checked).",
    Verdict.COUNTERFEIT_SUSPECT: "Potential suspect: the ledger does not vouch for this item. "
    "Investigate.",
    Verdict.RECALLED: "Recalled by the rights holder: do not release.",
    Verdict.STOLEN: "Reported stolen by the rights holder: hold and notify.",
    Verdict.DECOMMISSIONED: "Already decommissioned (pack inactive): a code seen again may be "
    "copied.",
    Verdict.UNVERIFIED: "Not verifiable offline: no signature, and serials cannot be checked "
    "without the gateway. Hold until verified online.",
}


def _refuse(what: str) -> BundleRefused:
    return BundleRefused(f"trust bundle refused: {what}")


def _int(value: Any, what: str, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(f"{what} is not an integer")
    return value


@dataclass(frozen=True)
class Signer:
    address: str
    holder: str
    added_at: int
    revoked_at: int | None


@dataclass(frozen=True)
class Batch:
    batch_id: str
    gtin: str
    lot: str
    root: str
    holder: str
    registered_at: int
    status: Status
    raw: dict[str, Any]


@dataclass
class TrustBundle:
    """A verified bundle, indexed for judging."""

    payload: dict[str, Any]
    public_key: str
    chain_id: int
    registry: str
    issued_at: int
    index_block: int
    block_time: int | None
    holders: dict[str, dict[str, Any]] = field(default_factory=dict)
    signers: dict[str, Signer] = field(default_factory=dict)
    batches: dict[str, Batch] = field(default_factory=dict)
    batches_by_gtin: dict[str, list[Batch]] = field(default_factory=dict)
    items: dict[tuple[str, str], Status] = field(default_factory=dict)

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @classmethod
    def from_payload(cls, payload: dict[str, Any], public_key: str) -> TrustBundle:
        """Index a verified payload; a signed but malformed payload is refused, not guessed at."""
        try:
            index = payload["index"]
            bundle = cls(
                payload,
                public_key,
                chain_id=_int(payload["chainId"], "chainId") or 0,
                registry=to_checksum_address(str(payload["registry"])),
                issued_at=_int(payload["issuedAt"], "issuedAt") or 0,
                index_block=_int(index["block"], "index.block") or 0,
                block_time=_int(index.get("blockTime"), "index.blockTime", optional=True),
            )
            for h in payload["holders"]:
                bundle.holders[str(h["address"])] = h
            for s in payload["signers"]:
                bundle.signers[str(s["address"])] = Signer(
                    str(s["address"]),
                    str(s["holder"]),
                    _int(s["addedAt"], "signer addedAt") or 0,
                    _int(s.get("revokedAt"), "signer revokedAt", optional=True),
                )
            for b in payload["batches"]:
                batch = Batch(
                    str(b["batchId"]).lower(),
                    str(b["gtin"]),
                    str(b["lot"]),
                    str(b["root"]),
                    str(b["holder"]),
                    _int(b["registeredAt"], "batch registeredAt") or 0,
                    Status.parse(str(b["status"])),
                    b,
                )
                bundle.batches[batch.batch_id] = batch
                bundle.batches_by_gtin.setdefault(batch.gtin, []).append(batch)
            for i in payload["items"]:
                key = (str(i["batchId"]).lower(), str(i["itemKey"]).lower())
                bundle.items[key] = Status.parse(str(i["status"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, BundleRefused):
                raise
            raise _refuse(
                f"the signed payload is malformed ({type(exc).__name__}: {exc})"
            ) from None
        # The gateway lists batches by (gtin, lot); online, a GTIN's first batch names its holder.
        for batches in bundle.batches_by_gtin.values():
            batches.sort(key=lambda b: (b.registered_at, int(b.raw.get("block", 0))))
        return bundle

    def age(self, max_age: float, now: float | None = None) -> dict[str, Any]:
        """How old the bundle is: since it was issued, and since its index block was mined."""
        now = time.time() if now is None else now
        issued_age = now - self.issued_at
        block_age = now - self.block_time if self.block_time is not None else None
        oldest = max(issued_age, block_age if block_age is not None else issued_age)
        return {
            "keyId": self.key_id,
            "block": self.index_block,
            "blockTime": _iso(self.block_time),
            "issuedAt": _iso(self.issued_at),
            "ageSeconds": round(issued_age),
            "blockAgeSeconds": round(block_age) if block_age is not None else None,
            "maxAgeSeconds": max_age,
            "stale": oldest > max_age,
        }


def _iso(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def load_bundle(path: Path, pinned: Ed25519PublicKey | str) -> TrustBundle:
    """Read, verify (signature first) and index a bundle file; `BundleRefused` if anything is
    wrong with it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _refuse(f"cannot read {path}: {exc.strerror or exc}") from None
    verified = verify_bundle(envelope_from_bytes(raw), pinned)
    return TrustBundle.from_payload(verified.payload, verified.public_key)


@dataclass(frozen=True)
class Item:
    """What was scanned, validated like the gateway validates it."""

    gtin: str
    serial: str
    lot: str | None
    signature: bytes | None
    kind: str  # "tag" or "typed"

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> Item:
        """From the body `scanner.payload` builds for POST /v1/verify."""
        if "tag" in request:
            link = parse_digital_link(str(request["tag"]))
            return cls(link.gtin, link.serial, link.lot, link.signature, "tag")
        lot = request.get("lot")
        return cls(
            normalize_gtin(str(request["gtin"])),
            validate_serial(str(request["serial"])),
            validate_lot(str(lot)) if lot else None,
            None,
            "typed",
        )


def judge(
    bundle: TrustBundle, item: Item, *, max_age: float, now: float | None = None
) -> dict[str, Any]:
    """The offline verdict on `item`, as a JSON-ready dict shaped like the gateway's answer
    (verdict, summary, reasons, item, product, batchId, signer) plus `offline: true` and
    `bundle` (its block and age)."""
    now = time.time() if now is None else now
    age = bundle.age(max_age, now)
    reasons: list[Reason] = []
    if age["stale"]:
        reasons.append(Reason.BUNDLE_STALE)
    answer: dict[str, Any] = {
        "verdict": Verdict.COUNTERFEIT_SUSPECT.value,
        "offline": True,
        "item": {"gtin": item.gtin, "lot": item.lot, "serial": item.serial},
        "product": {},
        "batchId": None,
        "signer": None,
        "bundle": age,
        "judgedAt": datetime.fromtimestamp(now, UTC).isoformat(),
    }

    def done(verdict: Verdict) -> dict[str, Any]:
        answer["verdict"] = verdict.value
        answer["summary"] = SUMMARIES[verdict]
        answer["reasons"] = [r.value for r in reasons]
        return answer

    candidates = bundle.batches_by_gtin.get(item.gtin, [])
    if not candidates:
        reasons.insert(0, Reason.GTIN_UNKNOWN)
        return done(Verdict.COUNTERFEIT_SUSPECT)
    holder_address = candidates[0].holder
    holder = bundle.holders.get(holder_address, {})
    answer["product"] = {
        "gtin": item.gtin,
        "rightsHolder": {
            "address": holder_address,
            "name": holder.get("name"),
            "recordation": holder.get("recordation"),
        },
    }
    item_key = "0x" + item_key_of(item.gtin, item.serial).hex()
    if item.lot is not None:
        batch = bundle.batches.get("0x" + batch_id_of(item.gtin, item.lot).hex())
        if batch is None:
            reasons.insert(0, Reason.BATCH_UNKNOWN)
            return done(Verdict.COUNTERFEIT_SUSPECT)
    else:
        # No lot (typed): the batch whose status list names this item, else the only batch.
        flagged = [b for b in candidates if (b.batch_id, item_key) in bundle.items]
        batch = flagged[0] if flagged else candidates[0]
    answer["batchId"] = batch.batch_id
    reasons.append(Reason.MEMBERSHIP_NOT_CHECKED)

    if item.signature is not None and item.lot is not None:
        _judge_signature(bundle, item, batch, reasons, answer)
    elif item.signature is None:
        reasons.append(Reason.SIGNATURE_MISSING)

    status = bundle.items.get((batch.batch_id, item_key), Status.ACTIVE)
    batch_level = status == Status.ACTIVE
    if batch_level:
        status = batch.status
    if status != Status.ACTIVE:
        reasons.append(_STATUS_REASON[(status, batch_level)])
    return done(_decide(reasons, status))


def _judge_signature(
    bundle: TrustBundle, item: Item, batch: Batch, reasons: list[Reason], answer: dict[str, Any]
) -> None:
    assert item.signature is not None and item.lot is not None
    domain = TagDomain(bundle.chain_id, bundle.registry)
    try:
        signer = recover_signer(
            tag_digest(domain.separator, item.gtin, item.serial, item.lot), item.signature
        )
    except InvalidSignature:
        reasons.insert(0, Reason.SIGNATURE_INVALID)
        return
    answer["signer"] = signer
    key = bundle.signers.get(signer)
    if key is None:
        reasons.insert(0, Reason.SIGNER_UNKNOWN)
    elif key.holder != batch.holder:
        reasons.insert(0, Reason.SIGNER_FOREIGN)
    elif key.revoked_at is not None and not (key.added_at <= batch.registered_at < key.revoked_at):
        reasons.insert(0, Reason.SIGNER_REVOKED)
    else:
        reasons.append(Reason.SIGNATURE_VALID)


def _decide(reasons: list[Reason], status: Status) -> Verdict:
    if any(r in _SUSPECT for r in reasons):
        return Verdict.COUNTERFEIT_SUSPECT
    if status == Status.STOLEN:
        return Verdict.STOLEN
    if status == Status.RECALLED:
        return Verdict.RECALLED
    if status == Status.DECOMMISSIONED:
        return Verdict.DECOMMISSIONED
    if Reason.SIGNATURE_VALID in reasons:
        return Verdict.GENUINE
    return Verdict.UNVERIFIED


_SUSPECT_OF_CLASS = {
    AlertClass.CLONE: Reason.CLONE_SUSPECT,
    AlertClass.DIVERSION: Reason.DIVERSION_SUSPECT,
}


class RouteCheck:
    """The gateway's diversion/clone detector (detector/), run on the scanner offline.

    Online, a scan naming a UN/LOCODE goes to the gateway's detector; offline the scanner runs
    the same rules against the route policies in the bundle. It sees only the scans of this
    session, not other ports', so a clone read elsewhere is not caught offline. As online, a
    finding adds DIVERSION_SUSPECT / CLONE_SUSPECT and `findings` but never changes the
    verdict, and only a read the ledger vouches for (offline: a valid signature) is attributed
    to its batch; other reads are unknown serials of the GTIN (the probing rule's input).
    The location registry loads on first use (airports included, as in the gateway)."""

    def __init__(self, bundle: TrustBundle, registry: LocationRegistry | None = None) -> None:
        self.bundle = bundle
        self._registry = registry
        self._detector: Detector | None = None
        self._registered: set[str] = set()

    @property
    def registry(self) -> LocationRegistry:
        if self._registry is None:
            self._registry = LocationRegistry.default()
        return self._registry

    def check_location(self, locode: str) -> None:
        if locode not in self.registry:
            raise InvalidInput(
                f"unknown location {locode!r}: not a UN/LOCODE in the location registry"
            )

    def _detector_for(self) -> Detector:
        if self._detector is None:
            self._detector = Detector(self.registry)
        return self._detector

    def _register(self, batch: Batch) -> None:
        if batch.batch_id in self._registered:
            return
        raw = batch.raw.get("routePolicy")
        policy: RoutePolicy | None = None
        released: dict[str, int] = {}
        if isinstance(raw, dict):
            try:
                policy = RoutePolicy.create(
                    self.registry,
                    markets=raw.get("markets", []),
                    nodes=raw.get("nodes", []),
                    consignees=raw.get("consignees", []),
                    valid_from=raw.get("valid_from"),
                    valid_until=raw.get("valid_until"),
                )
                released = {str(k): int(v) for k, v in dict(raw.get("released", {})).items()}
            except (DetectorError, TypeError, ValueError):
                policy, released = None, {}  # validated at enrollment; never guess at a policy
        try:
            entry = DetectorBatch(batch.batch_id, batch.gtin, policy, released)
        except DetectorError:
            entry = DetectorBatch(batch.batch_id, batch.gtin, policy)
        self._detector_for().register_batch(entry)
        self._registered.add(batch.batch_id)

    def apply(self, answer: dict[str, Any], location: str, at: float | None = None) -> None:
        """Run the detector on one judged read at `location`; adds reasons and `findings`."""
        self.check_location(location)
        item = answer["item"]
        batch_id = answer.get("batchId")
        vouched = Reason.SIGNATURE_VALID.value in answer["reasons"]
        batch = self.bundle.batches.get(batch_id) if vouched and batch_id else None
        if batch is not None:
            self._register(batch)
        scan = Scan(
            str(uuid.uuid4()),
            str(item["gtin"]),
            str(item["serial"]),
            location,
            time.time() if at is None else at,
            batch.batch_id if batch is not None else None,
        )
        try:
            alerts = self._detector_for().ingest(scan)
        except DetectorError:
            alerts = []
        findings = []
        for a in alerts:
            findings.append(
                {
                    "rule": a.alert_class.value,
                    "reasonCode": a.reason.value,
                    "severity": a.severity.value,
                    "evidence": list(a.evidence),
                    "detail": a.detail,
                }
            )
            extra = _SUSPECT_OF_CLASS.get(a.alert_class)
            if extra is not None and extra.value not in answer["reasons"]:
                answer["reasons"].append(extra.value)
        answer["findings"] = findings
