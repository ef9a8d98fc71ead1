"""Recording scans without slowing verification down.

Each verification is recorded as a `ScanEvent`. Requests hand their rows to a writer thread
that inserts them in batches (one transaction per batch): a verification costs no database
write on its own path, and a burst of scans costs a few transactions instead of one each.
`flush()` waits until everything handed over so far is stored.
"""

from __future__ import annotations

import logging
import queue
import threading

from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.models import ScanEvent

log = logging.getLogger("borderledger.scans")


class ScanWriter(threading.Thread):
    def __init__(self, engine: Engine, max_batch: int = 500) -> None:
        super().__init__(name="borderledger-scans", daemon=True)
        self.engine = engine
        self.max_batch = max_batch
        self._queue: queue.Queue[ScanEvent | threading.Event | None] = queue.Queue()

    def record(self, scan: ScanEvent) -> None:
        self._queue.put(scan)

    def flush(self, timeout: float = 30) -> None:
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def stop(self) -> None:
        self._queue.put(None)
        self.join(timeout=30)

    def run(self) -> None:
        while True:
            item = self._queue.get()
            pending: list[ScanEvent] = []
            waiters: list[threading.Event] = []
            stop = False
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                else:
                    pending.append(item)
                if stop or len(pending) >= self.max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if pending:
                self._write(pending)
            for waiter in waiters:
                waiter.set()
            if stop:
                return

    def _write(self, rows: list[ScanEvent]) -> None:
        for attempt in range(5):
            try:
                with Session(self.engine) as session:
                    session.add_all(rows)
                    session.commit()
                return
            except Exception as exc:  # database busy or briefly down: retry, then log
                log.warning("writing %d scans failed (attempt %d): %s", len(rows), attempt + 1, exc)
                threading.Event().wait(0.2 * (attempt + 1))
        log.error("dropped %d scan records after 5 attempts", len(rows))
