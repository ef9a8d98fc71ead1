"""Detector state in an SQL database (SQLAlchemy Core; SQLite and PostgreSQL), shared by every
process that uses the same database.

Tables (given by the caller, so that the gateway's SQLModel models and migrations own them):

* items: `key` (gtin/serial, primary key), `batch_id` (indexed: late batch statuses find the
  batch's items), `last_seen` (latest sighting time), `version`, `state` (the marshalled
  `ItemState`);
* volume: `(batch_id, market) -> seen`, incremented atomically in the database;
* batch statuses: `(batch_id, kind) -> since, report_id`, the earliest time wins.

Concurrency — optimistic, one version column per item. `apply` reads the states of a chunk of
items with their versions, runs the detector's rules in memory, increments the volume counters
with an atomic upsert, inserts new items (`ON CONFLICT DO NOTHING`) and updates known ones
`WHERE key = ? AND version = ?`, all in one transaction. If another process wrote one of those
items in between, a row count comes up short: the whole transaction is rolled back (volume
increments too) and redone on fresh state, so a sighting is never lost and nothing is counted
twice. Writers take locks in one global order (volume rows, then items sorted by key), so two
PostgreSQL transactions cannot deadlock on each other. SQLite serialises writers on its
database lock; "database is locked" is retried the same way.

Memory: no item cache at all — every `apply` reads what it needs, so a process never answers
from a state another process has changed. What is held is one chunk of states at a time, plus a
bounded LRU of probe windows (`probe_capacity`; per process, see docs/detector.md).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from detector.errors import DetectorError
from detector.store import ApplyFn, ItemState, Lru, ProbeWindow, R, Statuses

READ_PAGE = 2_000  # keys per SELECT ... IN (...)


class ConcurrencyError(DetectorError):
    """The same items kept being changed by other processes for `retries` attempts."""


class _Conflict(Exception):
    pass


@dataclass(frozen=True)
class StateTables:
    """The three tables of the detector state (see the module docstring for their columns)."""

    items: Table
    volume: Table
    batch_status: Table


class DbStore:
    """Detector state in the database; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        tables: StateTables,
        *,
        retries: int = 50,
        probe_capacity: int = 100_000,
    ) -> None:
        self.engine = engine
        self.t = tables
        self.retries = retries
        self._insert: Any = sqlite_insert if engine.dialect.name == "sqlite" else pg_insert
        self._probes = Lru(probe_capacity)
        self.reads = 0  # item rows read
        self.writes = 0  # item rows written
        self.conflicts = 0  # transactions redone

    @property
    def name(self) -> str:
        return f"db:{self.engine.dialect.name}"

    # -- the transactional step ------------------------------------------------------------

    def apply(
        self, keys: list[str], batch_ids: list[str], fn: ApplyFn[R]
    ) -> tuple[R, dict[tuple[str, str], int], dict[str, Statuses]]:
        for attempt in range(self.retries):
            try:
                with self.engine.begin() as conn:
                    states, versions = self._read(conn, keys)
                    statuses = self._statuses(conn, batch_ids)
                    result, increments = fn(states, statuses)
                    totals = self._increment(conn, increments)
                    self._write(conn, states, versions)
                return result, totals, statuses
            except _Conflict:
                pass
            except OperationalError as exc:  # SQLite busy, PostgreSQL deadlock/serialization
                if not _retryable(exc):
                    raise
            self.conflicts += 1
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise ConcurrencyError(
            f"{len(keys)} item(s) kept changing under concurrent writers; gave up after "
            f"{self.retries} attempts"
        )

    def _read(
        self, conn: Connection, keys: list[str]
    ) -> tuple[dict[str, ItemState], dict[str, int]]:
        items = self.t.items
        states: dict[str, ItemState] = {}
        versions: dict[str, int] = {}
        loads = ItemState.loads
        for i in range(0, len(keys), READ_PAGE):
            page = keys[i : i + READ_PAGE]
            query = select(items.c.key, items.c.version, items.c.state).where(
                items.c.key.in_(page)
            )
            for key, version, blob in conn.execute(query):
                states[key] = loads(blob)
                versions[key] = version
        self.reads += len(states)
        return states, versions

    def _statuses(self, conn: Connection, batch_ids: list[str]) -> dict[str, Statuses]:
        if not batch_ids:
            return {}
        bs = self.t.batch_status
        out: dict[str, Statuses] = {}
        query = select(bs.c.batch_id, bs.c.kind, bs.c.since, bs.c.report_id).where(
            bs.c.batch_id.in_(batch_ids)
        )
        for batch_id, kind, since, rid in conn.execute(query):
            out.setdefault(batch_id, {})[kind] = (float(since), rid)
        return out

    def _increment(
        self, conn: Connection, increments: list[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        vol = self.t.volume
        totals: dict[tuple[str, str], int] = {}
        for (batch_id, market), n in sorted(Counter(increments).items()):
            ins = self._insert(vol).values(batch_id=batch_id, market=market, seen=n)
            ins = ins.on_conflict_do_update(
                index_elements=[vol.c.batch_id, vol.c.market],
                set_={"seen": vol.c.seen + ins.excluded.seen},
            ).returning(vol.c.seen)
            totals[(batch_id, market)] = int(conn.execute(ins).scalar_one())
        return totals

    def _write(
        self, conn: Connection, states: dict[str, ItemState], versions: dict[str, int]
    ) -> None:
        items = self.t.items
        new: list[dict[str, Any]] = []
        old: list[dict[str, Any]] = []
        for key in sorted(states):
            st = states[key]
            row = {"k": key, "b": st.batch_id, "l": st.last_seen, "s": st.dumps()}
            if key in versions:
                row["v"] = versions[key]
                old.append(row)
            else:
                new.append(row)
        if old:
            stmt = (
                update(items)
                .where(and_(items.c.key == bindparam("k"), items.c.version == bindparam("v")))
                .values(
                    batch_id=bindparam("b"),
                    last_seen=bindparam("l"),
                    state=bindparam("s"),
                    version=items.c.version + 1,
                )
            )
            if conn.execute(stmt, old).rowcount != len(old):
                raise _Conflict
        if new:
            ins = (
                self._insert(items)
                .values(
                    key=bindparam("k"),
                    batch_id=bindparam("b"),
                    last_seen=bindparam("l"),
                    state=bindparam("s"),
                    version=1,
                )
                .on_conflict_do_nothing(index_elements=[items.c.key])
                .returning(items.c.key)  # executemany row counts are not reliable for inserts
            )
            if len(conn.execute(ins, new).all()) != len(new):
                raise _Conflict
        self.writes += len(old) + len(new)

    # -- batch statuses ------------------------------------------------------------------------

    def batch_statuses(self, batch_ids: list[str]) -> dict[str, Statuses]:
        with self.engine.connect() as conn:
            return self._statuses(conn, batch_ids)

    def set_batch_status(self, batch_id: str, kind: str, at: float, report_id: str) -> bool:
        bs = self.t.batch_status
        ins = self._insert(bs).values(batch_id=batch_id, kind=kind, since=at, report_id=report_id)
        ins = ins.on_conflict_do_update(
            index_elements=[bs.c.batch_id, bs.c.kind],
            set_={"since": ins.excluded.since, "report_id": ins.excluded.report_id},
            where=bs.c.since > ins.excluded.since,
        )
        for attempt in range(self.retries):
            try:
                with self.engine.begin() as conn:
                    return bool(conn.execute(ins).rowcount)
            except OperationalError as exc:
                if not _retryable(exc):
                    raise
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise ConcurrencyError(f"batch {batch_id}: could not record status {kind}")

    def items_of_batch(self, batch_id: str, since: float, page: int) -> Iterator[list[str]]:
        items = self.t.items
        last = ""
        while True:
            query = (
                select(items.c.key)
                .where(
                    items.c.batch_id == batch_id,
                    items.c.last_seen >= since,
                    items.c.key > last,
                )
                .order_by(items.c.key)
                .limit(page)
            )
            with self.engine.connect() as conn:
                keys = list(conn.execute(query).scalars())
            if not keys:
                return
            yield keys
            last = keys[-1]

    # -- the rest of the store interface ----------------------------------------------------------

    def get_item(self, key: str) -> ItemState | None:
        """The stored state of an item (tests, inspection)."""
        with self.engine.connect() as conn:
            states, _ = self._read(conn, [key])
        return states.get(key)

    def volume(self, batch_id: str, market: str) -> int:
        vol = self.t.volume
        with self.engine.connect() as conn:
            seen = conn.execute(
                select(vol.c.seen).where(vol.c.batch_id == batch_id, vol.c.market == market)
            ).scalar()
        return int(seen or 0)

    def stored_items(self) -> int:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(self.t.items)).scalar_one())

    def get_probe(self, key: str) -> ProbeWindow | None:
        window: ProbeWindow | None = self._probes.get(key)
        return window

    def put_probe(self, key: str, window: ProbeWindow) -> None:
        self._probes.put(key, window)

    def flush(self) -> None:
        """Nothing is buffered: every `apply` commits."""

    def close(self) -> None:
        pass


def _retryable(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return any(
        s in text for s in ("database is locked", "deadlock", "could not serialize", "busy")
    )
