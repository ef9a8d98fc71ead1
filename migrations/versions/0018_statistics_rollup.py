"""statistics rollup: seizures, lines, quantity and MSRP summed by month and dimension,
back-filled from the cases (api.services.rollup); the officer's case list index gains the id
(its tie-break)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 06:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "case_stats_rollup",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("grain", sa.Integer(), nullable=False),
        sa.Column("month", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("port", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("right", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("seizures", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("msrp_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
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
    from api.services import rollup  # the same sums the gateway keeps from now on

    rollup.rebuild(op.get_bind())
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_agency_next_due")
        batch_op.create_index(
            "ix_cases_agency_next_due", ["agency_id", "next_due_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_agency_next_due")
        batch_op.create_index(
            "ix_cases_agency_next_due", ["agency_id", "next_due_at"], unique=False
        )
    op.drop_table("case_stats_rollup")
