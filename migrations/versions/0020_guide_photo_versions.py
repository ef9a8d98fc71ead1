"""guide photo versions: the guide version that added each photo (reviewed with it)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Photos stored before versions were kept count as part of the first version.
    with op.batch_alter_table("guide_photos", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )


def downgrade() -> None:
    with op.batch_alter_table("guide_photos", schema=None) as batch_op:
        batch_op.drop_column("version")
