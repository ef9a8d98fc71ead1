"""company prefix bindings followed by the index (issue 15)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idx_prefix_bindings",
        sa.Column("prefix", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("block_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix"),
    )
    with op.batch_alter_table("idx_prefix_bindings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idx_prefix_bindings_holder"), ["holder"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idx_prefix_bindings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idx_prefix_bindings_holder"))
    op.drop_table("idx_prefix_bindings")
