"""Detector state in an SQL database (SQLAlchemy Core; SQLite and PostgreSQL), shared by every
process that uses the same database.

Tables (given by the caller, so that the gateway's SQLModel models and migrations own them):

* items: `key` (gtin/serial, primary key), `batch_id` (indexed: late batch statuses find the
  batch's items), `last_seen` (latest sighting time), `version`, `state` (the `ItemState` in
  msgpack, docs/detector.md "Stored state");
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

Probe windows (unknown serials per GTIN and location) are rows of the items table too, under
`probe:<gtin>@<locode>`, with the same version check (`apply_probe`).

Durability: a transaction that raised no alert (the caller's `finish` says so) commits on
PostgreSQL with `synchronous_commit = off` (`relaxed_commit`): derived state, visible at once,
durable within a fraction of a second; alert transactions commit durably, and flushing them
flushes every earlier commit (docs/detector.md, *Alerts in the same transaction*).

Memory: no cache at all — every `apply` reads what it needs, so a process never answers from a
state another process has changed. What is held is one chunk of states at a time.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from detector.errors import ContentionError
from detector.store import ApplyFn, FinishFn, ItemState, ProbeWindow, R, Statuses

READ_PAGE = 2_000  # keys per SELECT ... IN (...)
VOLUME_PAGE = 500  # (batch, market) counters per upsert


class ConcurrencyError(ContentionError):
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
        relaxed_commit: bool = True,
    ) -> None:
        """`relaxed_commit`: PostgreSQL transactions that write no alert commit with
        `synchronous_commit = off` (see `_relax`); False makes every commit wait for the flush."""
        self.engine = engine
        self.relaxed_commit = relaxed_commit
        self.t = tables
        self.retries = retries
        self._pg = engine.dialect.name == "postgresql"
        if not self._pg and engine.dialect.name != "sqlite":
            raise ValueError(f"DbStore supports SQLite and PostgreSQL, not {engine.dialect.name}")
        self._insert: Any = pg_insert if self._pg else sqlite_insert
        self._sql = _hot_sql(
            tables.items.name, tables.batch_status.name, tables.volume.name, self._pg
        )
        self.reads = 0  # item rows read
        self.writes = 0  # item rows written
        self.conflicts = 0  # transactions redone
        self.relaxed = 0  # transactions committed without waiting for the WAL flush

    @property
    def name(self) -> str:
        return f"db:{self.engine.dialect.name}"

    # -- the transactional step ------------------------------------------------------------

    def apply(
        self,
        keys: list[str],
        batch_ids: list[str],
        fn: ApplyFn[R],
        finish: FinishFn[R] | None = None,
    ) -> tuple[R, dict[tuple[str, str], int], dict[str, Statuses], dict[str, Statuses]]:
        for attempt in range(self.retries):
            try:
                with self.engine.connect() as conn:
                    with conn.begin():
                        if len(keys) <= READ_PAGE and len(batch_ids) <= READ_PAGE:
                            states, versions, statuses = self._read_both(conn, keys, batch_ids)
                        else:
                            states, versions = self._read(conn, keys)
                            statuses = self._statuses(conn, batch_ids)
                        result, increments = fn(states, statuses)
                        totals = self._increment(conn, increments)
                        durable = finish(result, totals, conn) if finish is not None else True
                        self._write(conn, states, versions, relaxed=not durable)
                    # read again after the commit, on the same connection (see Detector)
                    after = self._statuses_after(conn, batch_ids) if batch_ids else statuses
                return result, totals, statuses, after
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

    def _statuses_after(self, conn: Connection, batch_ids: list[str]) -> dict[str, Statuses]:
        """The statuses read again after the commit. On PostgreSQL in autocommit mode: one
        round trip instead of three (BEGIN, SELECT, ROLLBACK)."""
        if not self._pg:
            out = self._statuses(conn, batch_ids)
            conn.rollback()
            return out
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        dbapi.autocommit = True
        try:
            return self._statuses(conn, batch_ids)
        finally:
            dbapi.autocommit = False

    def _relax(self, conn: Connection) -> None:
        """This transaction wrote only recomputable state (no alert): on PostgreSQL, commit it
        without waiting for the WAL flush (docs/detector.md, *Durability*). SQLite already runs
        with `synchronous=NORMAL` in WAL mode (no fsync per commit)."""
        if self._pg and self.relaxed_commit:
            self.relaxed += 1
            cur = conn.connection.cursor()
            try:
                cur.execute("SET LOCAL synchronous_commit = off")
            finally:
                cur.close()

    def _read_both(
        self, conn: Connection, keys: list[str], batch_ids: list[str]
    ) -> tuple[dict[str, ItemState], dict[str, int], dict[str, Statuses]]:
        """`_read` and `_statuses` in one statement (one round trip: the single-scan path)."""
        states: dict[str, ItemState] = {}
        versions: dict[str, int] = {}
        statuses: dict[str, Statuses] = {}
        loads = ItemState.loads
        cur = conn.connection.cursor()
        try:
            if self._pg:
                if len(keys) == 1 and len(batch_ids) <= 1:  # scalars: cheaper than arrays
                    cur.execute(self._sql["both1"], (keys[0], batch_ids[0] if batch_ids else None))
                else:
                    cur.execute(self._sql["both"], (keys, batch_ids))
            else:
                cur.execute(
                    self._sql["both"].format(
                        ",".join("?" * len(keys)), ",".join("?" * len(batch_ids))
                    ),
                    [*keys, *batch_ids],
                )
            for tag, key, version, blob, kind, since, rid in cur.fetchall():
                if tag == 0:
                    states[key] = loads(blob)
                    versions[key] = version
                else:
                    statuses.setdefault(key, {})[kind] = (float(since), rid)
        finally:
            cur.close()
        self.reads += len(states)
        return states, versions, statuses

    def _read(
        self, conn: Connection, keys: list[str]
    ) -> tuple[dict[str, ItemState], dict[str, int]]:
        """States and versions of `keys` (hot path: plain DB-API statements, see `_sql`)."""
        states: dict[str, ItemState] = {}
        versions: dict[str, int] = {}
        loads = ItemState.loads
        cur = conn.connection.cursor()
        try:
            for i in range(0, len(keys), READ_PAGE):
                page = keys[i : i + READ_PAGE]
                if self._pg:
                    cur.execute(self._sql["read"], (page,))
                else:
                    cur.execute(self._sql["read"].format(",".join("?" * len(page))), page)
                for key, version, blob in cur.fetchall():
                    states[key] = loads(blob)
                    versions[key] = version
        finally:
            cur.close()
        self.reads += len(states)
        return states, versions

    def _statuses(self, conn: Connection, batch_ids: list[str]) -> dict[str, Statuses]:
        out: dict[str, Statuses] = {}
        if not batch_ids:
            return out
        cur = conn.connection.cursor()
        try:
            for i in range(0, len(batch_ids), READ_PAGE):
                page = batch_ids[i : i + READ_PAGE]
                if self._pg:
                    if len(page) == 1:
                        cur.execute(self._sql["statuses1"], (page[0],))
                    else:
                        cur.execute(self._sql["statuses"], (page,))
                else:
                    cur.execute(self._sql["statuses"].format(",".join("?" * len(page))), page)
                for batch_id, kind, since, rid in cur.fetchall():
                    out.setdefault(batch_id, {})[kind] = (float(since), rid)
        finally:
            cur.close()
        return out

    def _increment(
        self, conn: Connection, increments: list[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """Add the chunk's increments to the volume counters in one upsert per page (sorted, so
        concurrent writers lock rows in the same order) and return the new totals."""
        totals: dict[tuple[str, str], int] = {}
        if not increments:
            return totals
        rows = sorted(Counter(increments).items())
        cur = conn.connection.cursor()
        try:
            for i in range(0, len(rows), VOLUME_PAGE):
                page = rows[i : i + VOLUME_PAGE]
                if self._pg:
                    cur.execute(
                        self._sql["volume"],
                        (
                            [b for (b, _), _ in page],
                            [m for (_, m), _ in page],
                            [n for _, n in page],
                        ),
                    )
                else:
                    params = [x for (b, m), n in page for x in (b, m, n)]
                    cur.execute(
                        self._sql["volume"].format(",".join(["(?, ?, ?)"] * len(page))), params
                    )
                for batch_id, market, seen in cur.fetchall():
                    totals[(batch_id, market)] = int(seen)
        finally:
            cur.close()
        return totals

    def _write(
        self,
        conn: Connection,
        states: dict[str, ItemState],
        versions: dict[str, int],
        relaxed: bool = False,
    ) -> None:
        """Known items: UPDATE ... WHERE version matches; new ones: INSERT ... ON CONFLICT DO
        NOTHING. A short row count means another process got there first: `_Conflict`.
        `relaxed`: the transaction may commit without waiting for the WAL flush (see `_relax`);
        on PostgreSQL that setting rides on the write statement itself (no extra round trip)."""
        relax = "_relaxed" if relaxed and self._pg and self.relaxed_commit else ""
        if relax:
            self.relaxed += 1
        new: list[tuple[Any, ...]] = []
        old: list[tuple[Any, ...]] = []
        for key in sorted(states):
            st = states[key]
            sightings = st.sightings
            last = sightings[-1][0] if sightings else None
            if key in versions:
                old.append((st.batch_id, last, st.dumps(), key, versions[key]))
            else:
                new.append((key, st.batch_id, last, st.dumps()))
        cur = conn.connection.cursor()
        try:
            if old:
                if self._pg and len(old) == 1:
                    cur.execute(self._sql["update1" + relax], old[0])
                elif self._pg:
                    b, lst, blob, k, v = (list(c) for c in zip(*old, strict=True))
                    cur.execute(self._sql["update" + relax], (k, v, blob, b, lst))
                else:
                    cur.executemany(self._sql["update"], old)
                if cur.rowcount != len(old):
                    raise _Conflict
            if new:
                if self._pg and len(new) == 1:
                    cur.execute(self._sql["insert1" + relax], new[0])
                elif self._pg:
                    k, b, lst, blob = (list(c) for c in zip(*new, strict=True))
                    cur.execute(self._sql["insert" + relax], (k, b, lst, blob))
                else:
                    cur.executemany(self._sql["insert"], new)
                if cur.rowcount != len(new):
                    raise _Conflict
        finally:
            cur.close()
        self.writes += len(old) + len(new)

    def insert_states(self, pairs: list[tuple[str, ItemState]]) -> int:
        """Bulk-load item states that are not stored yet (imports, benchmarks); one
        transaction; existing keys are left alone. Returns how many were inserted."""
        with self.engine.begin() as conn:
            before = self.writes
            states = dict(pairs)
            try:
                self._write(conn, states, {})
            except _Conflict:  # some were stored already: nothing of this call is kept
                raise ConcurrencyError("insert_states: some keys are already stored") from None
            return self.writes - before

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
        ).returning(bs.c.kind)  # a row only when inserted or moved earlier
        for attempt in range(self.retries):
            try:
                with self.engine.begin() as conn:
                    return conn.execute(ins).first() is not None
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

    def apply_probe(
        self,
        key: str,
        fn: Callable[[ProbeWindow], R],
        finish: Callable[[R, Any], bool] | None = None,
    ) -> R:
        """Probe windows live in the items table under `probe:<gtin>@<locode>` (no batch), with
        the same version check, so unknown serials read through different processes count
        together."""
        items = self.t.items
        for attempt in range(self.retries):
            try:
                with self.engine.begin() as conn:
                    row = conn.execute(
                        select(items.c.version, items.c.state).where(items.c.key == key)
                    ).first()
                    window = ProbeWindow.loads(row[1]) if row is not None else ProbeWindow()
                    result = fn(window)
                    newest = window.entries[-1][0] if window.entries else None
                    if row is None:
                        ins = (
                            self._insert(items)
                            .values(key=key, last_seen=newest, version=1, state=window.dumps())
                            .on_conflict_do_nothing(index_elements=[items.c.key])
                            .returning(items.c.key)  # insert row counts are not reliable
                        )
                        done = len(conn.execute(ins).all())
                    else:
                        done = conn.execute(
                            update(items)
                            .where(items.c.key == key, items.c.version == row[0])
                            .values(last_seen=newest, version=row[0] + 1, state=window.dumps())
                        ).rowcount
                    if done != 1:
                        raise _Conflict
                    if not (finish(result, conn) if finish is not None else True):
                        self._relax(conn)
                return result
            except _Conflict:
                pass
            except OperationalError as exc:
                if not _retryable(exc):
                    raise
            self.conflicts += 1
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise ConcurrencyError(f"probe window {key} kept changing under concurrent writers")

    def flush(self) -> None:
        """Nothing is buffered: every `apply` commits."""

    def close(self) -> None:
        pass


def _hot_sql(items: str, statuses: str, volume: str, pg: bool) -> dict[str, str]:
    """The per-chunk statements as plain DB-API SQL: SQLAlchemy's per-row parameter handling
    cost more than the database itself at tens of thousands of rows a second. PostgreSQL gets
    one statement per chunk (arrays through unnest); SQLite an executemany (in process)."""
    if pg:
        # `relaxed` variants: the same statement also sets synchronous_commit = off for its
        # transaction (a one-row subquery of the FROM list, evaluated once)
        relax = ", (SELECT set_config('synchronous_commit', 'off', true)) AS relax"
        # one row (the single-scan path): scalar parameters, cheaper to send than arrays
        update1 = (
            f"UPDATE {items} AS t SET batch_id = %s, last_seen = %s, state = %s, "
            "version = t.version + 1{} WHERE t.key = %s AND t.version = %s"
        )
        insert1 = (
            f"INSERT INTO {items} (key, batch_id, last_seen, version, state) "
            "SELECT %s::text, %s::text, %s::float8, 1, %s::bytea{} ON CONFLICT (key) DO NOTHING"
        )
        return {
            "both1": (
                f"SELECT 0, key, version, state, NULL::text, NULL::float8, NULL::text "
                f"FROM {items} WHERE key = %s UNION ALL "
                f"SELECT 1, batch_id, NULL::int, NULL::bytea, kind, since, report_id "
                f"FROM {statuses} WHERE batch_id = %s"
            ),
            "statuses1": (
                f"SELECT batch_id, kind, since, report_id FROM {statuses} WHERE batch_id = %s"
            ),
            "update1": update1.format(""),
            "update1_relaxed": update1.format(" FROM" + relax.lstrip(",")),
            "insert1": insert1.format(""),
            "insert1_relaxed": insert1.format(" FROM" + relax.lstrip(",")),
            "update_relaxed": (
                f"UPDATE {items} AS t SET state = v.state, batch_id = v.batch_id, "
                "last_seen = v.last_seen, version = t.version + 1 "
                "FROM unnest(%s::text[], %s::int[], %s::bytea[], %s::text[], %s::float8[]) "
                f"AS v(key, version, state, batch_id, last_seen){relax} "
                "WHERE t.key = v.key AND t.version = v.version"
            ),
            "insert_relaxed": (
                f"INSERT INTO {items} (key, batch_id, last_seen, version, state) "
                "SELECT k, b, l, 1, s "
                "FROM unnest(%s::text[], %s::text[], %s::float8[], %s::bytea[]) "
                f"AS v(k, b, l, s){relax} "
                "ON CONFLICT (key) DO NOTHING"
            ),
            "both": (
                f"SELECT 0, key, version, state, NULL::text, NULL::float8, NULL::text "
                f"FROM {items} WHERE key = ANY(%s) UNION ALL "
                f"SELECT 1, batch_id, NULL::int, NULL::bytea, kind, since, report_id "
                f"FROM {statuses} WHERE batch_id = ANY(%s)"
            ),
            "read": f"SELECT key, version, state FROM {items} WHERE key = ANY(%s)",
            "statuses": (
                f"SELECT batch_id, kind, since, report_id FROM {statuses} WHERE batch_id = ANY(%s)"
            ),
            "volume": (
                f"INSERT INTO {volume} AS v (batch_id, market, seen) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::int[]) "
                "ON CONFLICT (batch_id, market) DO UPDATE SET seen = v.seen + EXCLUDED.seen "
                "RETURNING batch_id, market, seen"
            ),
            "update": (
                f"UPDATE {items} AS t SET state = v.state, batch_id = v.batch_id, "
                "last_seen = v.last_seen, version = t.version + 1 "
                "FROM unnest(%s::text[], %s::int[], %s::bytea[], %s::text[], %s::float8[]) "
                "AS v(key, version, state, batch_id, last_seen) "
                "WHERE t.key = v.key AND t.version = v.version"
            ),
            "insert": (
                f"INSERT INTO {items} (key, batch_id, last_seen, version, state) "
                "SELECT k, b, l, 1, s "
                "FROM unnest(%s::text[], %s::text[], %s::float8[], %s::bytea[]) AS v(k, b, l, s) "
                "ON CONFLICT (key) DO NOTHING"
            ),
        }
    return {
        "both": (
            f"SELECT 0, key, version, state, NULL, NULL, NULL FROM {items} WHERE key IN ({{}}) "
            f"UNION ALL SELECT 1, batch_id, NULL, NULL, kind, since, report_id "
            f"FROM {statuses} WHERE batch_id IN ({{}})"
        ),
        "read": f"SELECT key, version, state FROM {items} WHERE key IN ({{}})",
        "statuses": (
            f"SELECT batch_id, kind, since, report_id FROM {statuses} WHERE batch_id IN ({{}})"
        ),
        "volume": (
            f"INSERT INTO {volume} (batch_id, market, seen) VALUES {{}} "
            f"ON CONFLICT (batch_id, market) DO UPDATE SET seen = {volume}.seen + excluded.seen "
            "RETURNING batch_id, market, seen"
        ),
        "update": (
            f"UPDATE {items} SET batch_id = ?, last_seen = ?, state = ?, version = version + 1 "
            "WHERE key = ? AND version = ?"
        ),
        "insert": (
            f"INSERT INTO {items} (key, batch_id, last_seen, version, state) "
            "VALUES (?, ?, ?, 1, ?) ON CONFLICT (key) DO NOTHING"
        ),
    }


def _retryable(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return any(s in text for s in ("database is locked", "deadlock", "could not serialize", "busy"))
