"""rights: GTIN bindings and rights-holder revocation followed by the index

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 03:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idx_gtin_bindings",
        sa.Column("gtin", sqlmodel.sql.sqltypes.AutoString(length=14), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("block_number", sa.Integer(), nullable=False),
        sa.Column("previous", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=True),
        sa.PrimaryKeyConstraint("gtin"),
    )
    with op.batch_alter_table("idx_gtin_bindings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idx_gtin_bindings_holder"), ["holder"], unique=False)
    with op.batch_alter_table("idx_rights_holders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idx_rights_holders", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
    with op.batch_alter_table("idx_gtin_bindings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idx_gtin_bindings_holder"))
    op.drop_table("idx_gtin_bindings")
