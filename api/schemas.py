"""Request and response bodies of the public API (what the OpenAPI document shows)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.models import PendingWrite, Role

UNLOCODE = r"^[A-Z]{2}[A-Z2-9]{3}$"
#: Free text without control characters (PostgreSQL text cannot hold NUL at all).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Location(Strict):
    unlocode: str | None = Field(
        None, pattern=UNLOCODE, description="UN/LOCODE of the port, e.g. NLRTM"
    )
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)


class VerifyRequest(Strict):
    """Either `tag` (the scanned QR payload) or `gtin` + `serial` typed from a label."""

    tag: str | None = Field(None, max_length=2048, description="GS1 Digital Link tag URI")
    gtin: str | None = Field(None, max_length=14)
    serial: str | None = Field(None, max_length=20)
    lot: str | None = Field(None, max_length=20)
    location: Location | None = None
    scanned_at: datetime | None = Field(None, description="when it was scanned (default: now)")

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


class VerifyResponse(BaseModel):
    verdict: Literal[
        "GENUINE", "GENUINE_UNSIGNED", "COUNTERFEIT_SUSPECT", "RECALLED", "STOLEN", "DECOMMISSIONED"
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
    findings: list[Finding] = []


class BatchCreate(Strict):
    gtin: str = Field(max_length=14)
    lot: str = Field(max_length=20)
    serials: list[str] = Field(min_length=1, max_length=10_000_000)
    expiry: str | None = Field(None, pattern=r"^[0-9]{6}$", description="YYMMDD")
    route_policy: dict[str, Any] | None = None


class BatchOut(BaseModel):
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


class StatusChange(Strict):
    status: Literal["active", "recalled", "stolen", "destroyed", "decommissioned"]
    serial: str | None = Field(
        None, max_length=20, description="one item; omit for the whole batch"
    )


class WriteOut(BaseModel):
    id: int
    kind: str
    status: str
    txHash: str | None
    block: int | None
    error: str | None

    @classmethod
    def of(cls, write: PendingWrite) -> WriteOut:
        return cls(
            id=write.id or 0,
            kind=write.kind,
            status=write.status.value,
            txHash=write.tx_hash,
            block=write.block_number,
            error=write.error,
        )


class OrganizationCreate(Strict):
    name: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)
    role: Role
    recordation: str = Field(
        "", max_length=200, pattern=PRINTABLE, description="trademark recordation (rights holders)"
    )


class OrganizationOut(BaseModel):
    id: int
    name: str
    role: Role
    address: str | None
    signer: str | None
    apiKey: str | None = Field(None, description="shown once, at creation")
    writes: list[WriteOut] = []


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


class ErrorOut(BaseModel):
    error: ErrorBody


class AlertOut(BaseModel):
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


class AlertAction(Strict):
    note: str | None = Field(None, max_length=2000, pattern=r"^[^\x00]*$")


class WebhookEndpointIn(Strict):
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


class WebhookEndpointOut(BaseModel):
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


class WebhookDeliveryOut(BaseModel):
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


class TrustBundleOut(BaseModel):
    """Detached envelope: `payload` is base64url of the exact canonical-JSON bytes signed."""

    format: str = Field(description="borderledger/trust-bundle-envelope/1")
    payload: str = Field(description="base64url (no padding) of the signed payload bytes")
    signature: BundleSignature


class GatewayKeyOut(BaseModel):
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


class DeviceOut(BaseModel):
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


class SyncScanOut(BaseModel):
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
    results: list[SyncScanOut]
