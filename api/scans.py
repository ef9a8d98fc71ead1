"""Recording scans without slowing verification down.

Each verification is recorded as a `ScanEvent`. Requests hand their rows to a writer thread
that inserts them in batches (one transaction per batch): a verification costs no database
write on its own path, and a burst of scans costs a few transactions instead of one each.
`flush()` waits until everything handed over so far is stored. Rows that cannot be written
(database briefly down) are retried, not dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError

from api.models import ScanEvent

log = logging.getLogger("borderledger.scans")


class ScanWriter(threading.Thread):
    def __init__(
        self,
        engine: Engine,
        max_batch: int = 500,
        linger: float = 0.05,
        on_insert: Callable[[Connection, Sequence[dict[str, Any]]], None] | None = None,
    ) -> None:
        super().__init__(name="borderledger-scans", daemon=True)
        self.engine = engine
        #: Called in the inserting transaction with the rows (the custody log appends them).
        self.on_insert = on_insert
        self.max_batch = max_batch
        #: How long a batch waits for more rows after its first (unless a flush asks): under
        #: load, one transaction per `linger` instead of one per wake-up of this thread, and
        #: fewer GIL hand-overs from the request loop to this thread.
        self.linger = linger
        #: SimpleQueue (C): a put from the request path costs no Condition (queue.Queue's
        #: lock + notify in Python cost ~4% of a verification's CPU)
        self._queue: queue.SimpleQueue[dict[str, Any] | threading.Event | None] = (
            queue.SimpleQueue()
        )
        self._stopping = False

    def record(self, scan: ScanEvent | dict[str, Any]) -> None:
        """Queue a scan: a ScanEvent, or the same as a plain dict of its columns (cheaper on
        the request path: no model validation)."""
        self._queue.put(scan.model_dump(exclude={"id"}) if isinstance(scan, ScanEvent) else scan)

    def flush(self, timeout: float = 30) -> None:
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def stop(self) -> None:
        self._stopping = True
        self._queue.put(None)
        self.join(timeout=30)

    def run(self) -> None:
        while True:
            item = self._queue.get()
            pending: list[dict[str, Any]] = []
            waiters: list[threading.Event] = []
            stop = False
            deadline = time.monotonic() + self.linger
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                else:
                    pending.append(item)
                if stop or waiters or len(pending) >= self.max_batch:
                    break
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            if pending:
                self._write(pending)
            for waiter in waiters:
                waiter.set()
            if stop:
                return

    def _write(self, rows: list[dict[str, Any]]) -> None:
        """Insert `rows`, retrying while the database is unreachable: scans are evidence, so
        they are kept in memory and retried (backoff up to 5 s) rather than dropped. A row the
        database refuses on its own (a constraint or data error) cannot succeed by waiting:
        the batch is then written row by row and only the refused row is logged and skipped."""
        delay = 0.1
        attempt = 0
        while True:
            attempt += 1
            try:
                self._insert(rows)
                return
            except (IntegrityError, DataError, StatementError) as exc:
                if isinstance(exc, OperationalError) or isinstance(
                    getattr(exc, "orig", None), OSError
                ):
                    pass  # a connection problem dressed as a statement error: retry
                elif len(rows) > 1:
                    for row in rows:
                        self._write([row])
                    return
                else:
                    log.error(
                        "scan %s refused by the database, not stored: %s",
                        rows[0].get("scan_id"),
                        exc,
                    )
                    return
            except Exception as exc:
                log.warning("writing %d scans failed (attempt %d): %s", len(rows), attempt, exc)
            if self._stopping and attempt >= 3 and self._queue.empty():
                log.error(
                    "gateway stopping with the database unreachable: %d scans not stored", len(rows)
                )
                return
            threading.Event().wait(delay)
            delay = min(delay * 2, 5.0)

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        """One Core INSERT for the whole batch (the ORM unit of work costs ~6x more per row)."""
        with self.engine.begin() as connection:
            connection.execute(insert(ScanEvent.__table__), rows)  # type: ignore[attr-defined]
            if self.on_insert is not None:
                self.on_insert(connection, rows)
