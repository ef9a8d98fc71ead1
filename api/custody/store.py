"""The custody log in the database, and each process's in-memory copy of its Merkle tree.

Appending (`append`) happens inside the caller's transaction, next to the rows it logs (the
scan writer's batch insert, a capture): nothing is logged that is not stored, and nothing
stored is left unlogged. Indexes are taken under a lock: the first statement of every append
is an UPDATE of the single `log_state` row, which PostgreSQL holds as a row lock and SQLite as
its database write lock until the transaction ends, so two gateway processes on one database
take consecutive, never equal, indexes, and committed indexes are always a gapless prefix.

`LogMirror` keeps a `custody.log.MerkleLog` over the stored leaf hashes (loaded once, then
caught up from the table before answering proofs, since other processes append too).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from api.models import LogEntry, LogLink, LogState
from custody import entries
from custody.log import MerkleLog
from ledger.errors import ChainError

log = logging.getLogger("borderledger.custody")
_IN_CHUNK = 500
_LOAD_CHUNK = 50_000

_STATE = LogState.__table__  # type: ignore[attr-defined]
_ENTRIES = LogEntry.__table__  # type: ignore[attr-defined]
_LINKS = LogLink.__table__  # type: ignore[attr-defined]


@dataclass
class Pending:
    """One entry to append: what it logs (`kind`, `record`), the row it stands for (`ref`),
    and the item / container keys it is about."""

    kind: str
    ref: str
    record: dict[str, Any]
    keys: Sequence[str] = ()
    #: Filled by `append`.
    index: int = -1
    previous: dict[str, int | None] = field(default_factory=dict)


def ensure_state(engine: Engine) -> None:
    """Create the `log_state` row if missing (at start-up; two processes may race: fine)."""
    with engine.begin() as connection:
        if connection.execute(select(_STATE.c.id).where(_STATE.c.id == 1)).first() is None:
            try:
                with connection.begin_nested():
                    connection.execute(insert(_STATE).values(id=1, size=0))
            except IntegrityError:
                pass


def lock(connection: Connection) -> int:
    """Take the log's lock for the rest of the transaction; returns the current size."""
    result = connection.execute(update(_STATE).where(_STATE.c.id == 1).values(size=_STATE.c.size))
    if result.rowcount == 0:
        connection.execute(insert(_STATE).values(id=1, size=0))
    size = connection.execute(select(_STATE.c.size).where(_STATE.c.id == 1)).scalar_one()
    return int(size)


def latest_indexes(connection: Connection, keys: Iterable[str]) -> dict[str, int]:
    """The index of the last entry about each key (keys never logged are absent)."""
    wanted = sorted(set(keys))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        rows = connection.execute(
            select(_LINKS.c.key, func.max(_LINKS.c.idx))
            .where(_LINKS.c.key.in_(chunk))
            .group_by(_LINKS.c.key)
        )
        found.update({str(k): int(i) for k, i in rows})
    return found


def append(connection: Connection, pending: Sequence[Pending]) -> list[int]:
    """Append `pending` in order, in the caller's transaction; returns their indexes.

    Each entry's `previous` links (per key, the last earlier entry about it) are part of the
    hashed entry, so the item chains are as tamper-evident as the entries."""
    if not pending:
        return []
    size = lock(connection)
    first = size
    connection.execute(
        update(_STATE).where(_STATE.c.id == 1).values(size=_STATE.c.size + len(pending))
    )
    latest = latest_indexes(connection, (k for p in pending for k in p.keys))
    entry_rows: list[tuple[Any, ...]] = []
    link_rows: list[tuple[Any, ...]] = []
    for offset, item in enumerate(pending):
        index = first + offset
        item.index = index
        item.previous = {}
        for key in dict.fromkeys(item.keys):
            prev = latest.get(key)
            item.previous[key] = prev
            latest[key] = index
            link_rows.append((key, index, prev))
        leaf = entries.entry_leaf(item.kind, item.record, item.previous)
        entry_rows.append((index, item.kind, item.ref, "0x" + leaf.hex()))
    _insert_many(connection, "log_entries", ("idx", "kind", "ref", "leaf"), entry_rows)
    if link_rows:
        _insert_many(connection, "log_links", ("key", "idx", "prev"), link_rows)
    return [p.index for p in pending]


def _insert_many(
    connection: Connection, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """A driver-level executemany of plain values (strings, integers, None): these are the
    hot rows of the log, and SQLAlchemy's per-value processing costs more than the insert."""
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    marks = ", ".join([mark] * len(columns))
    connection.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def scan_pending(rows: Sequence[dict[str, Any]]) -> list[Pending]:
    """Log entries of scan rows (the dicts the scan writer inserts)."""
    out = []
    for row in rows:
        gtin, serial = row.get("gtin"), row.get("serial")
        keys = [entries.item_key(gtin, serial)] if gtin and serial else []
        out.append(Pending(entries.SCAN, str(row["scan_id"]), entries.scan_record(row), keys))
    return out


def append_scans(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """The scan writer's hook: log a batch of scans in the transaction that inserts them."""
    append(connection, scan_pending(rows))


def _leaf_rows(connection: Connection, start: int, limit: int) -> list[tuple[Any, ...]]:
    """(idx, leaf) from `start` on, in order, through the driver's cursor: loading a million
    leaves through SQLAlchemy's result rows costs several times the query itself."""
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(
            f"SELECT idx, leaf FROM log_entries WHERE idx >= {mark} ORDER BY idx LIMIT {mark}",
            (start, limit),
        )
        return list(cursor.fetchall())
    finally:
        cursor.close()


class LogMirror:
    """This process's Merkle tree over the stored log, caught up on demand."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.log = MerkleLog()
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self.log.size

    def catch_up(self) -> int:
        """Load entries appended since the last call (by any process); returns the size.

        A gap in the stored indexes (a row deleted from `log_entries`) stops the load there:
        the tree cannot be rebuilt past it, and proofs are only given up to it."""
        with self._lock:
            while True:
                start = self.log.size
                with self.engine.connect() as connection:
                    rows = _leaf_rows(connection, start, _LOAD_CHUNK)
                if not rows:
                    return self.log.size
                count = len(rows)
                if int(rows[-1][0]) != start + count - 1:  # indexes are unique and ordered
                    count = next(n for n, row in enumerate(rows) if int(row[0]) != start + n)
                    log.error(
                        "custody log: entry %d is missing from the database; "
                        "the log is served up to it only",
                        start + count,
                    )
                if count:
                    self.log.extend(bytes.fromhex("".join([row[1][2:] for row in rows[:count]])))
                if count < len(rows) or len(rows) < _LOAD_CHUNK:
                    return self.log.size

    def require(self, size: int) -> None:
        """Make sure the tree holds at least `size` entries."""
        if self.log.size < size and self.catch_up() < size:
            raise ChainError(f"the custody log holds {self.log.size} entries, {size} needed")
