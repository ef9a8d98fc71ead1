"""Background jobs: stored input, leases, cancel and retry, listing, and a gateway killed with
SIGKILL in the middle of a large enrollment that finishes it after a restart."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from api.db import make_engine
from api.jobs import JobRunner, JobStopped
from api.models import Job
from bench.enroll_api import _admin as admin_setup
from chain.contract import RegistryClient, connect
from chain.node import LocalNode, free_port
from ledger.batch import batch_id_of
from ledger.config import PROJECT_ROOT, Settings
from tests.stack import GTIN, Stack

#: Size of the enrollment killed mid-way. At 200,000 the test took 52 s on SQLite on the
#: shared 2-core box (load ~5.5): start 13 s, kill at a quarter 4 s, restart 6 s, the rest of
#: the job 8 s (earlier chunks are not tagged again), tag download and checks 17 s; 59 s on
#: PostgreSQL.
SIGKILL_ITEMS = int(os.environ.get("BORDERLEDGER_TEST_SIGKILL_ITEMS", "200000"))


def _error(r: Any, status: int, code: str, *words: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"]["code"] == code, body
    for word in words:
        assert word.lower() in body["error"]["message"].lower(), (word, body)
    return body


def _count(engine: sa.Engine, table: str, where: str = "") -> int:
    with engine.connect() as connection:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(connection.execute(sa.text(sql)).scalar() or 0)


def _registrations(registry: RegistryClient, batch_id: str) -> int:
    logs = registry.contract.events.BatchRegistered.get_logs(from_block=0)
    return sum(1 for log in logs if "0x" + bytes(log["args"]["batchId"]).hex() == batch_id)


@pytest.fixture
def holder(stack: Stack) -> dict[str, Any]:
    return stack.org("Acme Pharma", "rights_holder", "TMK 1")


def _submit(stack: Stack, key: str, lot: str, items: int = 120, gtin: str = GTIN) -> dict[str, Any]:
    stack.gateway.settings.sync_enroll_limit = 50
    serials = [f"{lot}-{i:05d}" for i in range(items)]
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": gtin, "lot": lot, "serials": serials},
        headers=stack.headers(key),
    )
    assert r.status_code == 202, r.text
    accepted: dict[str, Any] = r.json()
    assert (
        accepted["status"] == "queued"
        and accepted["batchId"] == "0x" + batch_id_of(gtin, lot).hex()
    )
    return accepted


def _job(stack: Stack, key: str, job_id: str) -> dict[str, Any]:
    r = stack.client.get(f"/v1/jobs/{job_id}", headers=stack.headers(key))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _wait(stack: Stack, key: str, job_id: str, *states: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = _job(stack, key, job_id)
        if job["status"] in states:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


@contextmanager
def _paused(stack: Stack) -> Iterator[None]:
    """The gateway's runner takes no job (as if every gateway process were busy)."""
    stack.gateway.jobs.stopping.set()
    try:
        yield
    finally:
        stack.gateway.jobs.stopping.clear()
        stack.gateway.jobs.wake()  # without a runner thread (tests), nothing else would


def _runner(stack: Stack, **options: Any) -> JobRunner:
    """Another runner on the same database: another gateway process, as far as leases go."""
    return JobRunner(stack.gateway.engine, stack.gateway.jobs.handlers, **options)


# ----------------------------------------------------------------------------- in-process


def test_jobs_are_listed_per_organization(stack: Stack, holder: dict[str, Any]) -> None:
    rival = stack.org("Rival", "rights_holder", gtins=("08712345000004",))
    officer = stack.org("NL Customs", "customs")
    mine = _submit(stack, holder["apiKey"], "LIST1")
    theirs = _submit(stack, rival["apiKey"], "LIST2", gtin="08712345000004")
    for key, job_id in ((holder["apiKey"], mine["jobId"]), (rival["apiKey"], theirs["jobId"])):
        done = _wait(stack, key, job_id, "done", "failed")
        assert done["status"] == "done", done["error"]
        assert done["done"] == done["total"] == 120 and done["attempts"] == 1
        assert done["kind"] == "enroll" and done["cancellable"] is False
        assert done["finishedAt"] and done["result"]["registration"] == "done"

    def listed(key: str, **query: str) -> list[str]:
        r = stack.client.get("/v1/jobs", params=query, headers=stack.headers(key))
        assert r.status_code == 200, r.text
        return [job["id"] for job in r.json()]

    assert listed(holder["apiKey"]) == [mine["jobId"]]
    assert listed(rival["apiKey"]) == [theirs["jobId"]]
    assert listed(officer["apiKey"]) == []
    assert listed(stack.admin_key) == [theirs["jobId"], mine["jobId"]]  # newest first
    assert listed(stack.admin_key, status="failed") == []
    assert listed(stack.admin_key, kind="enroll", limit="1") == [theirs["jobId"]]
    r = stack.client.get(
        "/v1/jobs", params={"status": "nope"}, headers=stack.headers(holder["apiKey"])
    )
    _error(r, 422, "invalid_input", "status")
    _error(stack.client.get("/v1/jobs"), 401, "unauthenticated")
    # another organization's job is not found, for reading and for changing alike
    for path in ("", "/cancel", "/retry"):
        method = stack.client.get if not path else stack.client.post
        r = method(f"/v1/jobs/{mine['jobId']}{path}", headers=stack.headers(rival["apiKey"]))
        _error(r, 404, "not_found")
    for bad in ("nope", "%00", str(uuid.uuid4())):
        r = stack.client.post(f"/v1/jobs/{bad}/cancel", headers=stack.headers(holder["apiKey"]))
        _error(r, 404, "not_found")
    # the stored input of a finished job is gone; the job row stays
    assert _count(stack.gateway.engine, "job_inputs") == 0
    assert _count(stack.gateway.engine, "jobs") == 2


def test_cancel_and_retry_a_queued_job(stack: Stack, holder: dict[str, Any]) -> None:
    key = holder["apiKey"]
    with _paused(stack):
        accepted = _submit(stack, key, "CXL", items=25_000)
        job_id = accepted["jobId"]
        queued = _job(stack, key, job_id)
        assert queued["status"] == "queued" and queued["total"] == 25_000
        # the input is stored in chunks of 10,000, each item once
        assert _count(stack.gateway.engine, "job_inputs", f"job_id = '{job_id}'") == 3
        with stack.gateway.engine.connect() as connection:
            counted = connection.execute(sa.text("SELECT sum(count) FROM job_inputs")).scalar()
        assert counted == 25_000

        r = stack.client.post(f"/v1/jobs/{job_id}/cancel", headers=stack.headers(key))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled" and r.json()["finishedAt"]
        again = stack.client.post(f"/v1/jobs/{job_id}/cancel", headers=stack.headers(key))
        assert again.status_code == 200 and again.json()["status"] == "cancelled"
        # a cancelled job is not run
        assert stack.gateway.jobs.claim() is None

    assert _count(stack.gateway.engine, "gateway_batches") == 0
    r = stack.client.post(f"/v1/jobs/{job_id}/retry", headers=stack.headers(key))
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("queued", "running") and r.json()["error"] is None
    done = _wait(stack, key, job_id, "done", "failed", timeout=120)
    assert done["status"] == "done" and done["done"] == 25_000, done
    assert done["result"]["count"] == 25_000 and done["result"]["registration"] == "done"
    # finished: neither cancelled nor retried
    r = stack.client.post(f"/v1/jobs/{job_id}/cancel", headers=stack.headers(key))
    _error(r, 409, "conflict", "done")
    r = stack.client.post(f"/v1/jobs/{job_id}/retry", headers=stack.headers(key))
    _error(r, 409, "conflict", "done")
    stack.sync()
    assert len(stack.tags(key, accepted["batchId"])) == 25_000


def test_a_cancelled_running_job_stores_nothing(stack: Stack, holder: dict[str, Any]) -> None:
    key = holder["apiKey"]
    with _paused(stack):
        job_id = _submit(stack, key, "RUNCXL")["jobId"]
        other = _runner(stack)
        claim = other.claim()
        assert claim is not None and claim.id == job_id and claim.attempt == 1
        running = _job(stack, key, job_id)
        assert running["status"] == "running" and running["attempts"] == 1
        r = stack.client.post(f"/v1/jobs/{job_id}/cancel", headers=stack.headers(key))
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    other.run(claim)  # the runner learns at its first heartbeat or, at the latest, at commit
    assert _job(stack, key, job_id)["status"] == "cancelled"
    assert _count(stack.gateway.engine, "gateway_batches") == 0
    assert _count(stack.gateway.engine, "pending_writes", "kind = 'register_batch'") == 0
    batch_id = "0x" + batch_id_of(GTIN, "RUNCXL").hex()
    assert _registrations(stack.registry, batch_id) == 0


def test_an_expired_lease_is_claimed_again(stack: Stack, holder: dict[str, Any]) -> None:
    key = holder["apiKey"]
    with _paused(stack):
        accepted = _submit(stack, key, "LEASE")
        dead = _runner(stack, lease_seconds=1.0)
        first = dead.claim()  # a process that claims the job and dies
        assert first is not None
        alive = _runner(stack, lease_seconds=1.0)
        assert alive.claim() is None  # leased: nobody else takes it
        time.sleep(1.2)
        second = alive.claim()
        assert second is not None and second.id == first.id and second.attempt == 2
        assert second.token != first.token
        alive.run(second)
    job = _job(stack, key, accepted["jobId"])
    assert job["status"] == "done" and job["attempts"] == 2, job
    # the dead runner's lease is gone: its heartbeat fails and it could store nothing
    from api.jobs import JobContext

    stale = JobContext(
        first.id, first.kind, first.organization_id, first.params, first.total, 1, first.token,
        stack.gateway.engine, dead.stopping,
    )  # fmt: skip
    assert dead.heartbeat(stale) is False and stale.lost.is_set()
    with Session(stack.gateway.engine) as session, pytest.raises(JobStopped):
        stale.commit(session)
    assert _registrations(stack.registry, accepted["batchId"]) == 1


def test_a_job_whose_runners_keep_dying_fails(stack: Stack, holder: dict[str, Any]) -> None:
    key = holder["apiKey"]
    with _paused(stack):
        job_id = _submit(stack, key, "DOOMED")["jobId"]
        runner = _runner(stack, lease_seconds=0.2, max_attempts=2)
        for attempt in (1, 2):
            claim = runner.claim()
            assert claim is not None and claim.attempt == attempt
            time.sleep(0.3)  # ... and the process dies
        assert runner.claim() is None
    job = _job(stack, key, job_id)
    assert job["status"] == "failed" and "gave up after 2 attempts" in job["error"], job
    r = stack.client.post(f"/v1/jobs/{job_id}/retry", headers=stack.headers(key))
    assert r.status_code == 200 and r.json()["attempts"] == 0, r.text
    assert _wait(stack, key, job_id, "done", "failed")["status"] == "done"


def test_a_stopping_runner_hands_its_job_back_and_the_next_resumes(
    stack: Stack, holder: dict[str, Any]
) -> None:
    """SIGTERM mid-job: the runner hands the job back (queued, attempt not counted) with the
    chunks it finished stored; the next attempt tags only the rest, and the batch is right:
    items from the resumed chunks and from the new ones verify as genuine."""
    key = holder["apiKey"]
    officer = stack.org("NL Customs", "customs")["apiKey"]
    engine = stack.gateway.engine
    with _paused(stack):
        accepted = _submit(stack, key, "HANDBACK", items=45_000)
        job_id = accepted["jobId"]
        runner = _runner(stack)
        claim = runner.claim()
        assert claim is not None
        worker = threading.Thread(target=runner.run, args=(claim,))
        worker.start()
        deadline = time.monotonic() + 120
        while _count(engine, "job_inputs", "output IS NOT NULL") < 1:
            assert time.monotonic() < deadline and worker.is_alive()
            time.sleep(0.02)
        runner.stopping.set()  # SIGTERM: the handler stops at its next progress report
        worker.join(120)
        job = _job(stack, key, job_id)
        assert job["status"] == "queued" and job["attempts"] == 0 and job["done"] == 0, job
        kept = _count(engine, "job_inputs", "output IS NOT NULL")
        assert 1 <= kept < 5, kept  # 45,000 items: five chunks, some finished
        assert _count(engine, "gateway_batches") == 0
    done = _wait(stack, key, job_id, "done", "failed", timeout=120)
    assert done["status"] == "done" and done["attempts"] == 1, done
    stack.sync()
    tags = stack.tags(key, accepted["batchId"])
    assert len(tags) == 45_000
    for row in (tags[0], tags[9_999], tags[40_000], tags[-1]):
        assert stack.verify(officer, tag=row["uri"])["verdict"] == "GENUINE", row
    assert _registrations(stack.registry, accepted["batchId"]) == 1


def test_rerun_after_the_batch_was_stored_is_idempotent(
    stack: Stack, holder: dict[str, Any]
) -> None:
    """A runner that died after storing the batch (and even after registering it) but before
    recording the job as done: the next attempt adds no batch, no write, no transaction."""
    key = holder["apiKey"]
    accepted = _submit(stack, key, "TWICE")
    first = _wait(stack, key, accepted["jobId"], "done", "failed")
    assert first["status"] == "done", first
    engine = stack.gateway.engine
    with Session(engine) as session:
        job = session.get(Job, accepted["jobId"])
        assert job is not None
        job.status, job.claim_token, job.claimed_until = "running", "dead-runner", None
        job.result, job.finished_at = None, None
        session.add(job)
        session.commit()
    # the input must still be there for a rerun: store it again as the dead runner left it
    with Session(engine) as session:
        from api.jobs import _store_chunk

        _store_chunk(session, accepted["jobId"], 0, [f"TWICE-{i:05d}" for i in range(120)])
        session.commit()
    # past its point of no return (the batch is stored): no cancel
    r = stack.client.post(f"/v1/jobs/{accepted['jobId']}/cancel", headers=stack.headers(key))
    _error(r, 409, "conflict", "stored its work")
    runner = _runner(stack)
    claim = runner.claim()
    assert claim is not None and claim.attempt == 2
    runner.run(claim)
    again = _job(stack, key, accepted["jobId"])
    assert again["status"] == "done" and again["result"]["root"] == first["result"]["root"]
    assert again["result"]["txHash"] == first["result"]["txHash"]
    assert _count(engine, "gateway_batches") == 1 and _count(engine, "batch_trees") == 1
    assert _count(engine, "pending_writes", "kind = 'register_batch'") == 1
    assert _registrations(stack.registry, accepted["batchId"]) == 1


# ------------------------------------------------------------------ a real gateway, killed


@dataclass
class Served:
    """`borderledger serve` in its own process group."""

    env: dict[str, str]
    cwd: Path
    workers: int = 2
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    extra: tuple[str, ...] = ()

    def start(self, timeout: float = 90) -> None:
        self.port = self.port or free_port()
        ready = self.cwd / f"ready-{self.port}"
        ready.unlink(missing_ok=True)
        command = [sys.executable, "-m", "borderledger", "serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers), "--ready-file", str(ready), *self.extra]
        command += ["--log-level", "warning"]
        env = {**os.environ, **self.env, "PYTHONPATH": str(PROJECT_ROOT)}
        with (self.cwd / "serve.log").open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=self.cwd, env=env, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode}: {self.log()}")
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.1)

    def log(self) -> str:
        return (self.cwd / "serve.log").read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        """SIGKILL the supervisor and every worker (a crash, a power cut)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def terminate(self, timeout: float = 120) -> int:
        """SIGTERM, then the exit status once the server has stopped."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.terminate_wait(timeout)

    def terminate_wait(self, timeout: float = 120) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        self.process = None
        return code

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@dataclass
class Deployment:
    env: dict[str, str]
    admin_key: str
    registry: RegistryClient
    engine: sa.Engine


@contextmanager
def deployment(node: LocalNode, kind: str, home: Path, **settings: str) -> Iterator[Deployment]:
    """A registry on `node` and a migrated database (SQLite file, or a fresh PostgreSQL
    schema named in the URL) with an admin organization: what `serve` is pointed at."""
    schema = None
    if kind == "sqlite":
        url = f"sqlite:///{home / 'gateway.db'}"
    else:
        base = os.environ.get("DATABASE_URL")
        if not base:
            pytest.skip("DATABASE_URL is not set")
        schema = f"t_{uuid.uuid4().hex[:12]}"
        url = f"{base}?options=-csearch_path%3D{schema}"
    admin = sa.create_engine(
        Settings(database_url=os.environ.get("DATABASE_URL") or url).sqlalchemy_url
    )
    if schema:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(Settings(database_url=url).sqlalchemy_url)
    try:
        # the benchmark's set-up: deploy, migrate, create the admin (the URL names the schema)
        env = admin_setup(node.url, url, None, home)
        admin_key = env.pop("BORDERLEDGER_ADMIN_KEY")
        env.pop("BORDERLEDGER_BENCH_SCHEMA")
        env |= {f"BORDERLEDGER_{k.upper()}": v for k, v in settings.items()}
        registry = RegistryClient(connect(node.url), env["BORDERLEDGER_REGISTRY"])
        yield Deployment(env, admin_key, registry, engine)
    finally:
        engine.dispose()
        if schema:
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _csv(items: int) -> bytes:
    return ("serial\n" + "".join(f"K{i:09d}\n" for i in range(items))).encode()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_sigkill_during_a_large_enrollment(anvil: LocalNode, tmp_path: Path, kind: str) -> None:
    """The gateway is killed (SIGKILL, every process) while the job tags the batch; after a
    restart the job finishes: one registration transaction, every item stored once, tags
    downloadable and genuine."""
    items = SIGKILL_ITEMS
    clock, phases = time.monotonic(), {}

    def mark(phase: str) -> None:  # seconds per phase, printed at the end
        nonlocal clock
        phases[phase], clock = time.monotonic() - clock, time.monotonic()

    with deployment(anvil, kind, tmp_path, job_lease_seconds="3") as dep:
        served = Served(dep.env, tmp_path)
        try:
            served.start()
            mark("started")
            url = f"http://127.0.0.1:{served.port}"
            admin = {"Authorization": f"Bearer {dep.admin_key}"}
            with httpx.Client(base_url=url, timeout=120) as client:
                holder = client.post(
                    "/v1/organizations",
                    json={"name": "Acme", "role": "rights_holder", "recordation": "R1"},
                    headers=admin,
                ).json()
                officer = client.post(
                    "/v1/organizations", json={"name": "Customs", "role": "customs"}, headers=admin
                ).json()
                bound = client.post(
                    "/v1/gtin-bindings",
                    json={"gtin": GTIN, "organizationId": holder["id"]},
                    headers=admin,
                )
                assert bound.status_code == 202, bound.text
                key = {"Authorization": f"Bearer {holder['apiKey']}"}
                r = client.post(
                    "/v1/batches",
                    params={"gtin": GTIN, "lot": "KILL1"},
                    content=_csv(items),
                    headers={**key, "Content-Type": "text/csv"},
                )
                assert r.status_code == 202, r.text
                job_id, batch_id = r.json()["jobId"], r.json()["batchId"]
                mark("upload accepted")
                started = time.monotonic()
                while True:  # until the job is visibly under way, but not finished
                    job = client.get(f"/v1/jobs/{job_id}", headers=key).json()
                    assert job["status"] in ("queued", "running"), job
                    if job["done"] >= items // 4:
                        break
                    assert time.monotonic() - started < 300, job
                    time.sleep(0.1)
            assert job["done"] < items and job["cancellable"] is True, job
            mark("killed mid-way")
            served.kill()
            assert _count(dep.engine, "gateway_batches") == 0  # nothing half-written
            # the chunks tagged before the kill are kept: the next attempt resumes after them
            assert _count(dep.engine, "job_inputs", "output IS NOT NULL") >= 1

            served.start()
            mark("restarted")
            with httpx.Client(base_url=url, timeout=120) as client:
                deadline = time.monotonic() + 600
                while True:
                    job = client.get(f"/v1/jobs/{job_id}", headers=key).json()
                    if job["status"] in ("done", "failed", "cancelled"):
                        break
                    assert time.monotonic() < deadline, job
                    time.sleep(0.2)
                assert job["status"] == "done", job
                mark("finished after restart")
                assert job["attempts"] == 2 and job["done"] == job["total"] == items, job
                assert job["result"]["registration"] == "done" and job["result"]["count"] == items

                # one registration transaction, one batch, one tree, one write
                assert _registrations(dep.registry, batch_id) == 1
                assert _count(dep.engine, "gateway_batches") == 1
                assert _count(dep.engine, "batch_trees") == 1
                assert _count(dep.engine, "pending_writes", "kind = 'register_batch'") == 1
                assert _count(dep.engine, "job_inputs") == 0  # freed once done

                while client.get(f"/v1/batches/{batch_id}", headers=key).json()["status"] is None:
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
                # every item once, tags downloadable, a sample genuine
                mark("indexed")
                with client.stream("GET", f"/v1/batches/{batch_id}/tags", headers=key) as r:
                    assert r.status_code == 200
                    text = "".join(r.iter_text())
                rows = list(csv.DictReader(io.StringIO(text)))
                serials = [row["serial"] for row in rows]
                assert len(serials) == items and len(set(serials)) == items
                assert serials[0] == "K000000000" and serials[-1] == f"K{items - 1:09d}"
                officer_key = {"Authorization": f"Bearer {officer['apiKey']}"}
                for row in (rows[0], rows[items // 2], rows[-1]):
                    r = client.post("/v1/verify", json={"tag": row["uri"]}, headers=officer_key)
                    assert r.status_code == 200 and r.json()["verdict"] == "GENUINE", r.text
            assert served.terminate() == 0
            mark("stopped")
            print(" ".join(f"{k} {v:.1f}s" for k, v in phases.items()), file=sys.stderr)
        finally:
            served.close()
