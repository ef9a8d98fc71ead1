"""Anchoring the custody log's checkpoints on chain, with a customs agency's key.

The gateway holds the chain key of one customs organization (setting
`BORDERLEDGER_ANCHOR_ORGANIZATION`, its name). When at least `anchor_every_entries` entries
were appended since the last checkpoint, or `anchor_interval_seconds` passed with any new
entry, it stores a checkpoint (size, root) as a `PendingWrite` ("anchor_checkpoint") and a
`checkpoints` row, in one transaction taken under the log's lock (so two gateway processes do
not anchor twice), and lets the chain writer submit it: signed once, re-broadcast on retry,
"already done" when the registry already holds that root at that size. One transaction per
checkpoint, whatever the number of entries.

A checkpoint counts as anchored only when the indexer has seen the registry's
`CheckpointAnchored` event for it (api.indexer): until then it is `queued`. A landed
checkpoint the index does not show after `resubmit_after` seconds (a reorganization dropped
it) is submitted again with `api.outbox.resubmit`, as the outbox does for every other write.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from api.custody import store
from api.custody.store import LogMirror
from api.models import (
    Checkpoint,
    CheckpointStatus,
    Organization,
    PendingWrite,
    Role,
    WriteStatus,
    utcnow,
)
from api.outbox import ChainWriter, enqueue, resubmit

log = logging.getLogger("borderledger.custody")
RESUBMIT_SECONDS = 120.0


class Anchorer:
    def __init__(
        self,
        mirror: LogMirror,
        writer: ChainWriter,
        organization: str | None,
        every_entries: int,
        interval_seconds: float,
    ) -> None:
        self.mirror = mirror
        self.engine = mirror.engine
        self.writer = writer
        self.organization = organization
        self.every_entries = every_entries
        self.interval_seconds = interval_seconds
        self._started = time.monotonic()
        #: Seconds after which a landed checkpoint the indexer has not seen is submitted again.
        self.resubmit_after = RESUBMIT_SECONDS

    def agency(self) -> Organization | None:
        """The anchoring customs organization, once it exists and has a chain address."""
        if not self.organization:
            return None
        with Session(self.engine, expire_on_commit=False) as session:
            org = session.exec(
                select(Organization).where(Organization.name == self.organization)
            ).first()
        if org is None or org.role != Role.CUSTOMS or not org.address or not org.key_encrypted:
            return None
        return org

    def agency_address(self) -> str | None:
        org = self.agency()
        return org.address if org else None

    def settle(self, agency: str) -> None:
        """Mark queued checkpoints whose chain write failed (e.g. a later one landed first)."""
        with Session(self.engine) as session:
            queued = session.exec(
                select(Checkpoint).where(
                    Checkpoint.agency == agency,
                    Checkpoint.status == CheckpointStatus.QUEUED.value,
                )
            ).all()
            for checkpoint in queued:
                write = session.get(PendingWrite, checkpoint.write_id or -1)
                if write is not None and write.status == WriteStatus.FAILED:
                    checkpoint.status = CheckpointStatus.FAILED.value
                    checkpoint.error = write.error
                    checkpoint.updated_at = utcnow()
                    session.add(checkpoint)
            session.commit()

    def due(self, force: bool = False) -> Checkpoint | None:
        """Store the next checkpoint if one is due; returns it (None if nothing to do)."""
        org = self.agency()
        if org is None or org.id is None or org.address is None:
            return None
        self.settle(org.address)
        size = self.mirror.catch_up()
        if size == 0:
            return None
        root = self.mirror.log.root(size)
        with Session(self.engine, expire_on_commit=False) as session:
            store.lock(session.connection())  # one anchoring decision at a time
            last = session.exec(
                select(Checkpoint)
                .where(
                    Checkpoint.agency == org.address,
                    Checkpoint.status != CheckpointStatus.FAILED.value,
                )
                .order_by(col(Checkpoint.size).desc())
                .limit(1)
            ).first()
            if last is not None and last.status == CheckpointStatus.QUEUED.value:
                write = session.get(PendingWrite, last.write_id or -1)
                if write is None or write.status != WriteStatus.DONE:
                    return None  # one in flight at a time: sizes must increase on chain
                if size <= last.size:
                    # Landed, yet not (or no longer) seen on chain: a reorg may have dropped
                    # it. Submit again; the outbox first checks whether the chain has it.
                    if (datetime.now(UTC) - _aware(write.updated_at)).total_seconds() < (
                        self.resubmit_after
                    ):
                        return None
                    resubmit(session, write)
                    session.commit()
                    return last
            last_size = last.size if last else 0
            if size <= last_size:
                return None
            since = (
                (datetime.now(UTC) - _aware(last.created_at)).total_seconds()
                if last
                else time.monotonic() - self._started
            )
            if (
                not force
                and size - last_size < self.every_entries
                and since < self.interval_seconds
            ):
                return None
            failed = session.get(Checkpoint, (org.address, size))
            if failed is not None and (
                datetime.now(UTC) - _aware(failed.updated_at)
            ).total_seconds() < min(self.interval_seconds, 60.0):
                return None  # refused a moment ago (e.g. agency not accredited yet): wait
            payload: dict[str, object] = {
                "agency": org.address,
                "size": size,
                "root": "0x" + root.hex(),
            }
            write = enqueue(
                session, org.id, "anchor_checkpoint", payload, f"anchor:{org.address}:{size}"
            )
            if write.status == WriteStatus.FAILED:  # the same size again, after a refusal
                write.status, write.error = WriteStatus.QUEUED, None
                write.signed_tx, write.tx_hash = None, None
                write.updated_at = utcnow()
                session.add(write)
            checkpoint = failed or Checkpoint(agency=org.address, size=size, root="")
            checkpoint.root = "0x" + root.hex()
            checkpoint.status = CheckpointStatus.QUEUED.value
            checkpoint.write_id, checkpoint.error = write.id, None
            checkpoint.updated_at = utcnow()
            session.add(checkpoint)
            session.commit()
            return checkpoint

    def run_once(self, force: bool = False) -> Checkpoint | None:
        """Anchor now if due: store the checkpoint and submit its write."""
        checkpoint = self.due(force=force)
        if checkpoint is not None and checkpoint.write_id is not None:
            self.writer.process(only=checkpoint.write_id)
        return checkpoint


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class AnchorThread(threading.Thread):
    def __init__(self, anchorer: Anchorer, poll: float = 1.0) -> None:
        super().__init__(name="borderledger-anchor", daemon=True)
        self.anchorer = anchorer
        self.poll = poll
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.anchorer.run_once()
            except Exception as exc:  # chain or database briefly down: next pass
                log.warning("anchoring pass failed: %s", exc)
            self.stopped.wait(self.poll)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)
