"""scan shipment: the shipment reference an officer sets once and every scan carries

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 06:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scan_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("shipment", sqlmodel.sql.sqltypes.AutoString(length=35), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_scan_events_shipment"), ["shipment"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("scan_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scan_events_shipment"))
        batch_op.drop_column("shipment")
