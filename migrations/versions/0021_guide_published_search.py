"""guide published search keys: officers search the published brand and name

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 10:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH = [
    "published_version",
    "published_expires",
    "holder_id",
    "state",
    "product",
    "company_prefix",
    "gtin",
    "brand_key",
    "name_key",
]


def upgrade() -> None:
    with op.batch_alter_table("guides", schema=None) as b:
        b.add_column(
            sa.Column(
                "published_brand_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True
            )
        )
        b.add_column(
            sa.Column(
                "published_name_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True
            )
        )
        b.drop_index("ix_guides_search")
        b.create_index(
            "ix_guides_search", [*SEARCH, "published_brand_key", "published_name_key"], unique=False
        )
    # Published guides take the keys of their published content (the JSON holds brand, name).
    guides = sa.table(
        "guides",
        sa.column("id", sa.BigInteger()),
        sa.column("published_content", sa.JSON()),
        sa.column("published_brand_key", sa.String()),
        sa.column("published_name_key", sa.String()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(guides.c.id, guides.c.published_content).where(
            guides.c.published_content.is_not(None)
        )
    ).all()
    for guide_id, content in rows:
        bind.execute(
            guides.update()
            .where(guides.c.id == guide_id)
            .values(
                published_brand_key=str(content.get("brand", "")).lower()[:200],
                published_name_key=str(content.get("name", "")).lower()[:200],
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("guides", schema=None) as b:
        b.drop_index("ix_guides_search")
        b.create_index("ix_guides_search", SEARCH, unique=False)
        b.drop_column("published_name_key")
        b.drop_column("published_brand_key")
