"""Request and response bodies of the public API (what the OpenAPI document shows): every
model a route reads or answers with is here.

Names say what a model is for:

- `<Thing>Create`: the body that creates a thing (`BatchCreate`, `OrganizationCreate`…);
- `<Thing>Update`: a body that changes one, or replaces it (`BatchStatusUpdate`,
  `WebhookEndpointUpdate`, `AlertUpdate`);
- `<Thing>Public`: a thing as the API shows it (`BatchPublic`, `AlertPublic`…);
- `<Operation>Request` / `<Operation>Response`: the bodies of an operation that is an action
  rather than a resource (verify, sync, EPCIS capture), and `ErrorResponse`, the error
  envelope every route answers with;
- nested parts take their plain name (`Item`, `Location`, `Finding`, `SignedScan`…).

One exception: the GS1 verification messages (`VerificationResponse`, `VerificationData`) are
the GS1 standard's, defined in `api.gs1` next to the standard's code lists they are built
from, and named as the standard names them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from api.models import PendingWrite, Role
from ledger.scan_record import SHIPMENT_PATTERN

UNLOCODE = r"^[A-Z]{2}[A-Z2-9]{3}$"
#: Free text without control characters (PostgreSQL text cannot hold NUL at all).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
#: A name: printable (as PRINTABLE) and not blank.
NAME = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
#: A shipment reference (customs entry, air-waybill or parcel number): the rule signed offline
#: scan records follow too (ledger.scan_record).
SHIPMENT = SHIPMENT_PATTERN
#: A GTIN's digits: GTIN-8, -12, -13 or -14 (its check digit is a rule no pattern states).
GTIN_DIGITS = r"^([0-9]{8}|[0-9]{12,14})$"
#: A GS1 company prefix: 6 to 12 digits (the GS1 Prefixes that number no company, such as
#: 2 for restricted circulation, are a rule no pattern states: ledger.gs1).
COMPANY_PREFIX = r"^[0-9]{6,12}$"
#: A GS1 serial or lot: 1 to 20 characters of GS1 CSET 82.
CSET82_20 = r"^[!\"%-?A-Z_a-z]{1,20}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _date_time_text(value: object) -> object:
    """Refuse a number where a time is expected: pydantic would read `0.5` or `1733500000` as
    Unix seconds, which the document (`format: date-time`, RFC 3339) does not offer and which
    turns a typo into a moment in 1970."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be an ISO 8601 date and time, such as 2026-12-06T09:30:00Z")
    return value


_NUMBER = re.compile(r"\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*")
#: A moment in a request (query parameter or body field): RFC 3339 text, never a number.
DateTime = Annotated[datetime, BeforeValidator(_date_time_text)]


class Location(Strict):
    unlocode: str | None = Field(
        None, pattern=UNLOCODE, description="UN/LOCODE of the port, e.g. NLRTM"
    )
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)


class VerifyRequest(Strict):
    """Either `tag` (the scanned QR payload) or `gtin` + `serial` typed from a label."""

    # The rule of `_one_input`, for the OpenAPI document: a null counts as absent.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["tag"],
                    "properties": {
                        "tag": {"type": "string"},
                        "gtin": {"type": "null"},
                        "serial": {"type": "null"},
                    },
                },
                {
                    "required": ["gtin", "serial"],
                    "properties": {
                        "tag": {"type": "null"},
                        "gtin": {"type": "string"},
                        "serial": {"type": "string"},
                    },
                },
            ]
        },
    )

    tag: str | None = Field(None, max_length=2048, description="GS1 Digital Link tag URI")
    gtin: str | None = Field(None, max_length=14)
    serial: str | None = Field(None, max_length=20)
    lot: str | None = Field(None, max_length=20)
    location: Location | None = None
    shipment: str | None = Field(
        None,
        max_length=35,
        pattern=SHIPMENT,
        description="shipment reference (entry, air-waybill or parcel number): scans group by it",
    )
    scanned_at: DateTime | None = Field(None, description="when it was scanned (default: now)")

    @field_validator("scanned_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Stored in UTC (a time without offset is taken as UTC); a time that has no UTC
        equivalent (year 1 at +01:00, year 9999 at -23:59) is refused, not recorded."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("scanned_at is out of range once converted to UTC") from None

    @model_validator(mode="after")
    def _one_input(self) -> VerifyRequest:
        if self.tag is None and (self.gtin is None or self.serial is None):
            raise ValueError("give either tag, or gtin and serial")
        if self.tag is not None and (self.gtin is not None or self.serial is not None):
            raise ValueError("give either tag, or gtin and serial, not both")
        return self


class Item(BaseModel):
    gtin: str
    lot: str | None
    serial: str


class IndexInfo(BaseModel):
    block: int
    headBlock: int
    updatedAt: str | None
    stale: bool


class Finding(BaseModel):
    """A detector alert raised by this scan (docs/detector.md)."""

    alertId: str
    rule: Literal["clone", "diversion", "status", "volume", "probing"]
    reasonCode: str
    severity: Literal["low", "medium", "high", "critical"]
    evidence: list[str] = Field(description="ids of the scans (and status reports) behind it")
    detail: str


#: Scans one POST /v1/verify/batch may carry: a folder's scan sends its codes in batches of
#: this many instead of one request each (one request's overhead, one detector group).
VERIFY_BATCH_MAX = 100


class VerifyBatchRequest(Strict):
    """Up to VERIFY_BATCH_MAX scans, each what POST /v1/verify takes. Items are validated one
    by one (a bad item gets its own error in the answer, the others are verified), so the
    envelope only requires JSON objects."""

    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=VERIFY_BATCH_MAX,
        description="the bodies of up to 100 POST /v1/verify requests, answered in order",
    )


class VerifyResponse(BaseModel):
    verdict: Literal[
        "GENUINE",
        "GENUINE_UNSIGNED",
        "GENUINE_DIVERTED",
        "PENDING",
        "COUNTERFEIT_SUSPECT",
        "RECALLED",
        "STOLEN",
        "DECOMMISSIONED",
    ]
    summary: str
    reasons: list[str]
    item: Item
    product: dict[str, Any]
    batchId: str | None
    proof: dict[str, Any] | None
    index: IndexInfo
    scanId: str
    scannedAt: datetime
    location: Location | None
    shipment: str | None = None
    findings: list[Finding] = []
    guide: dict[str, Any] | None = Field(
        None,
        description="customs callers only: the essentials of the product's published, "
        "unexpired guide (guideId, version, expires, brand, name, category, categoryLabel, "
        "features, msrp, photos, url), null when there is none (docs/guides.md)",
    )


class BatchCreate(Strict):
    gtin: str = Field(max_length=14)
    lot: str = Field(max_length=20)
    serials: list[str] = Field(min_length=1, max_length=10_000_000)
    expiry: str | None = Field(None, pattern=r"^[0-9]{6}$", description="YYMMDD")
    route_policy: dict[str, Any] | None = None


class BatchPublic(BaseModel):
    batchId: str
    gtin: str
    lot: str
    expiry: str | None
    count: int
    root: str
    metadataHash: str
    signer: str
    registration: Literal["queued", "sent", "done", "failed"]
    txHash: str | None
    block: int | None
    error: str | None = None
    status: str | None = None
    jobId: str | None = None
    reorgs: int = Field(
        0, description="times the chain dropped the registration and it was re-submitted"
    )


class BatchStatusUpdate(Strict):
    status: Literal["active", "recalled", "stolen", "destroyed", "decommissioned"]
    serial: str | None = Field(
        None, max_length=20, description="one item; omit for the whole batch"
    )


class WritePublic(BaseModel):
    id: int
    kind: str
    status: str
    txHash: str | None
    block: int | None
    error: str | None
    reorgs: int = Field(
        0, description="times the chain dropped the landed transaction and it was re-submitted"
    )
    reorgedAt: datetime | None = None

    @classmethod
    def of(cls, write: PendingWrite) -> WritePublic:
        return cls(
            id=write.id or 0,
            kind=write.kind,
            status=write.status.value,
            txHash=write.tx_hash,
            block=write.block_number,
            error=write.error,
            reorgs=write.reorgs,
            reorgedAt=write.reorged_at,
        )


class OrganizationCreate(Strict):
    name: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)
    role: Role
    recordation: str = Field(
        "", max_length=200, pattern=PRINTABLE, description="trademark recordation (rights holders)"
    )


class GtinBindingCreate(Strict):
    gtin: str = Field(min_length=8, max_length=14, description="GTIN-8/12/13/14")
    organizationId: int = Field(
        ge=1, le=2**31 - 1, description="the rights holder the GTIN is bound to"
    )
    reassign: bool = Field(
        False, description="move a GTIN bound to another holder (an explicit admin act)"
    )


class GtinBindingPublic(BaseModel):
    gtin: str
    holder: str
    previous: str | None = Field(None, description="the owner before a reassignment")
    write: WritePublic


class PrefixBindingCreate(Strict):
    prefix: str = Field(
        json_schema_extra={"pattern": COMPANY_PREFIX},  # checked by ledger.gs1, which says why
        description="GS1 company prefix: 6 to 12 digits, outside the GS1 Prefixes of no company",
    )
    organizationId: int = Field(
        ge=1, le=2**31 - 1, description="the rights holder the prefix is bound to"
    )


class PrefixBindingPublic(BaseModel):
    prefix: str
    holder: str = Field(description="the holder it is bound to (unbinding: was bound to)")
    write: WritePublic


class OrganizationPublic(BaseModel):
    id: int
    name: str
    role: Role
    address: str | None
    signer: str | None
    apiKey: str | None = Field(None, description="shown once, at creation")
    writes: list[WritePublic] = []


class OrganizationSummary(BaseModel):
    """An organization in the registry admin's list: its accreditation on chain (the write's
    progress: queued, sent, done with block and transaction, failed; null for kinds the
    registry does not accredit) and its suspension (a rights holder's revocation)."""

    id: int
    name: str
    role: Role
    address: str | None
    signer: str | None
    createdAt: datetime
    accreditation: WritePublic | None
    revocation: WritePublic | None
    suspended: bool = Field(description="the revocation is on chain (final on the registry)")


class GtinBindingState(BaseModel):
    gtin: str
    write: WritePublic | None = Field(None, description="the bind write (null: bound elsewhere)")
    movedTo: str | None = Field(None, description="the holder the GTIN was reassigned to")


class OrganizationDetail(OrganizationSummary):
    """One organization for the registry admin: also every chain write about it and, for a
    rights holder, its GTIN bindings."""

    writes: list[WritePublic]
    gtins: list[GtinBindingState]


class OrganizationList(BaseModel):
    organizations: list[OrganizationSummary]
    total: int = Field(description="organizations matching the filter")
    nextOffset: int | None = Field(None, description="the next page's offset (null: last page)")


class ChainWritePublic(BaseModel):
    """A write in the chain-writes queue (the registry admin's view of the outbox)."""

    id: int
    kind: str = Field(description="the registry call, e.g. register_batch, bind_gtin")
    status: Literal["queued", "sent", "done", "failed"]
    organizationId: int = Field(description="the organization whose key signs it")
    organization: str
    subject: str = Field(description="what it is about: a batch, a GTIN, an account")
    nonce: int | None = Field(description="of the signed transaction, once signed")
    txHash: str | None
    block: int | None
    attempts: int = Field(description="submissions that did not complete")
    error: str | None = Field(description="the last error (the revert, for a failed write)")
    reorgs: int
    createdAt: datetime
    updatedAt: datetime
    ageSeconds: int


class JobPublic(BaseModel):
    """A background job: its progress, and its result or error once finished."""

    id: str
    kind: str = Field(description="what the job does, e.g. enroll")
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    done: int = Field(description="items processed by the current attempt")
    total: int
    result: dict[str, Any] | None = Field(None, description="for enroll: the batch (BatchOut)")
    error: str | None
    attempts: int = Field(description="times a runner claimed it (crashed runners included)")
    cancellable: bool = Field(description="false once the job has stored its work")
    organizationId: int
    createdAt: datetime
    updatedAt: datetime
    startedAt: datetime | None
    finishedAt: datetime | None


class JobAccepted(BaseModel):
    """The answer to a request that started a background job (HTTP 202)."""

    jobId: str
    batchId: str | None = None
    status: Literal["queued"] = "queued"


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class VerifyBatchAnswer(BaseModel):
    """One item's answer: the status POST /v1/verify would have answered it alone, and its
    answer (200) or its error (any other status, e.g. 422, 404, 429 with `retryAfter`)."""

    status: int
    answer: VerifyResponse | None = None
    error: ErrorBody | None = None


class VerifyBatchResponse(BaseModel):
    answers: list[VerifyBatchAnswer]


class AlertPublic(BaseModel):
    alertId: str
    rule: str
    reasonCode: str
    severity: str
    batchId: str | None
    gtin: str
    serial: str | None
    location: str
    evidence: list[str]
    detail: str
    status: Literal["open", "acknowledged", "resolved"]
    note: str | None
    organizationId: int | None
    createdAt: datetime
    updatedAt: datetime


class AlertUpdate(Strict):
    note: str | None = Field(None, max_length=2000, pattern=r"^[^\x00]*$")


class AlertResolve(Strict):
    """Resolving needs a note saying what was found: some text that is not all blank."""

    note: str = Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")


class WebhookEndpointUpdate(Strict):
    """A rights holder's webhook endpoint and which alerts it wants."""

    url: str = Field(max_length=2048, description="http(s) URL the gateway POSTs events to")
    minSeverity: Literal["low", "medium", "high", "critical"] = Field(
        "low", description="deliver only alerts at or above this severity"
    )
    rules: list[Annotated[str, Field(pattern=r"^[A-Za-z_]{1,40}$")]] = Field(
        default_factory=list,
        max_length=64,
        description="alert classes (clone, diversion…) or reason codes; empty: all alerts",
    )
    enabled: bool = Field(True, description="false holds deliveries until enabled again")


class WebhookEndpointPublic(BaseModel):
    organizationId: int
    url: str
    minSeverity: str
    rules: list[str]
    enabled: bool
    disabledReason: str | None = Field(description="why the gateway disabled it (410 Gone)")
    secret: str | None = Field(
        None, description="signing secret: shown once, at creation and at each rotation"
    )
    previousSecretExpiresAt: datetime | None = Field(
        None, description="until then deliveries carry a second v1= signature (old secret)"
    )
    backlog: dict[str, int] = Field(description="undelivered deliveries by status")
    createdAt: datetime
    updatedAt: datetime


class WebhookDeliveryPublic(BaseModel):
    deliveryId: str = Field(description="also the BorderLedger-Delivery header: dedupe on it")
    organizationId: int
    event: str
    alertId: str | None
    status: Literal["pending", "failing", "delivered", "failed", "cancelled"]
    attempts: int
    nextAttemptAt: datetime | None
    lastStatusCode: int | None
    lastError: str | None
    lastAttemptAt: datetime | None
    deliveredAt: datetime | None
    createdAt: datetime
    payload: dict[str, Any] = Field(description="the JSON body posted")


# ------------------------------------------------------------------ trust bundle


class BundleSignature(BaseModel):
    algorithm: str = Field(description="Ed25519")
    keyId: str = Field(description="first 16 hex digits of SHA-256 of the public key")
    publicKey: str = Field(description="raw Ed25519 public key, hex (informational: pin yours)")
    value: str = Field(description="base64url Ed25519 signature over the decoded payload bytes")


class TrustBundlePublic(BaseModel):
    """Detached envelope: `payload` is base64url of the exact canonical-JSON bytes signed."""

    format: str = Field(description="borderledger/trust-bundle-envelope/1")
    payload: str = Field(description="base64url (no padding) of the signed payload bytes")
    signature: BundleSignature


class GatewayKeyPublic(BaseModel):
    algorithm: str
    publicKey: str = Field(description="raw Ed25519 public key, 64 hex digits")
    keyId: str


# ------------------------------------------------------------- devices and offline sync

#: Scans per sync request; the scanner sends batches of 100 by default.
MAX_SYNC_BATCH = 500


class DeviceCreate(Strict):
    name: str = Field(min_length=1, max_length=100, pattern=PRINTABLE)
    publicKey: str = Field(
        min_length=40,
        max_length=400,
        pattern=r"^[^\x00]*$",
        description="Ed25519 public key: base64 of its 32 raw bytes (as `borderledger device "
        "init` prints it), or a PEM SubjectPublicKeyInfo block",
    )


class DevicePublic(BaseModel):
    deviceId: str
    name: str
    publicKey: str
    organizationId: int
    createdAt: datetime
    revokedAt: datetime | None


class SignedScan(Strict):
    record: str = Field(
        min_length=2,
        max_length=16_384,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="the scan record's canonical JSON text, exactly as signed",
    )
    signature: str = Field(
        min_length=1, max_length=100, description="Ed25519 signature over the record, base64"
    )


class SyncRequest(Strict):
    deviceId: str = Field(pattern=r"^dev-[0-9a-f]{32}$")
    scans: list[SignedScan] = Field(min_length=1, max_length=MAX_SYNC_BATCH)


class SyncScanResult(BaseModel):
    """One scan's outcome: `accepted` (judged now, with the online verdict), `duplicate`
    (already synced: nothing stored again) or `rejected` (`reason`, `message`)."""

    position: int = Field(description="the scan's position in the request")
    scanId: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = None
    message: str | None = None
    origin: str | None = None
    verdict: str | None = None
    summary: str | None = None
    reasons: list[str] | None = None
    item: Item | None = None
    batchId: str | None = None
    index: IndexInfo | None = None
    scannedAt: str | None = None
    location: str | None = None
    findings: list[Finding] | None = None
    offlineVerdict: str | None = None
    verdictDisagrees: bool | None = None


class SyncResponse(BaseModel):
    deviceId: str
    counts: dict[str, int]
    results: list[SyncScanResult]


# ------------------------------------------------------------------ chain of custody


class LocationCreate(Strict):
    unlocode: str = Field(pattern=UNLOCODE, description="UN/LOCODE")
    name: str = Field(min_length=1, max_length=200, pattern=NAME)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    glns: list[Annotated[str, Field(pattern=r"^[0-9]{13}$")]] = Field(
        default_factory=list, max_length=100, description="GLNs naming this place in EPCIS"
    )


class LocationPublic(BaseModel):
    unlocode: str
    name: str
    country: str
    latitude: float
    longitude: float
    glns: list[str]


class CapturedEvent(BaseModel):
    eventId: str
    errorDeclaration: bool
    status: Literal["stored", "duplicate"]
    logIndex: int = Field(description="the event's entry in the custody log")
    location: str | None = Field(description="UN/LOCODE of the registered place, if any")


class CaptureResponse(BaseModel):
    """What an EPCIS capture stored: each event once (`duplicate` when already captured)."""

    stored: int
    duplicates: int
    events: list[CapturedEvent]
    unknownGtins: list[str] = Field(description="GTINs no batch is enrolled under")
    findings: list[dict[str, Any]] = Field(description="detector alerts the events raised")


class TimelineItem(BaseModel):
    gtin: str
    serial: str
    key: str = Field(description="the item key: keccak256(abi.encode(gtin, serial))")


class CustodyLog(BaseModel):
    agency: str | None = Field(description="address of the agency anchoring the log")
    registry: str
    previousRegistries: list[str] = Field(
        default_factory=list,
        description="registries an upgrade replaced: an old batch's enrollment names one",
    )
    chainId: int
    size: int = Field(description="entries in the log")


class TimelineEntry(BaseModel):
    """A log-backed step of the item's history, with its inclusion proof when anchored.

    `withheld`: recorded by a party whose records the reader may not read; only its log
    index, leaf hash, proof and its link about this item are shown (the proof still
    verifies), `kind` is "withheld" and `v`, `time`, `record` are null."""

    logIndex: int
    kind: str
    v: int | None = Field(
        description="the entry format version whose canonical bytes hash to `leafHash` "
        "(1: legacy JSON, 2: RFC 8785); an auditor re-encodes the record with it"
    )
    time: str | None
    summary: str
    via: str | None = Field(description="the container the item travelled in, if any")
    record: dict[str, Any] | None = Field(description="the logged record, as hashed")
    previous: dict[str, Any]
    leafHash: str | None
    withheld: bool = Field(False, description="shown as its leaf hash only")
    anchoring: Literal["pending", "anchored"]
    checkpointSize: int | None
    inclusionProof: list[str] = Field(description="RFC 9162 inclusion proof, hex")


class TimelineStatusChange(BaseModel):
    level: Literal["item", "batch"]
    previous: str
    status: str
    by: str
    txHash: str
    blockNumber: int
    time: str


class TimelineAlert(BaseModel):
    alertId: str
    rule: str
    reasonCode: str
    severity: str
    location: str
    evidence: list[str]
    status: str
    createdAt: str


class AnchoredCheckpoint(BaseModel):
    agency: str
    size: int
    root: str
    txHash: str | None
    blockNumber: int | None


class ConsistencyStep(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_size: int = Field(alias="from")
    to: int
    proof: list[str] = Field(description="RFC 9162 consistency proof, hex")


class CustodyTimelinePublic(BaseModel):
    """An item's chain of custody; `?format=epcis` answers an EPCIS 2.0 document instead."""

    item: TimelineItem
    log: CustodyLog
    enrollment: dict[str, Any] | None = Field(
        description="the item's enrollment proof and batch, when the gateway can prove it"
    )
    entries: list[TimelineEntry]
    statusChanges: list[TimelineStatusChange]
    alerts: list[TimelineAlert]
    checkpoints: list[AnchoredCheckpoint]
    consistency: list[ConsistencyStep]


class CheckpointPublic(BaseModel):
    agency: str
    size: int
    root: str
    status: Literal["queued", "anchored", "failed"]
    txHash: str | None
    blockNumber: int | None
    error: str | None
    matchesLog: bool = Field(description="false for a root that is not this log's at its size")


class CheckpointListPublic(BaseModel):
    agency: str | None
    registry: str
    chainId: int
    size: int
    checkpoints: list[CheckpointPublic]


class ConsistencyProofPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_size: int = Field(alias="from")
    to_size: int = Field(alias="to")
    fromRoot: str
    toRoot: str
    proof: list[str] = Field(description="RFC 9162 consistency proof, hex")


# ------------------------------------------------------------------ health and formats


class HealthResponse(BaseModel):
    status: Literal["ok"]


class IndexLag(BaseModel):
    block: int
    chainHead: int | None
    lagBlocks: int | None


class ReadinessResponse(BaseModel):
    """200 when ready, 503 (same body) when the database or the chain is unreachable."""

    status: Literal["ready", "degraded"]
    database: str = Field(description='"ok" or "unreachable: <error type>"')
    chain: str = Field(description='"ok" or "unreachable: <error type>"')
    index: IndexLag


class TagFormatPublic(BaseModel):
    """How tags are signed and items committed to (docs/formats.md)."""

    eip712: dict[str, Any] = Field(description="EIP-712 domain, types and encodeType of a tag")
    merkle: dict[str, Any] = Field(description="the Merkle tree's library, leaf and node rules")
    digitalLink: str
    batchId: str
    itemKey: str


class AuditorGrantUpdate(BaseModel):
    """What an auditor may read: every rights holder's records (`all`), or those of the
    holders named (organization ids). An empty grant withdraws everything."""

    model_config = ConfigDict(extra="forbid")

    all: bool = False
    holders: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        default_factory=list, max_length=1000
    )


class AuditorGrantPublic(BaseModel):
    organizationId: int
    all: bool
    holders: list[int]


# ------------------------------------------------------------------------------------ cases

CATEGORY = r"^[a-z][a-z0-9_]{0,39}$"
COUNTRY = r"^[A-Z]{2}$"


class CaseLineCreate(Strict):
    """One product under one right: quantity and unit MSRP (cents of the case's currency)."""

    category: str = Field(pattern=CATEGORY, description="product category, e.g. watches_jewelry")
    quantity: int = Field(ge=1, le=1_000_000_000)
    unitMsrpCents: int = Field(0, ge=0, le=10**12)
    gtin: str | None = Field(None, pattern=r"^\d{14}$")
    description: str = Field("", max_length=300, pattern=PRINTABLE)
    right: Literal["trademark", "copyright", "design", "patent", "itc_exclusion"] | None = None


class CasePartyCreate(Strict):
    """An importer, declarant, exporter, manufacturer or consignee (personal data)."""

    role: Literal["importer", "declarant", "exporter", "manufacturer", "consignee"]
    name: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)
    address: str = Field("", max_length=500, pattern=PRINTABLE)
    country: str | None = Field(None, pattern=COUNTRY)


class CaseCreate(Strict):
    """Open a case for a shipment: from a scan's verdict, an alert, or by hand."""

    profile: str = Field(pattern=r"^[a-z0-9-]{1,40}$", description="jurisdiction profile id")
    memberState: str | None = Field(
        None, pattern=COUNTRY, description="EU profiles: the member state holding the goods"
    )
    source: Literal["scan", "alert", "manual"] = "manual"
    scanId: str | None = Field(None, pattern=r"^[0-9a-f-]{36}$")
    alertId: str | None = Field(None, pattern=r"^[0-9a-f-]{36}$")
    reference: str = Field("", max_length=64, pattern=PRINTABLE, description="entry / AWB number")
    mode: Literal["express", "mail", "cargo", "passenger", "other"]
    port: str | None = Field(None, pattern=UNLOCODE)
    timezone: str | None = Field(None, max_length=64, description="the port's IANA time zone")
    origin: str | None = Field(None, pattern=COUNTRY)
    departure: str | None = Field(None, pattern=COUNTRY)
    hsCode: str | None = Field(None, pattern=r"^\d{4,10}$")
    description: str = Field("", max_length=500, pattern=PRINTABLE)
    currency: Literal["USD", "EUR"] = "USD"
    presentedAt: DateTime
    perishable: bool = False
    rightsHolders: list[int] = Field(default_factory=list, max_length=20)
    lines: list[CaseLineCreate] = Field(default_factory=list, max_length=1000)
    parties: list[CasePartyCreate] = Field(default_factory=list, max_length=5)
    identifyingMarks: list[Annotated[str, Field(max_length=100, pattern=PRINTABLE)]] = Field(
        default_factory=list, max_length=100
    )

    @field_validator("presentedAt")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("presentedAt needs a time zone (e.g. 2024-03-01T09:00:00Z)")
        return value.astimezone(UTC)


class CaseActionRequest(Strict):
    """An action on a case; replaying the same idempotency key applies it once."""

    action: str = Field(pattern=r"^[a-z_]{1,40}$")
    idempotencyKey: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,80}$")
    params: dict[str, Any] = Field(default_factory=dict)


class CaseApprovalRequest(Strict):
    idempotencyKey: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,80}$")


class CasePartyAnswer(Strict):
    """A party's answer through its single-use link (answer, consent, object, abandon)."""

    action: str = Field(pattern=r"^[a-z_]{1,40}$")
    text: str = Field("", max_length=4000, pattern=r"^[^\x00]*$")


class CaseAttachmentPublic(BaseModel):
    """A file added to a case, its type read from its bytes; `replayed` when the same bytes
    were already attached (nothing added)."""

    attachmentId: str
    sha256: str
    mediaType: str
    fileName: str
    size: int
    actionId: str
    actor: str
    #: image_redacted, image_unredacted or document (docs/cases.md, "Attachments")
    kind: str = "document"
    createdAt: datetime
    replayed: bool = False


class CaseActionPublic(BaseModel):
    actionId: str
    action: str
    status: Literal["applied", "pending_approval", "approved"]
    by: str
    actor: str
    stateBefore: str
    stateAfter: str | None
    stageAfter: str | None
    approvedBy: str | None
    logIndex: int | None
    createdAt: datetime
    appliedAt: datetime | None
    replayed: bool = False
    partyLink: str | None = Field(None, description="single-use link token (shown once)")


class CaseClockPublic(BaseModel):
    name: str
    unit: str
    days: int
    startedAt: datetime
    dueDay: str
    dueAt: datetime
    remindAt: datetime
    daysLeft: int | None
    status: str
    overdue: bool


class CasePublic(BaseModel):
    """A case as one viewer may read it: fields its stage does not disclose are absent."""

    id: str | None = None
    profile: str | None = None
    jurisdiction: str | None = None
    state: str | None = None
    stage: str | None = None
    outcome: str | None = None
    perishable: bool | None = None
    presentedAt: datetime | None = None
    openedAt: datetime | None = None
    clocks: list[CaseClockPublic] | None = None
    history: list[dict[str, Any]] | None = None
    flags: list[str] | None = None
    nextDueAt: datetime | None = None
    reference: str | None = None
    dateOfImport: str | None = None
    port: str | None = None
    description: str | None = None
    quantity: int | None = None
    origin: str | None = None
    mode: str | None = None
    hsCode: str | None = None
    lines: list[dict[str, Any]] | None = None
    #: the scanned items (scanId, gtin, serial, lot, verdict, port, scannedAt, shipment; the
    #: agency also reads `holder`): a rights holder only its own products' and from the stage
    #: revealing `items`
    items: list[dict[str, Any]] | None = None
    msrp: dict[str, Any] | None = None
    imagesRedacted: list[dict[str, Any]] | None = None
    imagesUnredacted: list[dict[str, Any]] | None = None
    identifyingMarks: list[str] | None = None
    sample: dict[str, Any] | None = None
    limitedUseNotice: str | None = None
    manufacturer: dict[str, Any] | None = None
    exporter: dict[str, Any] | None = None
    importer: dict[str, Any] | None = None
    declarant: dict[str, Any] | None = None
    consignee: dict[str, Any] | None = None
    rightsHolders: list[int] | None = None
    custody: dict[str, Any] | None = None
    notes: list[dict[str, Any]] | None = None
    timeline: list[dict[str, Any]] | None = None
    documents: list[dict[str, Any]] | None = None
    actionsAllowed: list[str] | None = None


class CaseNoticePublic(BaseModel):
    """A reminder before a case's deadline, or the deadline's expiry (the officer's inbox)."""

    caseId: str
    clock: str
    kind: Literal["reminder", "expired"]
    dueAt: datetime
    createdAt: datetime


class StatisticsRow(BaseModel):
    group: dict[str, str | None]
    seizures: int
    lines: int
    quantity: int
    msrpCents: int


class StatisticsResponse(BaseModel):
    by: list[str]
    start: datetime | None
    end: datetime | None
    rows: list[StatisticsRow]
    totals: StatisticsRow
