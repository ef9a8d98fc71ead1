"""Database tables of the gateway (SQLModel), portable between SQLite and PostgreSQL.

Three families:
- what the gateway owns: organizations, API keys, the batch secrets and Merkle trees of
  batches enrolled through it, scans, queued chain writes, background jobs;
- the chain index (`Indexed*`), derived only from the registry's events by `api.indexer`
  and rebuilt from `ChainLog` after a reorganization;
- `IndexerState`, the indexer's checkpoint.

Hashes and addresses are stored as 0x-prefixed lowercase hex text (addresses checksummed),
so rows read the same in either database and in the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, LargeBinary, UniqueConstraint
from sqlmodel import JSON, Field, SQLModel

#: 64-bit ids on PostgreSQL; SQLite only auto-increments a plain INTEGER PRIMARY KEY.
BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Role(StrEnum):
    ADMIN = "admin"
    RIGHTS_HOLDER = "rights_holder"
    CUSTOMS = "customs"
    AUDITOR = "auditor"


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    role: Role
    address: str | None = Field(default=None, index=True, max_length=42)
    #: The organization's chain key, encrypted with the gateway's secret key (Fernet).
    key_encrypted: str | None = None
    #: A rights holder's tag-signing key, encrypted likewise.
    signer_key_encrypted: str | None = None
    signer_address: str | None = Field(default=None, max_length=42)
    created_at: datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    #: SHA-256 of the key: keys are 256-bit random, so a slow hash adds nothing.
    key_hash: str = Field(unique=True, index=True, max_length=64)
    prefix: str = Field(max_length=12)
    #: What the key is for, chosen by the organization ("default" for the first one).
    name: str = Field(default="default", max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class GatewayBatch(SQLModel, table=True):
    """A batch enrolled through the gateway: the secret and tree that let it prove items."""

    __tablename__ = "gateway_batches"

    batch_id: str = Field(primary_key=True, max_length=66)
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    gtin: str = Field(index=True, max_length=14)
    lot: str = Field(max_length=20)
    expiry: str | None = Field(default=None, max_length=6)
    item_count: int
    root: str = Field(max_length=66)
    metadata_hash: str = Field(max_length=66)
    signer: str = Field(max_length=42)
    secret_encrypted: str
    route_policy: dict[str, object] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)


class BatchTree(SQLModel, table=True):
    """All Merkle tree nodes of a gateway batch (32 bytes each), in the npm library's layout."""

    __tablename__ = "batch_trees"

    batch_id: str = Field(primary_key=True, foreign_key="gateway_batches.batch_id", max_length=66)
    nodes: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: zlib of the serials joined by newlines, in input order (for tag downloads).
    serials_z: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ScanEvent(SQLModel, table=True):
    """One verification at a border: what was scanned, where, and the verdict given."""

    __tablename__ = "scan_events"

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    organization_id: int | None = Field(default=None, index=True)
    gtin: str | None = Field(default=None, index=True, max_length=14)
    lot: str | None = Field(default=None, max_length=20)
    serial: str | None = Field(default=None, max_length=20)
    batch_id: str | None = Field(default=None, index=True, max_length=66)
    input_kind: str = Field(max_length=16)
    location: str | None = Field(default=None, max_length=5)
    latitude: float | None = None
    longitude: float | None = None
    #: The shipment reference the officer set (entry, air-waybill or parcel number), so the
    #: scans of one consignment group together for a detention case.
    shipment: str | None = Field(default=None, index=True, max_length=35)
    scan_id: str = Field(unique=True, index=True, max_length=36)
    scanned_at: datetime
    recorded_at: datetime = Field(default_factory=utcnow)
    verdict: str = Field(max_length=32, index=True)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    index_block: int
    #: "online" (POST /v1/verify) or "offline" (queued on a device, POST /v1/scans/sync).
    origin: str = Field(default="online", max_length=8)
    #: The registered device that signed an offline scan (api.models.Device.device_id).
    device_id: str | None = Field(default=None, index=True, max_length=40)
    #: The verdict the device gave offline, when it had one (None for online scans).
    offline_verdict: str | None = Field(default=None, max_length=32)
    #: The signed record exactly as the device sent it, and its Ed25519 signature (base64):
    #: evidence anyone can re-check with the device's public key.
    signed_record: str | None = None
    signature: str | None = Field(default=None, max_length=100)
    #: Who scanned: "api_key" or "user", its id, and its name then (key prefix or email).
    actor_kind: str | None = Field(default=None, max_length=8)
    actor_id: int | None = Field(default=None, index=True)
    actor_name: str | None = Field(default=None, max_length=254)


class Device(SQLModel, table=True):
    """An officer's handheld, registered by its customs agency: it signs scans made offline.

    `device_id` is derived from the public key (docs/formats.md), so the device knows its id
    before it is registered and a key can belong to one agency only."""

    __tablename__ = "devices"

    id: int | None = Field(default=None, primary_key=True)
    device_id: str = Field(unique=True, index=True, max_length=40)
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    name: str = Field(max_length=100)
    #: Raw 32-byte Ed25519 public key, base64 (standard alphabet, padded).
    public_key: str = Field(unique=True, max_length=44)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class WriteStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"


class PendingWrite(SQLModel, table=True):
    """A chain write accepted by the gateway and submitted when the chain is reachable."""

    __tablename__ = "pending_writes"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=200)
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    kind: str = Field(max_length=32)
    payload: dict[str, object] = Field(sa_column=Column(JSON, nullable=False))
    status: WriteStatus = Field(default=WriteStatus.QUEUED, index=True)
    signed_tx: str | None = None
    tx_hash: str | None = Field(default=None, max_length=66)
    block_number: int | None = Field(default=None, index=True)
    error: str | None = None
    attempts: int = 0
    #: times the chain dropped the landed transaction (a reorganization) and it was re-submitted
    reorgs: int = 0
    reorged_at: datetime | None = None
    #: The lease of the gateway process submitting it (api.outbox), so two processes never
    #: sign the same write.
    claim_token: str | None = Field(default=None, max_length=36)
    claimed_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for a runner (again, after a runner's lease expired)
    RUNNING = "running"  # leased by a runner, heartbeating
    DONE = "done"
    FAILED = "failed"  # retryable by API
    CANCELLED = "cancelled"  # retryable by API


class Job(SQLModel, table=True):
    """Background work, run by `api.jobs.JobRunner` in any gateway process.

    The input lives in the database (`params`, and `JobInput` chunks for item lists), so a
    job outlives the process that accepted it. A runner claims it with a lease
    (`claim_token`, `claimed_until`) that its heartbeat extends; when the runner dies the
    lease expires and any runner claims the job again (`attempts` counts the claims).
    `cancellable` turns false at the job's point of no return (e.g. once an enrollment's
    batch is stored and its registration queued)."""

    __tablename__ = "jobs"

    id: str = Field(primary_key=True, max_length=36)
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    kind: str = Field(max_length=32)
    status: str = Field(default=JobStatus.QUEUED.value, max_length=16, index=True)
    done: int = 0
    total: int = 0
    params: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict[str, object] | None = Field(default=None, sa_column=Column(JSON))
    error: str | None = None
    attempts: int = 0
    cancellable: bool = True
    claim_token: str | None = Field(default=None, max_length=36)
    claimed_until: datetime | None = None
    #: host:pid of the runner holding (or last holding) the lease, for operators.
    claimed_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobInput(SQLModel, table=True):
    """A job's stored item list, in chunks of up to `api.jobs.INPUT_CHUNK` items: zlib of the
    items joined by newlines. Chunks keep a 1,000,000-item input at ~100 rows (one round trip
    each to write or read) instead of a million, let a runner stream it back, and are the
    unit of resumption (`output`)."""

    __tablename__ = "job_inputs"

    job_id: str = Field(primary_key=True, foreign_key="jobs.id", max_length=36)
    seq: int = Field(primary_key=True)
    count: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: What the job made of this chunk (an enrollment: its leaves), kept so that a later
    #: attempt resumes after the last finished chunk instead of starting over.
    output: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


# ------------------------------------------------------------------------------- chain index


class ChainLog(SQLModel, table=True):
    """Every registry event the indexer accepted, raw, so the index can be rebuilt after a reorg."""

    __tablename__ = "chain_logs"
    __table_args__ = (UniqueConstraint("block_number", "log_index"),)

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    block_number: int = Field(index=True)
    block_hash: str = Field(max_length=66)
    block_timestamp: int
    log_index: int
    tx_hash: str = Field(max_length=66, index=True)
    event: str = Field(max_length=40)
    args: dict[str, object] = Field(sa_column=Column(JSON, nullable=False))
    #: the registry that emitted the log (the current one or one an upgrade replaced)
    registry_address: str = Field(
        default="", max_length=42, sa_column_kwargs={"server_default": ""}
    )


class IndexedBlock(SQLModel, table=True):
    """Hashes of recently indexed blocks, to notice when the chain has reorganized under us."""

    __tablename__ = "indexed_blocks"

    number: int = Field(primary_key=True)
    hash: str = Field(max_length=66)


class IndexerState(SQLModel, table=True):
    __tablename__ = "indexer_state"

    id: int = Field(default=1, primary_key=True)
    registry_address: str = Field(max_length=42)
    chain_id: int
    last_block: int = -1
    last_block_hash: str | None = Field(default=None, max_length=66)
    head_block: int = -1
    updated_at: datetime = Field(default_factory=utcnow)
    #: every registry indexed, comma-separated (the current one and those it replaced; None
    #: before the index followed previous registries: the current one only)
    registries: str | None = None


class IndexedRightsHolder(SQLModel, table=True):
    __tablename__ = "idx_rights_holders"

    address: str = Field(primary_key=True, max_length=42)
    name: str
    recordation: str
    block_number: int
    #: block time of the holder's revocation (None while accredited); revocation is final
    revoked_at: int | None = None


class IndexedGtinBinding(SQLModel, table=True):
    """Which rights holder a GTIN is bound to on chain (GtinBound, then GtinReassigned)."""

    __tablename__ = "idx_gtin_bindings"

    gtin: str = Field(primary_key=True, max_length=14)
    holder: str = Field(max_length=42, index=True)
    block_number: int
    #: the holder before the latest reassignment (None if never reassigned)
    previous: str | None = Field(default=None, max_length=42)


class IndexedPrefixBinding(SQLModel, table=True):
    """Which rights holder a GS1 company prefix is bound to on chain (CompanyPrefixBound; the
    row goes with CompanyPrefixUnbound). A GTIN bound on its own wins over every prefix."""

    __tablename__ = "idx_prefix_bindings"

    prefix: str = Field(primary_key=True, max_length=12)
    holder: str = Field(max_length=42, index=True)
    block_number: int


class IndexedCustomsAgency(SQLModel, table=True):
    __tablename__ = "idx_customs_agencies"

    address: str = Field(primary_key=True, max_length=42)
    name: str
    block_number: int


class IndexedSigner(SQLModel, table=True):
    __tablename__ = "idx_signers"

    address: str = Field(primary_key=True, max_length=42)
    holder: str = Field(index=True, max_length=42)
    added_at: int
    revoked_at: int | None = None
    block_number: int


class IndexedBatch(SQLModel, table=True):
    __tablename__ = "idx_batches"

    batch_id: str = Field(primary_key=True, max_length=66)
    holder: str = Field(index=True, max_length=42)
    gtin: str = Field(index=True, max_length=14)
    lot: str = Field(max_length=20)
    root: str = Field(max_length=66)
    item_count: int
    metadata_hash: str = Field(max_length=66)
    registered_at: int
    status: int = 0
    tx_hash: str = Field(max_length=66)
    block_number: int
    block_hash: str = Field(max_length=66)
    #: the registry holding the batch (after an upgrade, old batches stay on the old one)
    registry_address: str = Field(
        default="", max_length=42, sa_column_kwargs={"server_default": ""}
    )


class IndexedItemStatus(SQLModel, table=True):
    __tablename__ = "idx_item_statuses"

    batch_id: str = Field(primary_key=True, max_length=66)
    item_key: str = Field(primary_key=True, max_length=66)
    leaf: str = Field(max_length=66)
    status: int
    block_number: int
    tx_hash: str = Field(max_length=66)


class IndexedStatusChange(SQLModel, table=True):
    """History of batch and item status changes (for custody timelines)."""

    __tablename__ = "idx_status_changes"

    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(index=True, max_length=66)
    item_key: str | None = Field(default=None, index=True, max_length=66)
    previous: int
    status: int
    by: str = Field(max_length=42)
    block_number: int
    block_timestamp: int
    tx_hash: str = Field(max_length=66)


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(SQLModel, table=True):
    """A detector finding (diversion, clone, status, volume, probing) for officers to examine.

    `organization_id` is the rights holder of the batch (None for GTIN-level probing alerts);
    `evidence` the scan ids (and status report ids) that raised it."""

    __tablename__ = "alerts"

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    alert_id: str = Field(unique=True, index=True, max_length=36)
    rule: str = Field(index=True, max_length=16)
    reason_code: str = Field(index=True, max_length=40)
    severity: str = Field(index=True, max_length=16)
    batch_id: str | None = Field(default=None, index=True, max_length=66)
    gtin: str = Field(max_length=14)
    serial: str | None = Field(default=None, max_length=20)
    location: str = Field(index=True, max_length=5)
    evidence: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    detail: str = Field(default="", max_length=500)
    status: str = Field(default=AlertStatus.OPEN.value, index=True, max_length=16)
    note: str | None = None
    organization_id: int | None = Field(default=None, foreign_key="organizations.id", index=True)
    #: The organization whose scan (or captured custody event) raised it; None for alerts the
    #: chain index raised (a batch status change) and for alerts stored before it was kept.
    raised_by: int | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class AuditorGrant(SQLModel, table=True):
    """What the registry admin let an auditor read: every rights holder's records
    (`holder_id` None) or one named holder's (one row each). No row: nothing beyond the
    auditor's own organization (`api.scoping`)."""

    __tablename__ = "auditor_grants"
    __table_args__ = (UniqueConstraint("auditor_id", "holder_id"),)

    id: int | None = Field(default=None, primary_key=True)
    auditor_id: int = Field(foreign_key="organizations.id", index=True)
    holder_id: int | None = Field(default=None, foreign_key="organizations.id")
    granted_at: datetime = Field(default_factory=utcnow)


# --------------------------------------------------------------------------- alert webhooks


class WebhookEndpoint(SQLModel, table=True):
    """A rights holder's webhook endpoint (one per organization) and its event filter.

    The secret is sealed with the gateway's secret key (`api.crypto`) and shown to the holder
    once. During a rotation the previous secret keeps signing (a second `v1=`) until
    `previous_secret_expires_at`, so the receiver can switch without losing deliveries."""

    __tablename__ = "webhook_endpoints"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organizations.id", unique=True, index=True)
    url: str = Field(max_length=2048)
    secret_encrypted: str
    previous_secret_encrypted: str | None = None
    previous_secret_expires_at: datetime | None = None
    #: Deliver only alerts at or above this severity.
    min_severity: str = Field(default="low", max_length=16)
    #: Alert classes or reason codes to deliver; empty: every alert.
    rules: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    #: Why the gateway disabled it (a 410 Gone answer); None when the holder did.
    disabled_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not attempted yet
    FAILING = "failing"  # attempted, failed, retried at next_attempt_at
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # gave up after the last attempt (redeliverable)
    CANCELLED = "cancelled"  # the endpoint was removed before delivery


class WebhookDelivery(SQLModel, table=True):
    """One event for one rights holder: a row of the transactional outbox of webhooks.

    Written in the same transaction as the alert it announces, so an alert the gateway stored
    is always delivered eventually. A sender claims it by setting `claim_token` and
    `claimed_until` (a lease); a sender that dies mid-delivery loses the lease and another
    one sends again under the same `delivery_id`, which receivers use to drop duplicates."""

    __tablename__ = "webhook_deliveries"

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    delivery_id: str = Field(unique=True, index=True, max_length=36)
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    event: str = Field(max_length=40)
    alert_id: str | None = Field(default=None, index=True, max_length=36)
    payload: dict[str, object] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default=DeliveryStatus.PENDING.value, index=True, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    claim_token: str | None = Field(default=None, max_length=36)
    claimed_until: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class DetectorItem(SQLModel, table=True):
    """Detector state of one item (detector.dbstore): its recent sightings, places, statuses,
    msgpack in `state` (docs/detector.md, "Stored state"); `version` is the optimistic-concurrency counter every write checks."""

    __tablename__ = "detector_items"

    key: str = Field(primary_key=True, max_length=64)  # gtin/serial
    batch_id: str | None = Field(default=None, index=True, max_length=66)
    last_seen: float | None = None
    version: int = Field(default=1)
    state: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class DetectorVolume(SQLModel, table=True):
    """Distinct items of a batch seen in a market (the volume rule), incremented atomically."""

    __tablename__ = "detector_volume"

    batch_id: str = Field(primary_key=True, max_length=66)
    market: str = Field(primary_key=True, max_length=2)
    seen: int = 0


class DetectorBatchStatus(SQLModel, table=True):
    """A batch status as the detector knows it: effective from `since` (the earliest wins)."""

    __tablename__ = "detector_batch_statuses"

    batch_id: str = Field(primary_key=True, max_length=66)
    kind: str = Field(primary_key=True, max_length=16)
    since: float
    report_id: str = Field(max_length=200)


# ------------------------------------------------------------------------------ custody log


class CustodyEvent(SQLModel, table=True):
    """An EPCIS 2.0 event captured through `POST /v1/epcis/capture`, exactly as received.

    Unique on (event_id, is_error_declaration): capturing the same event twice stores it once,
    and an error declaration (which repeats the eventID of the event it retracts) is kept
    next to that event."""

    __tablename__ = "custody_events"
    __table_args__ = (UniqueConstraint("event_id", "is_error_declaration"),)

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    event_id: str = Field(index=True, max_length=500)
    is_error_declaration: bool = False
    event_id_derived: bool = False
    type: str = Field(max_length=32)
    action: str | None = Field(default=None, max_length=16)
    event_time: datetime = Field(index=True)
    biz_step: str | None = Field(default=None, max_length=500)
    disposition: str | None = Field(default=None, max_length=500)
    read_point: str | None = Field(default=None, max_length=500)
    biz_location: str | None = Field(default=None, max_length=500)
    #: The UN/LOCODE the read point or business location resolved to (None if unknown).
    location: str | None = Field(default=None, max_length=5)
    raw: dict[str, object] = Field(sa_column=Column(JSON, nullable=False))
    #: The capturing document's @context (to read the event's `prefix:name` extensions).
    context: list[object] | None = Field(default=None, sa_column=Column(JSON))
    captured_by: int | None = Field(default=None, foreign_key="organizations.id", index=True)
    captured_at: datetime = Field(default_factory=utcnow)
    log_index: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))


class CustodyItem(SQLModel, table=True):
    """Which things an event names, in which role, so a timeline is an index lookup.

    `key` is the canonical Digital Link of a GS1 identifier (or the URI as given), `role` one
    of epc, parent, child, input, output."""

    __tablename__ = "custody_items"

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    event_row: int = Field(
        sa_column=Column(BigInteger, ForeignKey("custody_events.id"), nullable=False, index=True)
    )
    key: str = Field(index=True, max_length=500)
    role: str = Field(max_length=8)
    gtin: str | None = Field(default=None, max_length=14)
    serial: str | None = Field(default=None, max_length=20)
    event_time: datetime


class LogState(SQLModel, table=True):
    """The custody log's size: one row, updated first in every append transaction, so
    appenders (threads or gateway processes on one database) take indexes in turn."""

    __tablename__ = "log_state"

    id: int = Field(default=1, primary_key=True)
    size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class LogEntry(SQLModel, table=True):
    """One entry of the append-only custody log; `idx` is its leaf index.

    The entry's bytes are not stored: they are recomputed from the row they log (a scan or a
    custody event, `kind` + `ref`) and its links, which is what makes an edit of that row
    visible as a leaf that no longer matches."""

    __tablename__ = "log_entries"

    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    kind: str = Field(max_length=8)
    ref: str = Field(index=True, max_length=64)
    leaf: str = Field(max_length=66)


class LogLink(SQLModel, table=True):
    """Per item (or container) key, its entries in log order, each with the index of the
    previous entry about the same key (the `previous` field of the entry)."""

    __tablename__ = "log_links"

    key: str = Field(primary_key=True, max_length=500)
    idx: int = Field(
        sa_column=Column(BigInteger, primary_key=True, autoincrement=False, index=True)
    )
    prev: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class CheckpointStatus(StrEnum):
    QUEUED = "queued"  #: stored as a chain write, not yet confirmed
    ANCHORED = "anchored"  #: the registry's CheckpointAnchored event is indexed
    FAILED = "failed"


class Checkpoint(SQLModel, table=True):
    """A custody-log checkpoint (size, root) an agency anchors on chain. Only rows the
    indexer saw on chain (`anchored`) are shown to auditors as anchored."""

    __tablename__ = "checkpoints"

    agency: str = Field(primary_key=True, max_length=42)
    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root: str = Field(max_length=66)
    status: str = Field(default=CheckpointStatus.QUEUED.value, index=True, max_length=16)
    write_id: int | None = None
    tx_hash: str | None = Field(default=None, max_length=66)
    block_number: int | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class CustodyLocation(SQLModel, table=True):
    """A place an agency registered (UN/LOCODE, name, coordinates) with the GLNs that name it
    in EPCIS read points, so custody events feed the detector."""

    __tablename__ = "custody_locations"

    locode: str = Field(primary_key=True, max_length=5)
    name: str = Field(max_length=200)
    country: str = Field(max_length=2)
    latitude: float
    longitude: float
    glns: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    organization_id: int | None = Field(default=None, foreign_key="organizations.id")
    created_at: datetime = Field(default_factory=utcnow)


class UserRole(StrEnum):
    """A person's role inside their organization: every organization has admins; the other
    role is given by the organization's kind (`api.users.ROLES_BY_KIND`)."""

    ADMIN = "admin"
    OFFICER = "officer"
    ANALYST = "analyst"
    AUDITOR = "auditor"


class User(SQLModel, table=True):
    """A person of an organization who signs in (docs/people.md)."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    #: Lowercased: one account per address, whatever the spelling typed.
    email: str = Field(unique=True, index=True, max_length=254)
    name: str = Field(max_length=200)
    role: UserRole
    #: The language of the pages ("en", "fr").
    language: str = Field(default="en", max_length=8)
    #: Argon2id (argon2-cffi); None until the invitation is accepted.
    password_hash: str | None = None
    #: SHA-256 of the invitation token (the token itself is shown once).
    invitation_hash: str | None = Field(default=None, index=True, max_length=64)
    invitation_expires_at: datetime | None = None
    failed_logins: int = 0
    locked_until: datetime | None = None
    disabled_at: datetime | None = None
    last_login_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class UserSession(SQLModel, table=True):
    """A signed-in browser: the cookie carries the token, the table keeps its SHA-256, so a
    copy of the database signs nobody in. Deleted on sign-out and when the user is disabled."""

    __tablename__ = "user_sessions"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    #: The synchronizer token every form and unsafe request of this session must carry.
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class AuditEvent(SQLModel, table=True):
    """Who did what in an organization (besides scans, which carry their actor in
    `scan_events`): status changes, enrollments, alert transitions, user and key changes."""

    __tablename__ = "audit_events"

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    organization_id: int = Field(index=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_kind: str = Field(max_length=8)
    actor_id: int
    actor_name: str = Field(max_length=254)
    action: str = Field(max_length=40, index=True)
    subject: str | None = Field(default=None, max_length=300)
    detail: dict[str, object] | None = Field(default=None, sa_column=Column(JSON))


# ----------------------------------------------------------------------------------- cases
# The case tables are in their own module; importing it here registers them with every
# importer of `api.models` (the engine, the migrations, the tests).
from api import case_models as _case_models  # noqa: E402, F401
from api import guide_models as _guide_models  # noqa: E402, F401
