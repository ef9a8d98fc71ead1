"""Verdicts with no network, from a trust bundle the gateway signed (ledger/trustbundle.py).

The evidence is gathered from the bundle here; it is named and weighed by the verdict engine
(`ledger.verdicts`: the signer rule, the status reasons, the order of judgement, the
summaries) that the gateway (api/verification.py) and `borderledger check` use too, so an
officer reads an offline verdict like an online one.

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
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from detector import BatchProfile, Detector, DetectorError, LocationRegistry, RoutePolicy, Scan
from detector.findings import finding_facts
from ledger.batch import batch_id_of, item_key_of
from ledger.errors import InvalidInput, InvalidSignature
from ledger.gs1 import resolve_holder
from ledger.models import Status
from ledger.scanned import Scanned
from ledger.tags import TagDomain, recover_signer, tag_digest, to_checksum_address
from ledger.trustbundle import (
    BundleRefused,
    envelope_from_bytes,
    key_id,
    verify_bundle,
)
from ledger.verdicts import (
    Reason,
    Verdict,
    decide,
    finding_reasons,
    signer_reason,
    status_reason,
    summary,
    with_findings,
)


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
class BundleBatch:
    """A registered batch as the trust bundle lists it (no salts, no serials)."""

    batch_id: str
    gtin: str
    lot: str
    root: str
    holder: str
    registered_at: int
    status: Status
    raw: dict[str, Any]
    #: the registry holding the batch: its tags are signed for that registry's domain
    #: (bundles before upgrades name none: the bundle's registry)
    registry: str = ""


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
    #: GTIN -> the holder it is bound to (bundles before bindings have none)
    gtin_owners: dict[str, str] = field(default_factory=dict)
    #: company prefix -> the holder it is bound to (a GTIN's own binding wins over it)
    prefix_owners: dict[str, str] = field(default_factory=dict)
    signers: dict[str, Signer] = field(default_factory=dict)
    batches: dict[str, BundleBatch] = field(default_factory=dict)
    batches_by_gtin: dict[str, list[BundleBatch]] = field(default_factory=dict)
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
                for gtin in h.get("boundGtins", ()):
                    bundle.gtin_owners[str(gtin)] = str(h["address"])
                for prefix in h.get("boundPrefixes", ()):
                    bundle.prefix_owners[str(prefix)] = str(h["address"])
            for s in payload["signers"]:
                bundle.signers[str(s["address"])] = Signer(
                    str(s["address"]),
                    str(s["holder"]),
                    _int(s["addedAt"], "signer addedAt") or 0,
                    _int(s.get("revokedAt"), "signer revokedAt", optional=True),
                )
            for b in payload["batches"]:
                batch = BundleBatch(
                    str(b["batchId"]).lower(),
                    str(b["gtin"]),
                    str(b["lot"]),
                    str(b["root"]),
                    str(b["holder"]),
                    _int(b["registeredAt"], "batch registeredAt") or 0,
                    Status.parse(str(b["status"])),
                    b,
                    to_checksum_address(str(b.get("registry") or bundle.registry)),
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


def judge(
    bundle: TrustBundle, item: Scanned, *, max_age: float, now: float | None = None
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
        answer["summary"] = summary(verdict, offline=True)
        answer["reasons"] = [r.value for r in reasons]
        return answer

    candidates = bundle.batches_by_gtin.get(item.gtin, [])
    if not candidates:
        reasons.insert(0, Reason.GTIN_UNKNOWN)
        return done(Verdict.COUNTERFEIT_SUSPECT)
    owner, _ = resolve_holder(item.gtin, bundle.gtin_owners, bundle.prefix_owners)
    holder_address = owner or candidates[0].holder
    holder = bundle.holders.get(holder_address, {})
    answer["product"] = {
        "gtin": item.gtin,
        "rightsHolder": {
            "address": holder_address,
            "name": holder.get("name"),
            "recordation": holder.get("recordation"),
            "revokedAt": holder.get("revokedAt"),
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
    answer["registry"] = batch.registry
    reasons.append(Reason.MEMBERSHIP_NOT_CHECKED)

    if item.signature is not None and item.lot is not None:
        _judge_signature(bundle, item, batch, reasons, answer)
    elif item.signature is None:
        reasons.append(Reason.SIGNATURE_MISSING)

    status = bundle.items.get((batch.batch_id, item_key), Status.ACTIVE)
    batch_level = status == Status.ACTIVE
    if batch_level:
        status = batch.status
    status_flag = status_reason(status, batch_level)
    if status_flag is not None:
        reasons.append(status_flag)
    return done(decide(reasons, status))


def _judge_signature(
    bundle: TrustBundle,
    item: Scanned,
    batch: BundleBatch,
    reasons: list[Reason],
    answer: dict[str, Any],
) -> None:
    assert item.signature is not None and item.lot is not None
    domain = TagDomain(bundle.chain_id, batch.registry or bundle.registry)
    try:
        signer = recover_signer(
            tag_digest(domain.separator, item.gtin, item.serial, item.lot), item.signature
        )
    except InvalidSignature:
        reasons.insert(0, Reason.SIGNATURE_INVALID)
        return
    answer["signer"] = signer
    revoked = bundle.holders.get(batch.holder, {}).get("revokedAt")
    reason = signer_reason(
        bundle.signers.get(signer),
        batch.holder,
        batch.registered_at,
        revoked if isinstance(revoked, int) else None,
    )
    if reason == Reason.SIGNATURE_VALID:
        reasons.append(reason)
    else:
        reasons.insert(0, reason)


class RouteCheck:
    """The gateway's diversion/clone detector (detector/), run on the scanner offline.

    Online, a scan naming a UN/LOCODE goes to the gateway's detector; offline the scanner runs
    the same rules against the route policies in the bundle. It sees only the scans of this
    session, not other ports', so a clone read elsewhere is not caught offline. As online, a
    finding adds DIVERSION_SUSPECT / CLONE_SUSPECT and `findings`, and the verdict engine
    weighs it (`ledger.verdicts.with_findings`): a clone is held as COUNTERFEIT_SUSPECT, a
    diversion of genuine goods is GENUINE_DIVERTED, each with its summary. Only a read the ledger vouches for (offline: a valid signature) is attributed
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

    def _register(self, batch: BundleBatch) -> None:
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
            entry = BatchProfile(batch.batch_id, batch.gtin, policy, released)
        except DetectorError:
            entry = BatchProfile(batch.batch_id, batch.gtin, policy)
        self._detector_for().register_batch(entry)
        self._registered.add(batch.batch_id)

    def apply(self, answer: dict[str, Any], location: str, at: float | None = None) -> None:
        """Run the detector on one judged read at `location`; adds reasons and `findings`, and
        re-weighs the verdict and summary with them."""
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
        answer["reasons"] += finding_reasons(answer["reasons"], (a.alert_class for a in alerts))
        answer["findings"] = findings
        if alerts:
            facts = finding_facts(alerts, self.registry)
            verdict = with_findings(Verdict(answer["verdict"]), facts)
            answer["verdict"] = verdict.value
            answer["summary"] = summary(verdict, offline=True, findings=facts)
