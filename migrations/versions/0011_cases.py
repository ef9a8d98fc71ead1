"""cases: customs cases, lines, holders, parties, single-use party links, actions, clocks and their notices

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 03:46:07.920499
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_clocks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("unit", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("due_day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("remind_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("reminded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("expired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("stopped_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_pk", "name", "started_at", name="uq_case_clocks_case_name_start"),
    )
    with op.batch_alter_table("case_clocks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_clocks_case_status_due", ["case_pk", "status", "due_at"], unique=False
        )
        batch_op.create_index("ix_case_clocks_status_due_at", ["status", "due_at"], unique=False)
        batch_op.create_index(
            "ix_case_clocks_status_remind_at", ["status", "remind_at"], unique=False
        )

    op.create_table(
        "case_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("right", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("gtin", sqlmodel.sql.sqltypes.AutoString(length=14), nullable=True),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("unit_msrp_cents", sa.BigInteger(), nullable=False),
        sa.Column("msrp_cents", sa.BigInteger(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("port", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("outcome_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_lines_case_pk"), ["case_pk"], unique=False)
        batch_op.create_index(
            "ix_case_lines_statistics",
            [
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
            ],
            unique=False,
        )

    op.create_table(
        "case_links",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("party", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_links_case_pk"), ["case_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_links_token_hash"), ["token_hash"], unique=True)

    op.create_table(
        "case_parties",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("country", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
        sa.Column("salt", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("commitment", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("erased_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_pk", "role", name="uq_case_parties_case_role"),
    )
    with op.batch_alter_table("case_parties", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_parties_case_pk"), ["case_pk"], unique=False)

    op.create_table(
        "case_stats_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "case_actions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("action_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("by", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("salt", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("state_before", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("state_after", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("stage_after", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("approved_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("log_index", sa.BigInteger(), nullable=True),
        sa.Column("record", sa.JSON(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("applied_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_pk", "idempotency_key", name="uq_case_actions_case_key"),
    )
    with op.batch_alter_table("case_actions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_actions_action_id"), ["action_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_case_actions_case_pk"), ["case_pk"], unique=False)

    op.create_table(
        "case_holders",
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("case_pk", "organization_id"),
    )
    with op.batch_alter_table("case_holders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_holders_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "case_notices",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("clock_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("clock", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("clock_id", "kind", name="uq_case_notices_clock_kind"),
    )
    with op.batch_alter_table("case_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_notices_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_notices_case_pk"), ["case_pk"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_case_notices_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "cases",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("profile", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("jurisdiction", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("calendar", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("outcome_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("perishable", sa.Boolean(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("extensions", sa.JSON(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source_ref", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("port", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
        sa.Column("departure", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
        sa.Column("right", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("hs_code", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("msrp_cents", sa.BigInteger(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("presented_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("opened_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("next_due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(
            "ix_cases_agency_next_due", ["agency_id", "next_due_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cases_case_id"), ["case_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_cases_mode"), ["mode"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_next_due_at"), ["next_due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_origin"), ["origin"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_port"), ["port"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_presented_at"), ["presented_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_profile"), ["profile"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_state"), ["state"], unique=False)
        batch_op.create_index(
            "ix_cases_statistics",
            [
                "outcome_at",
                "outcome",
                "origin",
                "mode",
                "port",
                "agency_id",
                "line_count",
                "quantity",
                "msrp_cents",
            ],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_statistics")
        batch_op.drop_index(batch_op.f("ix_cases_state"))
        batch_op.drop_index(batch_op.f("ix_cases_profile"))
        batch_op.drop_index(batch_op.f("ix_cases_presented_at"))
        batch_op.drop_index(batch_op.f("ix_cases_port"))
        batch_op.drop_index(batch_op.f("ix_cases_origin"))
        batch_op.drop_index(batch_op.f("ix_cases_next_due_at"))
        batch_op.drop_index(batch_op.f("ix_cases_mode"))
        batch_op.drop_index(batch_op.f("ix_cases_case_id"))
        batch_op.drop_index("ix_cases_agency_next_due")
        batch_op.drop_index(batch_op.f("ix_cases_agency_id"))

    op.drop_table("cases")
    with op.batch_alter_table("case_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_notices_created_at"))
        batch_op.drop_index(batch_op.f("ix_case_notices_case_pk"))
        batch_op.drop_index(batch_op.f("ix_case_notices_agency_id"))

    op.drop_table("case_notices")
    with op.batch_alter_table("case_holders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_holders_organization_id"))

    op.drop_table("case_holders")
    with op.batch_alter_table("case_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_actions_case_pk"))
        batch_op.drop_index(batch_op.f("ix_case_actions_action_id"))

    op.drop_table("case_actions")
    op.drop_table("case_stats_version")
    with op.batch_alter_table("case_parties", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_parties_case_pk"))

    op.drop_table("case_parties")
    with op.batch_alter_table("case_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_links_token_hash"))
        batch_op.drop_index(batch_op.f("ix_case_links_case_pk"))

    op.drop_table("case_links")
    with op.batch_alter_table("case_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_case_lines_statistics")
        batch_op.drop_index(batch_op.f("ix_case_lines_case_pk"))

    op.drop_table("case_lines")
    with op.batch_alter_table("case_clocks", schema=None) as batch_op:
        batch_op.drop_index("ix_case_clocks_status_remind_at")
        batch_op.drop_index("ix_case_clocks_status_due_at")
        batch_op.drop_index("ix_case_clocks_case_status_due")

    op.drop_table("case_clocks")
