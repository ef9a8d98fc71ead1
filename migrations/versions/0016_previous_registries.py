"""previous registries: the index follows the registries an upgrade replaced

Each raw log and each indexed batch names the registry it came from (filled with the
indexed registry for rows already there); the checkpoint records the set of registries it
indexes, so a gateway told of another set re-indexes from its start block.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXED = "(SELECT registry_address FROM indexer_state WHERE id = 1)"


def upgrade() -> None:
    for table in ("chain_logs", "idx_batches"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "registry_address",
                    sqlmodel.sql.sqltypes.AutoString(length=42),
                    nullable=False,
                    server_default="",
                )
            )
        op.execute(f"UPDATE {table} SET registry_address = COALESCE({_INDEXED}, '')")
    with op.batch_alter_table("indexer_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("registries", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("indexer_state", schema=None) as batch_op:
        batch_op.drop_column("registries")
    for table in ("idx_batches", "chain_logs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("registry_address")
