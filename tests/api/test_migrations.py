"""Alembic migrations build exactly the schema the models describe, on either database."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import Session, SQLModel

from api.db import make_engine
from api.migrate import upgrade
from api.models import Organization, Role


def test_migrations_match_the_models_and_are_idempotent(database: tuple[str, str | None]) -> None:
    url, schema = database
    engine = make_engine(url, schema)
    upgrade(engine)
    upgrade(engine)  # a second run at start-up changes nothing
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
        version = context.get_current_revision()
    engine.dispose()
    assert differences == [], f"models and migrations differ: {differences}"
    assert version is not None


def test_published_guides_get_their_search_keys(database: tuple[str, str | None]) -> None:
    """0021 fills the published search columns of guides published before it from their
    published content (not the current draft's)."""
    url, schema = database
    engine = make_engine(url, schema)
    upgrade(engine, "0020")
    content = {"brand": "Acme", "name": "Chrono 42"}
    with Session(engine) as session:  # organizations are as the models say by 0020
        org = Organization(name="Acme", role=Role.RIGHTS_HOLDER)
        session.add(org)
        session.commit()
        holder = org.id
    with engine.begin() as connection:
        for guide_id, published in (("g1", content), ("g2", None)):
            connection.execute(
                text(
                    "INSERT INTO guides (guide_id, holder_id, product, brand_key, name_key, "
                    "category, state, version, content, published_content, created_at, "
                    "updated_at) VALUES (:g, :h, :g, 'acme', 'diver 300', 'watches_jewelry', "
                    "'draft', 2, :c, :p, :t, :t)"
                ),
                {
                    "g": guide_id,
                    "h": holder,
                    "c": json.dumps({"brand": "Acme", "name": "Diver 300"}),
                    "p": None if published is None else json.dumps(published),
                    "t": datetime.now(UTC),
                },
            )
    upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT guide_id, published_brand_key, published_name_key FROM guides "
                "ORDER BY guide_id"
            )
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("g1", "acme", "chrono 42"), ("g2", None, None)]
