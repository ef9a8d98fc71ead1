"""Detector state: per-item sighting histories, per-(batch, market) counts, probe windows.

Two stores behind one interface:

* `MemoryStore(capacity)`: in process, items in an LRU bounded to `capacity` (an evicted
  item's history is forgotten: tests and small deployments);
* `SqliteStore(path, cache_items)`: state in an SQLite database; a bounded write-back LRU of
  hot items in front of it (dirty items are written in batches on eviction and on `flush`), so
  memory stays bounded whatever the number of items seen.
"""

from __future__ import annotations

import marshal
import sqlite3
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

Sighting = tuple[float, str, str]  # (time, locode, scan id), histories sorted by time


class ItemState:
    """What the detector remembers about one item (bounded: last K sightings, <= limit+1
    places, the markets counted for volume, status times)."""

    __slots__ = ("batch_id", "fired_places", "markets", "places", "sightings", "status")

    def __init__(self, batch_id: str | None) -> None:
        self.batch_id = batch_id
        self.sightings: list[Sighting] = []
        self.places: dict[str, str] = {}  # locode -> first scan id seen there
        self.markets: list[str] = []  # countries already counted for volume
        self.status: dict[str, tuple[float, str]] = {}  # kind -> (time, report id)
        self.fired_places = False

    def dumps(self) -> bytes:
        return marshal.dumps(
            (
                self.batch_id,
                self.sightings,
                self.places,
                self.markets,
                self.status,
                self.fired_places,
            )
        )

    @classmethod
    def loads(cls, blob: bytes) -> ItemState:
        batch_id, sightings, places, markets, status, fired = marshal.loads(blob)
        st = cls(batch_id)
        st.sightings = [tuple(s) for s in sightings]
        st.places = places
        st.markets = markets
        st.status = {k: tuple(v) for k, v in status.items()}
        st.fired_places = fired
        return st


class ProbeWindow:
    """Unknown-serial reads of one GTIN at one location within the window."""

    __slots__ = ("entries", "quiet_until")

    def __init__(self) -> None:
        self.entries: list[tuple[float, str, str]] = []  # (time, serial, scan id)
        self.quiet_until = float("-inf")


class StateStore(Protocol):
    def get_item(self, key: str) -> ItemState | None: ...

    def put_item(self, key: str, state: ItemState) -> None: ...

    def incr_volume(self, batch_id: str, market: str) -> int: ...

    def volume(self, batch_id: str, market: str) -> int: ...

    def get_probe(self, key: str) -> ProbeWindow | None: ...

    def put_probe(self, key: str, window: ProbeWindow) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class _Lru:
    """A bounded mapping; `put` returns what it evicted."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.data: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str) -> Any:
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: str, value: Any) -> list[tuple[str, Any]]:
        self.data[key] = value
        self.data.move_to_end(key)
        evicted = []
        while len(self.data) > self.capacity:
            evicted.append(self.data.popitem(last=False))
        return evicted


class MemoryStore:
    def __init__(self, capacity: int = 1_000_000, probe_capacity: int = 100_000) -> None:
        self._items = _Lru(capacity)
        self._probes = _Lru(probe_capacity)
        self._volume: dict[tuple[str, str], int] = {}

    def get_item(self, key: str) -> ItemState | None:
        state: ItemState | None = self._items.get(key)
        return state

    def put_item(self, key: str, state: ItemState) -> None:
        self._items.put(key, state)

    def incr_volume(self, batch_id: str, market: str) -> int:
        n = self._volume.get((batch_id, market), 0) + 1
        self._volume[(batch_id, market)] = n
        return n

    def volume(self, batch_id: str, market: str) -> int:
        return self._volume.get((batch_id, market), 0)

    def get_probe(self, key: str) -> ProbeWindow | None:
        window: ProbeWindow | None = self._probes.get(key)
        return window

    def put_probe(self, key: str, window: ProbeWindow) -> None:
        self._probes.put(key, window)

    def __len__(self) -> int:
        return len(self._items.data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS detector_item (key TEXT PRIMARY KEY, state BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS detector_volume (
    batch_id TEXT NOT NULL, market TEXT NOT NULL, seen INTEGER NOT NULL,
    PRIMARY KEY (batch_id, market)) WITHOUT ROWID;
"""


class SqliteStore:
    """Item state in SQLite behind a bounded write-back cache.

    Volume counters (one per batch and market) are kept in memory and written on `flush`;
    probe windows (short-lived, one per GTIN and location) live in a bounded LRU only: a
    restart forgets at most one probe window.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        cache_items: int = 100_000,
        write_batch: int = 2_000,
        probe_capacity: int = 100_000,
    ) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._cache = _Lru(cache_items)
        self._dirty: set[str] = set()
        self._pending: dict[str, bytes] = {}
        self._write_batch = write_batch
        self._probes = _Lru(probe_capacity)
        self._volume: dict[tuple[str, str], int] = {
            (b, m): n
            for b, m, n in self._db.execute("SELECT batch_id, market, seen FROM detector_volume")
        }
        self._volume_dirty: set[tuple[str, str]] = set()
        self.reads = 0
        self.writes = 0

    def get_item(self, key: str) -> ItemState | None:
        state: ItemState | None = self._cache.get(key)
        if state is not None:
            return state
        blob = self._pending.get(key)
        if blob is None:
            self.reads += 1
            row = self._db.execute(
                "SELECT state FROM detector_item WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            blob = row[0]
        state = ItemState.loads(blob)
        self._evicted(self._cache.put(key, state))
        return state

    def put_item(self, key: str, state: ItemState) -> None:
        self._dirty.add(key)
        self._evicted(self._cache.put(key, state))

    def _evicted(self, evicted: list[tuple[str, Any]]) -> None:
        for key, state in evicted:
            if key in self._dirty:
                self._dirty.discard(key)
                self._pending[key] = state.dumps()
        if len(self._pending) >= self._write_batch:
            self._write_pending()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR REPLACE INTO detector_item (key, state) VALUES (?, ?)",
            self._pending.items(),
        )
        self._db.execute("COMMIT")
        self.writes += len(self._pending)
        self._pending.clear()

    def incr_volume(self, batch_id: str, market: str) -> int:
        k = (batch_id, market)
        n = self._volume.get(k, 0) + 1
        self._volume[k] = n
        self._volume_dirty.add(k)
        return n

    def volume(self, batch_id: str, market: str) -> int:
        return self._volume.get((batch_id, market), 0)

    def get_probe(self, key: str) -> ProbeWindow | None:
        window: ProbeWindow | None = self._probes.get(key)
        return window

    def put_probe(self, key: str, window: ProbeWindow) -> None:
        self._probes.put(key, window)

    def flush(self) -> None:
        for key in self._dirty:
            self._pending[key] = self._cache.data[key].dumps()
        self._dirty.clear()
        self._write_pending()
        if self._volume_dirty:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO detector_volume (batch_id, market, seen) VALUES (?, ?, ?)",
                [(b, m, self._volume[(b, m)]) for b, m in self._volume_dirty],
            )
            self._db.execute("COMMIT")
            self._volume_dirty.clear()

    def stored_items(self) -> int:
        row = self._db.execute("SELECT count(*) FROM detector_item").fetchone()
        return int(row[0])

    def close(self) -> None:
        self.flush()
        self._db.close()
