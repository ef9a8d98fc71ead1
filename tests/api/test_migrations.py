"""Alembic migrations build exactly the schema the models describe, on either database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from api.db import make_engine
from api.migrate import upgrade


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
