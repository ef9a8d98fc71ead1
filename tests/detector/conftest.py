from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from api.db import make_engine
from api.detection import STATE_TABLES
from api.models import DetectorBatchStatus, DetectorItem, DetectorVolume
from detector.dbstore import DbStore
from detector.locations import LocationRegistry
from tests.stack import scratch_database


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
    PostgreSQL schema with DATABASE_URL (tests/stack.py)."""
    tables = [t.__table__ for t in (DetectorItem, DetectorVolume, DetectorBatchStatus)]
    with scratch_database(tmp_path, "detector.db", "d_") as (url, schema):
        engine = make_engine(url, schema)
        try:
            SQLModel.metadata.create_all(engine, tables=tables)  # type: ignore[arg-type]
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def db_store(state_db: Engine) -> DbStore:
    return DbStore(state_db, STATE_TABLES)
