"""case attachments: files added to a case, type checked from their bytes

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 06:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "case_attachments",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("attachment_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("case_pk", _BIG_ID, nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("file_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("action_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_pk", "sha256", name="uq_case_attachments_content"),
    )
    with op.batch_alter_table("case_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_attachments_attachment_id"), ["attachment_id"], unique=True
        )
        batch_op.create_index(batch_op.f("ix_case_attachments_case_pk"), ["case_pk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_attachments_case_pk"))
        batch_op.drop_index(batch_op.f("ix_case_attachments_attachment_id"))
    op.drop_table("case_attachments")
