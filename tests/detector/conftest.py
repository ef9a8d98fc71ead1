from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from api.db import make_engine
from api.detection import STATE_TABLES
from api.models import DetectorBatchStatus, DetectorItem, DetectorVolume
from detector.dbstore import DbStore
from detector.locations import LocationRegistry
from ledger.config import Settings


@pytest.fixture(scope="session")
def base_registry() -> LocationRegistry:
    return LocationRegistry.default()


@pytest.fixture
def registry(base_registry: LocationRegistry) -> LocationRegistry:
    reg = LocationRegistry()
    reg._by_code = dict(base_registry._by_code)
    return reg


@pytest.fixture
def state_db(tmp_path: Path) -> Iterator[Engine]:
    """A database with the detector state tables: an SQLite file by default, a fresh
    PostgreSQL schema with DATABASE_URL (as tests/api/conftest.py does for the gateway)."""
    tables = [t.__table__ for t in (DetectorItem, DetectorVolume, DetectorBatchStatus)]
    url = os.environ.get("DATABASE_URL")
    if not url:
        engine = make_engine(f"sqlite:///{tmp_path / 'detector.db'}")
        SQLModel.metadata.create_all(engine, tables=tables)  # type: ignore[arg-type]
        yield engine
        engine.dispose()
        return
    url = Settings(database_url=url).sqlalchemy_url
    schema = f"d_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, schema)
    try:
        SQLModel.metadata.create_all(engine, tables=tables)  # type: ignore[arg-type]
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def db_store(state_db: Engine) -> DbStore:
    return DbStore(state_db, STATE_TABLES)
