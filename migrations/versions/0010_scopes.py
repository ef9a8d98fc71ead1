"""scopes: auditor grants, and which organization's scan raised an alert

Revision ID: 0010_scopes
Revises: 0009
Create Date: 2026-12-06 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010_scopes"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auditor_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("auditor_id", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=True),
        sa.Column("granted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["auditor_id"], ["organizations.id"]),
        sa.ForeignKeyConstraint(["holder_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("auditor_id", "holder_id"),
    )
    with op.batch_alter_table("auditor_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auditor_grants_auditor_id"), ["auditor_id"])
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raised_by", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_alerts_raised_by"), ["raised_by"], unique=False)
    # Alerts stored before: raised by the organization of the newest scan in their evidence.
    bind = op.get_bind()
    alerts = sa.table(
        "alerts", sa.column("id", sa.BigInteger()), sa.column("evidence", sa.JSON()),
        sa.column("raised_by", sa.Integer()),
    )  # fmt: skip
    scans = sa.table(
        "scan_events", sa.column("scan_id", sa.String()), sa.column("organization_id", sa.Integer()),
        sa.column("recorded_at", sa.DateTime()),
    )  # fmt: skip
    for alert_id, evidence in bind.execute(sa.select(alerts.c.id, alerts.c.evidence)).all():
        if not evidence:
            continue
        owner = bind.execute(
            sa.select(scans.c.organization_id)
            .where(scans.c.scan_id.in_([str(e) for e in evidence]))
            .order_by(scans.c.recorded_at.desc())
            .limit(1)
        ).scalar()
        if owner is not None:
            bind.execute(sa.update(alerts).where(alerts.c.id == alert_id).values(raised_by=owner))


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_raised_by"))
        batch_op.drop_column("raised_by")
    with op.batch_alter_table("auditor_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auditor_grants_auditor_id"))
    op.drop_table("auditor_grants")
