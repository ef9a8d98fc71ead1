"""Detector state: per-item sighting histories, per-(batch, market) counts, batch statuses,
probe windows (unknown serials per GTIN and location).

Every store offers one transactional operation, `apply(keys, batch_ids, fn)`: load the states of
`keys` and the statuses of `batch_ids`, let `fn` change the states and ask for volume
increments, then write everything back at once. The detector's single-scan and batched paths
both go through it, so one store implementation serves both.

* `MemoryStore(capacity)` (here): in process, items in an LRU bounded to `capacity` (an evicted
  item's history is forgotten: tests and small deployments);
* `DbStore(engine, tables)` (detector.dbstore): state in an SQL database (SQLite or
  PostgreSQL) shared by every process on it, with optimistic concurrency (a version per item).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import msgpack

from detector.errors import DetectorError

Sighting = tuple[float, str, str]  # (time, locode, scan id), histories sorted by time
Statuses = dict[str, tuple[float, str]]  # status kind -> (effective from, report id)
R = TypeVar("R")
#: What `fn` gets: the states of the keys (missing ones absent; it adds new ones) and the
#: current statuses of the batches; it returns its result and the (batch, market) volume
#: increments it needs, in the order of the scans that asked for them.
ApplyFn = Callable[[dict[str, "ItemState"], dict[str, Statuses]], tuple[R, list[tuple[str, str]]]]
#: Run inside the transaction after the states and volume counters are written, before the
#: commit: gets `fn`'s result, the volume totals and the store's transaction handle (a
#: SQLAlchemy `Connection` for `DbStore`, None in memory), so the caller can write its own rows
#: (the gateway's alerts) atomically with the state. Returns whether the transaction must be
#: durable before `apply` returns (True: it wrote something that cannot be recomputed).
FinishFn = Callable[[R, dict[tuple[str, str], int], Any], bool]


class ItemState:
    """What the detector remembers about one item (bounded: last K sightings, <= limit+1
    places, the markets counted for volume, status times, and the batch statuses its
    sightings have already been judged against)."""

    __slots__ = (
        "applied",
        "batch_id",
        "fired_places",
        "markets",
        "places",
        "sightings",
        "status",
    )

    def __init__(self, batch_id: str | None) -> None:
        self.batch_id = batch_id
        self.sightings: list[Sighting] = []
        self.places: dict[str, str] = {}  # locode -> first scan id seen there
        self.markets: list[str] = []  # countries already counted for volume
        self.status: Statuses = {}  # item statuses: kind -> (time, report id)
        self.fired_places = False
        #: batch status kind -> the effective time the sightings were judged against; a batch
        #: status that becomes known (or earlier) later re-judges only what this does not cover.
        self.applied: dict[str, float] = {}

    @property
    def last_seen(self) -> float | None:
        return self.sightings[-1][0] if self.sightings else None

    def dumps(self) -> bytes:
        """The stored form: a msgpack array (docs/detector.md, "Stored state")."""
        return _pack(
            [
                ITEM_LAYOUT,
                self.batch_id,
                self.sightings,
                self.places,
                self.markets,
                self.status,
                self.fired_places,
                self.applied,
            ]
        )

    @classmethod
    def loads(cls, blob: bytes) -> ItemState:
        """Read `dumps`' bytes; anything else is a `StoredStateError`, never code run."""
        fields = _unpack(blob, ITEM_LAYOUT, 8)
        st = cls.__new__(cls)
        st.batch_id = fields[1]
        st.sightings = list(fields[2])  # arrays are read as tuples: (time, locode, scan id)
        st.places = fields[3]
        st.markets = list(fields[4])
        st.status = fields[5]
        st.fired_places = fields[6]
        st.applied = fields[7]
        return st


class ProbeWindow:
    """Unknown-serial reads of one GTIN at one location within the window."""

    __slots__ = ("entries", "quiet_until")

    def __init__(self) -> None:
        self.entries: list[tuple[float, str, str]] = []  # (time, serial, scan id)
        self.quiet_until = float("-inf")

    def dumps(self) -> bytes:
        return _pack([PROBE_LAYOUT, self.entries, self.quiet_until])

    @classmethod
    def loads(cls, blob: bytes) -> ProbeWindow:
        fields = _unpack(blob, PROBE_LAYOUT, 3)
        window = cls()
        window.entries = list(fields[1])
        window.quiet_until = fields[2]
        return window


class StoredStateError(DetectorError):
    """Stored detector state that is not in the documented layout (corrupt, or not migrated)."""


#: The first element of each stored array: which layout follows (docs/detector.md).
ITEM_LAYOUT = 1
PROBE_LAYOUT = 2
_packers = threading.local()  # a Packer keeps a buffer: one per thread


def _pack(fields: list[Any]) -> bytes:
    packer = getattr(_packers, "packer", None)
    if packer is None:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    data: bytes = packer.pack(fields)
    return data


def _unpack(blob: bytes, layout: int, size: int) -> tuple[Any, ...]:
    """Decode a stored array: msgpack only (no code, no classes), arrays as tuples, map keys
    strings, and the layout tag and length checked before anything is used."""
    try:
        fields = msgpack.unpackb(blob, use_list=False, raw=False, strict_map_key=True, timestamp=0)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise StoredStateError(f"stored detector state is not msgpack: {exc}") from None
    if not isinstance(fields, tuple) or len(fields) != size or fields[0] != layout:
        raise StoredStateError(
            f"stored detector state is not layout {layout} (an array of {size} fields)"
        )
    return fields


class StateStore(Protocol):
    def apply(
        self,
        keys: list[str],
        batch_ids: list[str],
        fn: ApplyFn[R],
        finish: FinishFn[R] | None = None,
    ) -> tuple[R, dict[tuple[str, str], int], dict[str, Statuses], dict[str, Statuses]]:
        """Run `fn` on the current states atomically (then `finish`, in the same transaction);
        returns its result, the volume totals after its increments (for each (batch, market)
        it incremented), the statuses it saw and the statuses as read again right after the
        commit. Without `finish` the transaction is durable."""
        ...

    def batch_statuses(self, batch_ids: list[str]) -> dict[str, Statuses]: ...

    def set_batch_status(self, batch_id: str, kind: str, at: float, report_id: str) -> bool:
        """Record a batch status if it is new or earlier than the known one; True if changed."""
        ...

    def items_of_batch(self, batch_id: str, since: float, page: int) -> Iterator[list[str]]:
        """Keys of the batch's items with a sighting at or after `since`, in pages."""
        ...

    def volume(self, batch_id: str, market: str) -> int: ...

    def apply_probe(
        self,
        key: str,
        fn: Callable[[ProbeWindow], R],
        finish: Callable[[R, Any], bool] | None = None,
    ) -> R:
        """Run `fn` on the probe window of `key` (new if none) atomically and store it;
        `finish(result, transaction)` as in `apply`."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class Lru:
    """A bounded mapping, safe to share between threads; `put` returns what it evicted."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.data: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            value = self.data.get(key)
            if value is not None:
                self.data.move_to_end(key)
            return value

    def put(self, key: str, value: Any) -> list[tuple[str, Any]]:
        with self._lock:
            self.data[key] = value
            self.data.move_to_end(key)
            evicted = []
            while len(self.data) > self.capacity:
                evicted.append(self.data.popitem(last=False))
            return evicted

    def pop(self, key: str) -> None:
        with self._lock:
            self.data.pop(key, None)


class MemoryStore:
    """Everything in this process. Items in a bounded LRU; volume counters and batch statuses
    are one small entry per (batch, market) and per (batch, status kind)."""

    def __init__(self, capacity: int = 1_000_000, probe_capacity: int = 100_000) -> None:
        self._items = Lru(capacity)
        self._probes = Lru(probe_capacity)
        self._volume: dict[tuple[str, str], int] = {}
        self._status: dict[str, Statuses] = {}

    def apply(
        self,
        keys: list[str],
        batch_ids: list[str],
        fn: ApplyFn[R],
        finish: FinishFn[R] | None = None,
    ) -> tuple[R, dict[tuple[str, str], int], dict[str, Statuses], dict[str, Statuses]]:
        states: dict[str, ItemState] = {}
        for key in keys:
            st = self._items.get(key)
            if st is not None:
                states[key] = st
        statuses = self.batch_statuses(batch_ids)
        result, increments = fn(states, statuses)
        totals: dict[tuple[str, str], int] = {}
        for k in increments:
            totals[k] = self._volume[k] = self._volume.get(k, 0) + 1
        for key, st in states.items():
            self._items.put(key, st)
        if finish is not None:
            finish(result, totals, None)
        return result, totals, statuses, statuses

    def batch_statuses(self, batch_ids: list[str]) -> dict[str, Statuses]:
        return {b: dict(self._status[b]) for b in batch_ids if b in self._status}

    def set_batch_status(self, batch_id: str, kind: str, at: float, report_id: str) -> bool:
        statuses = self._status.setdefault(batch_id, {})
        if kind in statuses and statuses[kind][0] <= at:
            return False
        statuses[kind] = (at, report_id)
        return True

    def items_of_batch(self, batch_id: str, since: float, page: int) -> Iterator[list[str]]:
        keys = [
            k
            for k, st in self._items.data.items()
            if st.batch_id == batch_id and st.sightings and st.sightings[-1][0] >= since
        ]
        for i in range(0, len(keys), page):
            yield keys[i : i + page]

    def get_item(self, key: str) -> ItemState | None:
        """The remembered state of an item (tests, inspection)."""
        state: ItemState | None = self._items.data.get(key)
        return state

    def volume(self, batch_id: str, market: str) -> int:
        return self._volume.get((batch_id, market), 0)

    def apply_probe(
        self,
        key: str,
        fn: Callable[[ProbeWindow], R],
        finish: Callable[[R, Any], bool] | None = None,
    ) -> R:
        window: ProbeWindow = self._probes.get(key) or ProbeWindow()
        result = fn(window)
        self._probes.put(key, window)
        if finish is not None:
            finish(result, None)
        return result

    def __len__(self) -> int:
        return len(self._items.data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
