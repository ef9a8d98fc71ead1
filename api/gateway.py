"""The gateway's long-lived parts, wired once per process: database, index snapshot, scan
writer, diversion/clone detector, indexer, outbox, webhook and job threads. Routes reach it
through `api.deps`. Every background thread is safe with many gateway processes on one
database: the indexer locks its checkpoint row, the outbox, the webhook sender and the job
runner lease the rows they work on."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from api.case_clocks import CLOCK_JOB, ClockScheduler, run_clock_job
from api.catalog import Catalog
from api.custody import CustodyService
from api.custody.store import append_scans
from api.db import make_engine
from api.detection import GatewayDetector
from api.enrollment import ENROLL_JOB, run_enrollment_job
from api.indexer import Indexer, IndexerThread
from api.jobs import Handler, JobRunner
from api.label_jobs import LABEL_JOB, run_label_job
from api.migrate import upgrade
from api.outbox import ChainWriter, OutboxThread
from api.registrations import Registrations
from api.scans import ScanWriter
from api.webhook_delivery import WebhookSender, WebhookThread
from cases.calendar import add_calendars
from chain.contract import connect
from ledger.config import Settings
from ledger.errors import InvalidInput

log = logging.getLogger("borderledger.gateway")


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    registry: str
    catalog: Catalog = field(init=False)
    scans: ScanWriter = field(init=False)
    writer: ChainWriter = field(init=False)
    indexer: Indexer = field(init=False)
    detection: GatewayDetector = field(init=False)
    webhooks: WebhookSender = field(init=False)
    custody: CustodyService = field(init=False)
    jobs: JobRunner = field(init=False)
    indexer_thread: IndexerThread | None = None
    outbox_thread: OutboxThread | None = None
    webhook_thread: WebhookThread | None = None
    clock_thread: ClockScheduler | None = None
    _started: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.settings.case_calendars is not None:
            add_calendars(self.settings.case_calendars.read_text())
        self.catalog = Catalog(self.engine, self.settings.secret_key)
        self.registrations = Registrations(self.engine)
        self.scans = ScanWriter(self.engine, on_insert=append_scans)  # scans are logged
        self.detection = GatewayDetector(self.engine)
        self.webhooks = WebhookSender(self.engine, self.settings)
        self.writer = ChainWriter(
            self.engine, self.settings.rpc_url, self.registry, self.settings.secret_key
        )
        self.custody = CustodyService(
            self.engine, self.settings, self.catalog, self.detection, self.writer
        )
        self.indexer = Indexer(
            self.engine,
            connect(self.settings.rpc_url, timeout=5, request_retries=1),
            self.registry,
            confirmations=self.settings.confirmations,
            page_blocks=self.settings.log_page_blocks,
            start_block=self.settings.index_start_block,
            previous=self.settings.retired_registries(),
        )
        #: Job kinds and their handlers: later kinds (label files, imports) are added here.
        handlers: dict[str, Handler] = {
            ENROLL_JOB: lambda job: run_enrollment_job(self, job),
            CLOCK_JOB: lambda job: run_clock_job(self.engine, job),
            LABEL_JOB: lambda job: run_label_job(self, job),
        }
        self.jobs = JobRunner(
            self.engine,
            handlers,
            lease_seconds=self.settings.job_lease_seconds,
            max_attempts=self.settings.job_max_attempts,
            poll_interval=self.settings.job_poll_interval,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, engine: Engine | None = None, *, migrate: bool = True
    ) -> Gateway:
        """A gateway for `settings`; `migrate=False` when the database was already brought
        up to date (`borderledger serve` migrates once, before its workers start)."""
        if not settings.registry:
            raise InvalidInput("the gateway needs BORDERLEDGER_REGISTRY (the registry address)")
        engine = engine or make_engine(settings.sqlalchemy_url)
        if migrate:
            upgrade(engine)
        return cls(settings, engine, settings.registry)

    def start(self, background: bool = True) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            self.custody.start(background)
            self.scans.start()
            if background:
                self.indexer_thread = IndexerThread(
                    self.indexer,
                    self.settings.index_poll_interval,
                    after_poll=self._after_poll,
                )
                self.indexer_thread.start()
                self.outbox_thread = OutboxThread(self.writer)
                self.outbox_thread.start()
                self.webhook_thread = WebhookThread(
                    self.webhooks, self.settings.webhook_poll_interval
                )
                self.webhook_thread.start()
                self.jobs.start()
                self.clock_thread = ClockScheduler(
                    self.engine, self.jobs, self.settings.case_clock_interval
                )
                self.clock_thread.start()

    def stop(self) -> None:
        with self._lock:
            if not self._started:
                return
            self._started = False
            if self.clock_thread is not None:
                self.clock_thread.stop()
                self.clock_thread = None
            self.jobs.stop()  # first: a running job is handed back to another process
            for thread in (self.indexer_thread, self.outbox_thread, self.webhook_thread):
                if thread is not None:
                    thread.stop()
            self.webhooks.close()
            self.custody.stop()
            self.detection.close()  # judges what is queued; its scans are then recorded
            self.scans.stop()

    def _after_poll(self) -> None:
        self.detection.sync_statuses()
        if self.writer.recover_dropped(self.indexer.start_block) and self.outbox_thread:
            self.outbox_thread.wake.set()  # writes a reorganization dropped: submit them now

    def sync_index(self) -> None:
        """Index up to the chain head now (tests, and right after this gateway's own writes)."""
        self.indexer.poll_once()
        self.catalog.invalidate()
        self.detection.sync_statuses()
        self.writer.recover_dropped(self.indexer.start_block)
