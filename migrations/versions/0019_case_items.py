"""case items: the scans of a case's shipment; attachment kinds for staged disclosure

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 07:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "case_items",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("case_pk", _BIG_ID, nullable=False),
        sa.Column("scan_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=True),
        sa.Column("action_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_pk", "scan_id", name="uq_case_items_case_scan"),
    )
    with op.batch_alter_table("case_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_items_case_pk"), ["case_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_items_scan_id"), ["scan_id"], unique=False)
    with op.batch_alter_table("case_attachments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default="document",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("case_attachments", schema=None) as batch_op:
        batch_op.drop_column("kind")
    with op.batch_alter_table("case_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_items_scan_id"))
        batch_op.drop_index(batch_op.f("ix_case_items_case_pk"))
    op.drop_table("case_items")
