"""guides: product identification guides, their history and photos

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 06:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "guides",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("guide_id", S(length=36), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("product", S(length=24), nullable=False),
        sa.Column("gtin", S(length=14), nullable=True),
        sa.Column("company_prefix", S(length=12), nullable=True),
        sa.Column("brand_key", S(length=200), nullable=False),
        sa.Column("name_key", S(length=200), nullable=False),
        sa.Column("category", S(length=40), nullable=False),
        sa.Column("state", S(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("expires", sa.Date(), nullable=True),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.Column("published_content", sa.JSON(), nullable=True),
        sa.Column("published_expires", sa.Date(), nullable=True),
        sa.Column("published_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("published_by", S(length=200), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["holder_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("holder_id", "product", name="uq_guides_holder_product"),
    )
    with op.batch_alter_table("guides", schema=None) as b:
        b.create_index(
            "ix_guides_search",
            [
                "published_version",
                "published_expires",
                "holder_id",
                "state",
                "product",
                "company_prefix",
                "gtin",
                "brand_key",
                "name_key",
            ],
            unique=False,
        )
        b.create_index(b.f("ix_guides_guide_id"), ["guide_id"], unique=True)
        b.create_index(b.f("ix_guides_holder_id"), ["holder_id"], unique=False)
        b.create_index(b.f("ix_guides_product"), ["product"], unique=False)
        b.create_index(b.f("ix_guides_gtin"), ["gtin"], unique=False)
        b.create_index(b.f("ix_guides_company_prefix"), ["company_prefix"], unique=False)
        b.create_index(b.f("ix_guides_state"), ["state"], unique=False)
    op.create_table(
        "guide_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("guide_pk", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", S(length=16), nullable=False),
        sa.Column("state", S(length=16), nullable=False),
        sa.Column("actor", S(length=200), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("note", S(length=2000), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["guide_pk"], ["guides.id"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("guide_events", schema=None) as b:
        b.create_index(b.f("ix_guide_events_guide_pk"), ["guide_pk"], unique=False)
    op.create_table(
        "guide_photos",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("photo_id", S(length=36), nullable=False),
        sa.Column("guide_pk", sa.Integer(), nullable=False),
        sa.Column("kind", S(length=8), nullable=False),
        sa.Column("caption", S(length=200), nullable=False),
        sa.Column("mime", S(length=16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", S(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["guide_pk"], ["guides.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("guide_photos", schema=None) as b:
        b.create_index(b.f("ix_guide_photos_photo_id"), ["photo_id"], unique=True)
        b.create_index(b.f("ix_guide_photos_guide_pk"), ["guide_pk"], unique=False)


def downgrade() -> None:
    op.drop_table("guide_photos")
    op.drop_table("guide_events")
    op.drop_table("guides")
