"""Tables of customs cases (docs/cases.md): cases, their lines, rights holders, parties,
party links, actions and clocks, and the notices the clocks raise.

Kept apart from `api.models` for size; `api.models` imports this module at its end, so every
table is registered wherever `api.models` is. Money is in integer cents (USD or EUR, the
case's currency), never floats. Personal data lives only in `case_parties` (name, address),
which can be erased: the custody log holds a salted commitment to it instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import JSON, Field, SQLModel

from api.models import BIG_ID, utcnow


class Case(SQLModel, table=True):
    """One detention: a shipment, its jurisdiction profile and where it stands.

    `next_due_at` is the earliest due time of its running clocks (null when none runs), kept
    with every change so the officer's list (next deadline first, overdue on top) is one
    index scan. `quantity`, `msrp_cents` and `line_count` are the sums of its lines, for the
    statistics that do not group by a line's category."""

    __tablename__ = "cases"
    __table_args__ = (
        # the officer's list: one agency's cases in (next_due_at, id) order, no sort step
        Index("ix_cases_agency_next_due", "agency_id", "next_due_at", "id"),
        # covering the statistics of case-level dimensions: an index-only range scan
        Index(
            "ix_cases_statistics",
            "outcome_at",
            "outcome",
            "origin",
            "mode",
            "port",
            "agency_id",
            "line_count",
            "quantity",
            "msrp_cents",
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    case_id: str = Field(unique=True, index=True, max_length=36)
    agency_id: int = Field(foreign_key="organizations.id", index=True)
    profile: str = Field(index=True, max_length=40)
    jurisdiction: str = Field(max_length=8)
    calendar: str = Field(max_length=8)
    timezone: str = Field(max_length=64)
    state: str = Field(index=True, max_length=32)
    stage: str = Field(max_length=32)
    outcome: str | None = Field(default=None, max_length=16)
    outcome_at: datetime | None = None
    perishable: bool = False
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    extensions: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source: str = Field(max_length=16)
    source_ref: str | None = Field(default=None, max_length=100)
    reference: str = Field(default="", max_length=64)
    mode: str = Field(index=True, max_length=16)
    port: str = Field(index=True, max_length=5)
    origin: str | None = Field(default=None, index=True, max_length=2)
    departure: str | None = Field(default=None, max_length=2)
    right: str = Field(max_length=16)
    hs_code: str | None = Field(default=None, max_length=12)
    description: str = Field(default="", max_length=500)
    currency: str = Field(default="USD", max_length=3)
    quantity: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    msrp_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    line_count: int = 0
    #: What officers record beyond the shipment: images (redacted, unredacted), identifying
    #: marks, sample (bond, return), physical custody (storage, seals), notes, documents.
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    presented_at: datetime = Field(index=True)
    opened_at: datetime = Field(default_factory=utcnow)
    next_due_at: datetime | None = Field(default=None, index=True)
    version: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class CaseLine(SQLModel, table=True):
    """One product under one right in a case: category, quantity and MSRP (a line, not an
    item: a seizure of 5,000 watches is one row)."""

    __tablename__ = "case_lines"
    __table_args__ = (
        # covering the statistics by category and right: an index-only range scan, no join
        Index(
            "ix_case_lines_statistics",
            "outcome_at",
            "outcome",
            "category",
            "right",
            "origin",
            "mode",
            "port",
            "agency_id",
            "case_pk",
            "quantity",
            "msrp_cents",
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    case_pk: int = Field(sa_column=Column(BIG_ID, nullable=False, index=True))
    category: str = Field(max_length=40)
    right: str = Field(max_length=16)
    gtin: str | None = Field(default=None, max_length=14)
    description: str = Field(default="", max_length=300)
    quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    unit_msrp_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    msrp_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    #: Copies of the case's dimensions (the shipment's are fixed; outcome and outcome_at are
    #: written with the case's), so statistics by category read this table alone.
    agency_id: int = Field(default=0)
    origin: str | None = Field(default=None, max_length=2)
    mode: str = Field(default="", max_length=16)
    port: str = Field(default="", max_length=5)
    outcome: str | None = Field(default=None, max_length=16)
    outcome_at: datetime | None = None


class CaseHolder(SQLModel, table=True):
    """A rights holder of a case (what it may read is staged: `cases.disclosure`)."""

    __tablename__ = "case_holders"

    case_pk: int = Field(sa_column=Column(BIG_ID, primary_key=True))
    organization_id: int = Field(primary_key=True, foreign_key="organizations.id", index=True)


class CaseParty(SQLModel, table=True):
    """An importer, declarant, exporter, manufacturer or consignee: personal data, erasable.
    `commitment` = SHA-256(salt ‖ canonical JSON of the party) is what the custody log holds;
    erasing blanks name, address and salt and keeps the commitment, so every proof stays
    valid and nothing links it back to the person."""

    __tablename__ = "case_parties"
    __table_args__ = (UniqueConstraint("case_pk", "role", name="uq_case_parties_case_role"),)

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    case_pk: int = Field(sa_column=Column(BIG_ID, nullable=False, index=True))
    role: str = Field(max_length=16)
    name: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    country: str | None = Field(default=None, max_length=2)
    salt: str | None = Field(default=None, max_length=64)
    commitment: str = Field(max_length=66)
    erased_at: datetime | None = None


class CaseLink(SQLModel, table=True):
    """A single-use link for a party (no account): the SHA-256 of its token, spent by the
    answer it carries."""

    __tablename__ = "case_links"

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    token_hash: str = Field(unique=True, index=True, max_length=64)
    case_pk: int = Field(sa_column=Column(BIG_ID, nullable=False, index=True))
    party: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class CaseAction(SQLModel, table=True):
    """An action on a case, applied once per idempotency key. Seizure and destruction wait
    (`pending_approval`) until a second officer approves them (`approved_by`)."""

    __tablename__ = "case_actions"
    __table_args__ = (
        UniqueConstraint("case_pk", "idempotency_key", name="uq_case_actions_case_key"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    action_id: str = Field(unique=True, index=True, max_length=36)
    case_pk: int = Field(sa_column=Column(BIG_ID, nullable=False, index=True))
    idempotency_key: str = Field(max_length=80)
    action: str = Field(max_length=40)
    by: str = Field(max_length=16)
    actor: str = Field(max_length=80)
    organization_id: int | None = Field(default=None, foreign_key="organizations.id")
    params: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    salt: str | None = Field(default=None, max_length=64)
    status: str = Field(max_length=20)
    state_before: str = Field(max_length=32)
    state_after: str | None = Field(default=None, max_length=32)
    stage_after: str | None = Field(default=None, max_length=32)
    approved_by: str | None = Field(default=None, max_length=80)
    log_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    #: The custody log entry's record exactly as hashed (no personal data: commitments), so
    #: an auditor recomputes the leaf from it and the log's links.
    record: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    applied_at: datetime | None = None


class CaseClock(SQLModel, table=True):
    """One deadline of a case. The clock jobs find due reminders and expiries through the
    two partial-state indexes and mark each once (`reminded_at`, `expired_at` set by a
    conditional UPDATE), so a reminder or alert is stored once whoever runs the job."""

    __tablename__ = "case_clocks"
    __table_args__ = (
        UniqueConstraint("case_pk", "name", "started_at", name="uq_case_clocks_case_name_start"),
        Index("ix_case_clocks_status_remind_at", "status", "remind_at"),
        Index("ix_case_clocks_status_due_at", "status", "due_at"),
        Index("ix_case_clocks_case_status_due", "case_pk", "status", "due_at"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    case_pk: int = Field(sa_column=Column(BIG_ID, nullable=False))
    name: str = Field(max_length=40)
    days: int
    unit: str = Field(max_length=10)
    started_at: datetime
    due_day: str = Field(max_length=10)
    due_at: datetime
    remind_at: datetime
    status: str = Field(default="running", max_length=10)
    reminded_at: datetime | None = None
    expired_at: datetime | None = None
    stopped_at: datetime | None = None


class CaseNotice(SQLModel, table=True):
    """A reminder or an expiry raised by a clock, for the officer's inbox (the agency) and the
    rights holders' webhooks: one per clock and kind (unique)."""

    __tablename__ = "case_notices"
    __table_args__ = (UniqueConstraint("clock_id", "kind", name="uq_case_notices_clock_kind"),)

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    clock_id: int = Field(sa_column=Column(BIG_ID, nullable=False))
    case_pk: int = Field(sa_column=Column(BIG_ID, nullable=False, index=True))
    agency_id: int = Field(foreign_key="organizations.id", index=True)
    kind: str = Field(max_length=10)
    clock: str = Field(max_length=40)
    due_at: datetime
    created_at: datetime = Field(default_factory=utcnow, index=True)


class CaseStatsVersion(SQLModel, table=True):
    """One row counting changes to seizure outcomes, bumped in the transaction of each
    change: a process caches statistics answers under it and recomputes only after a change
    (outcomes change a few times a minute; the statistics are read far more often)."""

    __tablename__ = "case_stats_version"

    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class CaseAttachment(SQLModel, table=True):
    """A file added to a case (photo of the goods, a document), its type checked from its
    bytes (`cases.attachments`). One per content per case: the same bytes sent again are the
    same attachment (an upload retried after a lost answer adds nothing). Its addition is a
    `note` action of the case, so it is in the custody log like every other action."""

    __tablename__ = "case_attachments"
    __table_args__ = (UniqueConstraint("case_pk", "sha256", name="uq_case_attachments_content"),)

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    attachment_id: str = Field(unique=True, index=True, max_length=36)
    case_pk: int = Field(sa_column=Column(BIG_ID, nullable=False, index=True))
    sha256: str = Field(max_length=64)
    media_type: str = Field(max_length=40)
    file_name: str = Field(max_length=200)
    size: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    action_id: str = Field(max_length=36)
    actor: str = Field(max_length=80)
    #: What the officer says the file is: `image_redacted` (shown to the case's rights holder
    #: from the stage revealing `images_redacted`), `image_unredacted` (from the stage
    #: revealing `images_unredacted`) or `document` (the agency's only).
    kind: str = Field(
        default="document", max_length=20, sa_column_kwargs={"server_default": "document"}
    )
    created_at: datetime = Field(default_factory=utcnow)


class CaseItem(SQLModel, table=True):
    """A scanned item of a case: the opening scan and the agency's other scans of the same
    shipment reference, linked when the case opens, and scans an officer adds later (an
    `add_item` action). `holder_id` is the rights holder of the scanned batch, so a holder
    reads only its own products' items (`api.services.cases.shown`)."""

    __tablename__ = "case_items"
    __table_args__ = (UniqueConstraint("case_pk", "scan_id", name="uq_case_items_case_scan"),)

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    case_pk: int = Field(sa_column=Column(BIG_ID, nullable=False, index=True))
    scan_id: str = Field(max_length=36, index=True)
    holder_id: int | None = Field(default=None)
    #: the action that linked it: the opening or an `add_item`
    action_id: str = Field(max_length=36)
    created_at: datetime = Field(default_factory=utcnow)


class CaseStatsRollup(SQLModel, table=True):
    """The seizure statistics summed by month and every dimension (`api.services.rollup`),
    kept in the transaction of each change to a case's outcome, so a year's statistics read
    a few thousand rows instead of every line.

    `grain` says which line dimensions a row splits by: 0 none (a case's sums), 1 category,
    2 right, 3 both; `seizures` counts the distinct cases in the row, which sums exactly over
    the case's own dimensions (a case has one origin, mode, port, outcome and month) but not
    over line dimensions, hence one grain per set of line dimensions. A dimension a row does
    not split by, and a missing origin or month, are stored as '' (unique keys and NULL do
    not mix)."""

    __tablename__ = "case_stats_rollup"
    __table_args__ = (
        UniqueConstraint(
            "grain",
            "month",
            "agency_id",
            "outcome",
            "origin",
            "mode",
            "port",
            "category",
            "right",
            name="uq_case_stats_rollup_key",
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True)
    )
    grain: int
    month: str = Field(max_length=7)
    agency_id: int
    outcome: str = Field(max_length=16)
    origin: str = Field(max_length=2)
    mode: str = Field(max_length=16)
    port: str = Field(max_length=5)
    category: str = Field(max_length=40)
    right: str = Field(max_length=16)
    seizures: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    lines: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    quantity: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    msrp_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
