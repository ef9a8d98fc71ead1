"""write reorgs: a landed chain write the chain dropped is re-submitted, and says so

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-06 00:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pending_writes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reorgs", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column("reorged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_pending_writes_block_number"), ["block_number"], unique=False
        )
    with op.batch_alter_table("chain_logs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_logs_tx_hash"), ["tx_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chain_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_logs_tx_hash"))
    with op.batch_alter_table("pending_writes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_writes_block_number"))
        batch_op.drop_column("reorged_at")
        batch_op.drop_column("reorgs")
