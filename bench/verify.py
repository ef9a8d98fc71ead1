"""`borderledger bench verify`: verification throughput and latency over HTTP.

Per database (a SQLite file, and a fresh schema of a PostgreSQL database dropped afterwards):

1. Anvil, a deployed registry, an admin organization in the database; a rights holder and a
   customs agency created through the API; one batch of `items` items enrolled through the
   API, indexed, and its signed tags downloaded (all in-process, as the API tests do).
2. The gateway served by real uvicorn in a separate process group (`bench.serve`): `workers`
   processes, each with its own gateway, background indexer and SO_REUSEPORT socket. The
   keep-alive connections are spread evenly over the workers (as a least-connections
   balancer would), then warmed up and checked to answer GENUINE before anything is
   measured.
3. Closed loop: `concurrency` keep-alive connections, each sending the next tag as soon as the
   previous answer arrives, for `seconds`: verifications per second and latency percentiles.
4. Open loop: requests sent on a fixed schedule of `rate` per second for `seconds`, whatever
   the answers do; each latency is measured from the request's *scheduled* time, so a stall
   of the server is charged to every request queued behind it (no coordinated omission).
5. The naive design, side by side: the same tags checked with one `eth_call` of the
   registry's `checkTag` view per verification (`RegistryClient.check_tag`), by as many
   processes as the gateway has workers with `concurrency` threads in all, for `seconds`
   counted from when every process has warmed up. It is called directly, with no HTTP
   server in front, so its figure is an upper bound of what a gateway built that way could
   serve; `ratio_vs_naive` (the target's figure) is measured against it.
6. The naive design as a gateway (`bench.serve --naive`): the same eth_call behind the same
   uvicorn workers and the same kind of lean ASGI front as the gateway's /v1/verify,
   measured closed-loop by the same load generator (`naive_http`).

Where the CPU went is reported per phase: the server's processes, the load generator, and
everything else on the machine (`other_cores_busy`: the chain node, the database server,
and on a shared machine other people's work, which makes the figures lower than they are).

Every answer is checked: HTTP 200 and verdict GENUINE (naive: registered batch, valid
signature, active status); anything else counts as an error.

The load generator is by default a minimal asyncio HTTP/1.1 client (pre-built request bytes,
keep-alive, Content-Length framing) so that on a 2-core machine it takes as little CPU as
possible away from the server it measures; `client="httpx"` uses httpx's AsyncClient instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.synchronize import Barrier as BarrierType
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from bench.limits import bench_limit_env, bench_limit_settings
from ledger.config import PROJECT_ROOT

Database = Literal["sqlite", "postgresql"]
Client = Literal["raw", "httpx"]

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
BENCH_GTIN = "09506000134352"
TARGETS = {
    "verify_per_second_min": 1000,
    "p99_ms_at_500_per_second_max": 50,
    "naive_ratio_min": 10,
}
_VERDICT = re.compile(rb'"verdict"\s*:\s*"([A-Z_]+)"')
_ALERT_ID = re.compile(rb'"alertId"\s*:\s*"([^"]+)"')


@dataclass
class Sent:
    """Every request a pool sent and what came back, to check against the rows stored:
    each answered verification is one scan row, each finding named in an answer one alert."""

    requests: int = 0
    answered: int = 0  # HTTP 200: the gateway recorded the scan
    findings: int = 0
    alert_ids: set[bytes] = field(default_factory=set)

    def note(self, status: int, body: bytes) -> None:
        if status != 200:
            return
        self.answered += 1
        if b'"alertId"' in body:  # rare: parse only answers with findings
            ids = _ALERT_ID.findall(body)
            self.findings += len(ids)
            self.alert_ids.update(ids)


# ------------------------------------------------------------------------------ results


@dataclass
class Phase:
    """What one measured phase saw."""

    seconds: float = 0.0
    completed: int = 0  # answered within the phase's window
    correct: int = 0  # of which HTTP 200 and GENUINE: what the rates count
    errors: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds
    verdicts: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0  # naive design: CPU its processes used in the window

    def ok(self, verdict: str, latency: float) -> None:
        self.correct += 1
        self.latencies.append(latency)
        self.verdicts[verdict] += 1

    def fail(self, what: str, latency: float | None = None) -> None:
        self.errors += 1
        if latency is not None:
            self.latencies.append(latency)
        if len(self.error_samples) < 5:
            self.error_samples.append(what[:300])

    def merge(self, other: Phase) -> None:
        self.completed += other.completed
        self.correct += other.correct
        self.errors += other.errors
        self.latencies += other.latencies
        self.verdicts.update(other.verdicts)
        self.error_samples = (self.error_samples + other.error_samples)[:5]
        self.cpu_seconds += other.cpu_seconds


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


# ------------------------------------------------------------------------- HTTP clients


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        marker = head.find(b"\r\ncontent-length:")
        if marker < 0:
            self.waiter.set_exception(ConnectionError("response without Content-Length"))
            return
        stop = head.find(b"\r\n", marker + 2)
        length = int(head[marker + 17 : stop if stop >= 0 else len(head)])
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        status = int(self.buffer[9:12])
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        self.waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionError("server closed the connection"))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


class RawPool:
    """Keep-alive connections to the gateway with every request pre-built."""

    def __init__(
        self, host: str, port: int, api_key: str, tags: list[str], location: str | None = None
    ) -> None:
        self.host, self.port = host, port
        self.requests = [self._build(api_key, _body(tag, location)) for tag in tags]
        self.idle: deque[_Connection] = deque()
        self.opened = 0
        self.sent = Sent()

    def _build(self, api_key: str, body: bytes) -> bytes:
        head = (
            f"POST /v1/verify HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def post(self, index: int) -> tuple[int, bytes]:
        connection = None
        while self.idle:
            candidate = self.idle.popleft()  # round robin: every connection keeps busy
            if not candidate.closed:
                connection = candidate
                break
        if connection is None:
            loop = asyncio.get_running_loop()
            _, connection = await loop.create_connection(_Connection, self.host, self.port)
            self.opened += 1
        self.sent.requests += 1
        try:
            answer = await connection.request(self.requests[index % len(self.requests)])
        except BaseException:
            if connection.transport is not None:
                connection.transport.close()
            raise
        self.sent.note(*answer)
        self.idle.append(connection)
        return answer

    async def prefill(
        self,
        count: int,
        owners: Callable[[], dict[int, int]] | None = None,
        workers: int = 1,
        gap: float = 0.002,
    ) -> None:
        """Open `count` connections one after another, each used once before the next is
        opened. With `owners` (client port -> server worker pid), a connection that lands on
        a worker already holding its share is closed and opened again, as a least-connections
        balancer in front of the workers would do; the kernel's SO_REUSEPORT hash alone can
        give 12 of 16 connections to one of two workers."""
        loop = asyncio.get_running_loop()
        share = math.ceil(count / max(1, workers))
        held: Counter[int] = Counter()
        for attempt in range(count * 20):
            if len(self.idle) >= count:
                break
            transport, connection = await loop.create_connection(_Connection, self.host, self.port)
            self.opened += 1
            self.sent.requests += 1
            self.sent.note(*await connection.request(self.requests[attempt % len(self.requests)]))
            if owners is not None:
                owner = owners().get(int(transport.get_extra_info("sockname")[1]))
                if owner is not None and held[owner] >= share:
                    transport.close()
                    continue
                held[owner or 0] += 1
            self.idle.append(connection)
            await asyncio.sleep(gap)

    async def aclose(self) -> None:
        while self.idle:
            connection = self.idle.pop()
            if connection.transport is not None:
                connection.transport.close()


class HttpxPool:
    """The same, through httpx's AsyncClient (keep-alive pool)."""

    def __init__(
        self, host: str, port: int, api_key: str, tags: list[str], location: str | None = None
    ) -> None:
        import httpx

        self.bodies = [_body(tag, location) for tag in tags]
        self.client = httpx.AsyncClient(
            base_url=f"http://{host}:{port}",
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=1024, max_keepalive_connections=1024),
            timeout=30,
        )
        self.opened = 0
        self.sent = Sent()

    async def prefill(
        self,
        count: int,
        owners: Callable[[], dict[int, int]] | None = None,
        workers: int = 1,
        gap: float = 0.002,
    ) -> None:
        """httpx opens its connections itself, as requests need them."""

    async def post(self, index: int) -> tuple[int, bytes]:
        self.sent.requests += 1
        response = await self.client.post(
            "/v1/verify", content=self.bodies[index % len(self.bodies)]
        )
        self.sent.note(response.status_code, response.content)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


Pool = RawPool | HttpxPool


def _body(tag: str, location: str | None) -> bytes:
    """A verify request; with `location` (a UN/LOCODE) every scan also goes to the detector."""
    data: dict[str, Any] = {"tag": tag}
    if location is not None:
        data["location"] = {"unlocode": location}
    return json.dumps(data).encode()


def _judge(phase: Phase, status: int, body: bytes, latency: float) -> None:
    match = _VERDICT.search(body)
    verdict = match.group(1).decode() if match else "?"
    if status == 200 and verdict == "GENUINE":
        phase.ok(verdict, latency)
    else:
        phase.verdicts[verdict] += 1
        phase.fail(f"HTTP {status}: {body[:200]!r}", latency)


async def closed_loop(pool: Pool, concurrency: int, seconds: float, first: int = 0) -> Phase:
    """`concurrency` clients, each sending its next request when its answer arrives."""
    phase = Phase(seconds=seconds)
    counter = first
    clock = time.perf_counter
    started = clock()
    deadline = started + seconds

    async def client() -> None:
        nonlocal counter
        while True:
            sent = clock()
            if sent >= deadline:
                return
            index, counter = counter, counter + 1
            try:
                status, body = await pool.post(index)
            except Exception as exc:
                phase.fail(f"{type(exc).__name__}: {exc}")
                continue
            done = clock()
            if done <= deadline:
                phase.completed += 1
                _judge(phase, status, body, done - sent)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return phase


async def open_loop(pool: Pool, rate: float, seconds: float, first: int = 0) -> Phase:
    """`rate` requests per second on a fixed schedule; latency counted from the scheduled
    send time. Connections are opened as needed, so a slow server gets more of them."""
    phase = Phase(seconds=seconds)
    total = max(1, round(rate * seconds))
    clock = time.perf_counter
    tasks: set[asyncio.Task[None]] = set()

    async def one(index: int, scheduled: float) -> None:
        try:
            status, body = await pool.post(index)
        except Exception as exc:
            phase.fail(f"{type(exc).__name__}: {exc}", clock() - scheduled)
            return
        phase.completed += 1
        _judge(phase, status, body, clock() - scheduled)

    started = clock() + 0.01
    sent = 0
    while sent < total:
        now = clock()
        due = min(total, int((now - started) * rate) + 1)
        while sent < due:
            task = asyncio.create_task(one(first + sent, started + sent / rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(max(0.0, started + sent / rate - clock()))
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=60)
        for task in pending:
            task.cancel()
            phase.fail("no answer within 60 s of the last scheduled request")
    return phase


# ------------------------------------------------------------------------ naive design


def _naive_worker(
    rpc_url: str,
    registry: str,
    tags: list[str],
    threads: int,
    ready: BarrierType,
    seconds: float,
    first: int,
) -> Phase:
    """One process of the naive design: `threads` threads, one eth_call per verification.
    The clock starts when every process has warmed up (`ready`), however long start-up took
    on a busy machine: a fixed start time let a late process lose part of its window."""
    from chain.contract import RegistryClient, connect
    from ledger.digital_link import parse_digital_link
    from ledger.models import Status

    parsed = [parse_digital_link(t) for t in tags]
    phase = Phase(seconds=seconds)
    lock = threading.Lock()
    counter = first
    clients = [RegistryClient(connect(rpc_url), registry) for _ in range(threads)]
    for client in clients:  # connections and ABI encoders warm before the clock starts
        link = parsed[0]
        client.check_tag(link.gtin, link.serial, link.lot, link.signature)
    ready.wait(300)
    deadline = time.time() + seconds
    cpu = time.process_time()

    def run(client: RegistryClient) -> None:
        nonlocal counter
        local = Phase()
        while True:
            sent = time.time()
            if sent >= deadline:
                break
            with lock:
                index, counter = counter, counter + 1
            link = parsed[index % len(parsed)]
            try:
                check = client.check_tag(link.gtin, link.serial, link.lot, link.signature)
            except Exception as exc:
                local.fail(f"{type(exc).__name__}: {exc}")
                continue
            done = time.time()
            if done > deadline:
                break
            local.completed += 1
            genuine = (
                check.batch_registered
                and check.signature_valid
                and check.effective_status == Status.ACTIVE
            )
            if genuine:
                local.ok("GENUINE", done - sent)
            else:
                local.fail(f"checkTag said {check}", done - sent)
        with lock:
            phase.merge(local)

    workers = [threading.Thread(target=run, args=(c,)) for c in clients]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    phase.cpu_seconds = time.process_time() - cpu
    return phase


_barrier: BarrierType | None = None


def _set_barrier(barrier: BarrierType) -> None:
    """Pool initializer: a barrier can reach a worker process only when it is created."""
    global _barrier
    _barrier = barrier


def _naive_process(
    rpc_url: str, registry: str, tags: list[str], threads: int, seconds: float, first: int
) -> Phase:
    assert _barrier is not None
    return _naive_worker(rpc_url, registry, tags, threads, _barrier, seconds, first)


def naive_design(
    rpc_url: str, registry: str, tags: list[str], processes: int, threads: int, seconds: float
) -> Phase:
    """The naive design with `threads` threads in all over `processes` processes."""
    processes = max(1, min(processes, threads))
    shares = [
        threads // processes + (1 if i < threads % processes else 0) for i in range(processes)
    ]
    context = get_context("spawn")
    ready = context.Barrier(processes)
    phase = Phase(seconds=seconds)
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=_set_barrier, initargs=(ready,)
    ) as pool:
        futures = [
            pool.submit(_naive_process, rpc_url, registry, tags, share, seconds, i * 1_000_003)
            for i, share in enumerate(shares)
        ]
        for future in futures:
            phase.merge(future.result())
    return phase


# ------------------------------------------------------------------------------ set-up


@dataclass
class Prepared:
    env: dict[str, str]
    api_key: str
    tags: list[str]
    setup_seconds: dict[str, float]


def _prepare(
    node_url: str, database_url: str, schema: str | None, home: Path, items: int
) -> Prepared:
    """Deploy, create the organizations, enroll a batch and fetch its tags, in-process."""
    from eth_account import Account
    from fastapi.testclient import TestClient
    from sqlmodel import Session

    from api.db import make_engine
    from api.gateway import Gateway
    from api.main import create_app
    from api.models import Role
    from api.orgs import create_organization
    from chain.contract import RegistryClient, connect
    from chain.node import dev_private_key
    from chain.tx import TransactionSender
    from ledger.config import Settings

    timings: dict[str, float] = {}
    clock = time.perf_counter()
    w3 = connect(node_url)
    admin = Account.from_key(dev_private_key(0))
    sender = TransactionSender(w3, admin, lambda d: None, backoff=0.05)  # type: ignore[arg-type,return-value]
    registry = RegistryClient.deploy(sender)
    start_block = int(w3.eth.block_number)
    secret_key = "bench-secret-key-" + uuid.uuid4().hex
    settings = Settings(
        rpc_url=node_url,
        registry=registry.address,
        home=home,
        database_url=database_url,
        secret_key=secret_key,
        index_start_block=start_block,
        **bench_limit_settings(),
    )
    engine = make_engine(settings.sqlalchemy_url, schema)
    try:
        gateway = Gateway.from_settings(settings, engine)
        with Session(engine) as session:
            _, admin_key = create_organization(
                session, "Registry admin", Role.ADMIN, secret_key, private_key=dev_private_key(0)
            )
            session.commit()
        timings["deploy_and_migrate"] = time.perf_counter() - clock
        with TestClient(create_app(gateway, background=False)) as client:

            def post(path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
                r = client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
                if r.status_code not in (200, 201, 202):
                    raise RuntimeError(f"POST {path}: HTTP {r.status_code}: {r.text[:500]}")
                answer: dict[str, Any] = r.json()
                return answer

            clock = time.perf_counter()
            holder = post(
                "/v1/organizations",
                admin_key,
                {"name": "Bench Pharma", "role": "rights_holder", "recordation": "BENCH-1"},
            )
            officer = post(
                "/v1/organizations", admin_key, {"name": "Bench Customs", "role": "customs"}
            )
            # the registry admin binds the GTIN to the holder before it registers batches of it
            post(
                "/v1/gtin-bindings", admin_key, {"gtin": BENCH_GTIN, "organizationId": holder["id"]}
            )
            timings["organizations"] = time.perf_counter() - clock
            clock = time.perf_counter()
            serials = [f"S{i:09d}" for i in range(items)]
            batch = post(
                "/v1/batches",
                holder["apiKey"],
                {"gtin": BENCH_GTIN, "lot": "BENCH1", "serials": serials},
            )
            if batch.get("registration") != "done":
                raise RuntimeError(f"batch not registered on chain: {batch}")
            gateway.sync_index()
            timings["enroll_and_index"] = time.perf_counter() - clock
            clock = time.perf_counter()
            r = client.get(
                f"/v1/batches/{batch['batchId']}/tags",
                headers={"Authorization": f"Bearer {holder['apiKey']}"},
            )
            if r.status_code != 200:
                raise RuntimeError(f"tags download: HTTP {r.status_code}: {r.text[:500]}")
            tags = [row["uri"] for row in csv.DictReader(io.StringIO(r.text))]
            timings["tags_download"] = time.perf_counter() - clock
        gateway.stop()
    finally:
        engine.dispose()
    if len(tags) != items:
        raise RuntimeError(f"downloaded {len(tags)} tags for {items} items")
    env = {
        "BORDERLEDGER_RPC_URL": node_url,
        "BORDERLEDGER_REGISTRY": registry.address,
        "BORDERLEDGER_HOME": str(home),
        "BORDERLEDGER_SECRET_KEY": secret_key,
        "BORDERLEDGER_INDEX_START_BLOCK": str(start_block),
        "DATABASE_URL": database_url,
        "BORDERLEDGER_BENCH_SCHEMA": schema or "",
        **bench_limit_env(),
    }
    return Prepared(env, officer["apiKey"], tags, {k: round(v, 2) for k, v in timings.items()})


@contextlib.contextmanager
def _postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema in `url`'s database, dropped (with everything in it) afterwards."""
    from ledger.config import Settings

    engine = sa.create_engine(Settings(database_url=url).sqlalchemy_url)
    schema = f"bench_verify_{uuid.uuid4().hex[:12]}"
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        yield schema
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


# ------------------------------------------------------------------------------ server


def _free_port() -> int:
    from chain.node import free_port

    return free_port()


@dataclass
class Server:
    """`python -m bench.serve` in its own process group."""

    env: dict[str, str]
    workers: int
    cwd: Path
    naive: bool = False
    factory: str | None = None  # module:function of a gateway variant to serve instead
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        command = [sys.executable, "-m", "bench.serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers), "--ready-file", str(self.ready_path)]
        command += ["--naive"] if self.naive else []
        command += ["--factory", self.factory] if self.factory else []
        self.ready_path.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway server exited: {self.log()[-2000:]}")
            if self.ready_path.exists():
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"gateway server did not start in {timeout} s: {self.log()[-2000:]}")

    @property
    def log_path(self) -> Path:
        return self.cwd / ("naive-server.log" if self.naive else "server.log")

    @property
    def ready_path(self) -> Path:
        return self.cwd / f"ready-{self.port}"

    def log(self) -> str:
        path = self.log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def connection_owners(self) -> dict[int, int]:
        """Client port -> pid of the worker serving that connection (Linux `ss`; {} if not)."""
        try:
            out = subprocess.run(
                ["ss", "-tnpH", "state", "established", f"( sport = :{self.port} )"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return {}
        owners = {}
        for line in out.splitlines():
            found = re.search(r":(\d+)\s+users:.*?pid=(\d+)", line)
            if found:
                owners[int(found.group(1))] = int(found.group(2))
        return owners

    def connections_per_worker(self) -> list[int] | None:
        """Established client connections held by each worker process."""
        counts = Counter(self.connection_owners().values())
        if not counts:
            return None
        return sorted((counts.get(pid, 0) for pid in self.worker_pids()), reverse=True)

    def worker_pids(self) -> list[int]:
        """The worker processes (not the supervisor, not multiprocessing's resource tracker)."""
        workers = []
        for pid in self.pids()[1:]:
            with contextlib.suppress(OSError):
                if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    workers.append(pid)
        return workers

    def pids(self) -> list[int]:
        """The server's processes (uvicorn's supervisor and its workers)."""
        if self.process is None:
            return []
        pids, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            with contextlib.suppress(OSError):
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                todo += [int(c) for c in children]
        return pids

    def cpu_seconds(self) -> float | None:
        """User + system CPU time used so far by the server's processes (Linux)."""
        total = 0.0
        try:
            tick = os.sysconf("SC_CLK_TCK")
            for pid in self.pids():
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            return None
        return total

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# ------------------------------------------------------------------------------ one run


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (all cores, Linux /proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float | None:
    """User + system CPU time used so far by process `root` and its descendants (Linux)."""
    total, todo = 0.0, [root]
    tick = os.sysconf("SC_CLK_TCK")
    try:
        while todo:
            pid = todo.pop()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            with contextlib.suppress(OSError):
                todo += [
                    int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                ]
    except (OSError, ValueError, IndexError):
        return None
    return total


class CpuMeter:
    """Where the CPU went during a phase: the server, this load generator, everything else
    (the chain node, the database server, and other people's work on a shared machine)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.started = time.perf_counter()
        self.machine = _machine_busy_seconds()
        self.server_cpu = server.cpu_seconds()
        self.own = time.process_time()

    def report(self, completed: int) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        machine, server_cpu = _machine_busy_seconds(), self.server.cpu_seconds()
        own = time.process_time() - self.own
        out: dict[str, Any] = {"loadgen_cores_busy": round(own / elapsed, 2)}
        if server_cpu is not None and self.server_cpu is not None:
            served = server_cpu - self.server_cpu
            out["server_cores_busy"] = round(served / elapsed, 2)
            if completed:
                out["server_cpu_ms_per_verify"] = round(served * 1000 / completed, 3)
            if machine is not None and self.machine is not None:
                other = (machine - self.machine) - served - own
                out["machine_cores_busy"] = round((machine - self.machine) / elapsed, 2)
                out["other_cores_busy"] = round(max(0.0, other) / elapsed, 2)
        if completed:
            out["loadgen_cpu_ms_per_verify"] = round(own * 1000 / completed, 3)
        out["load_average_after"] = _loadavg()
        return out


def _phase_summary(phase: Phase) -> dict[str, Any]:
    return {
        "completed": phase.completed,
        "errors": phase.errors,
        "per_second": round(phase.correct / phase.seconds, 1) if phase.seconds else None,
        "p50_ms": _ms(percentile(phase.latencies, 50)),
        "p90_ms": _ms(percentile(phase.latencies, 90)),
        "p99_ms": _ms(percentile(phase.latencies, 99)),
        "max_ms": _ms(max(phase.latencies) if phase.latencies else None),
        "verdicts": dict(phase.verdicts),
        **({"error_samples": phase.error_samples} if phase.error_samples else {}),
    }


async def _measure(
    pool: Pool,
    server: Server,
    concurrency: int,
    rate: float | None,
    seconds: float,
    warmup: float,
) -> dict[str, Any]:
    """Warm up, then a closed-loop phase, then (with `rate`) an open-loop phase."""
    out: dict[str, Any] = {}
    await pool.prefill(concurrency, server.connection_owners, server.workers)
    # Warm-up: every worker loads the batch's tree and secret on its first verification.
    warm = await closed_loop(pool, concurrency, warmup, first=7_777_777)
    if warm.completed == 0 or warm.errors:
        raise RuntimeError(f"warm-up failed: {_phase_summary(warm)}")
    out["connections_per_worker"] = server.connections_per_worker()

    meter = CpuMeter(server)
    closed = await closed_loop(pool, concurrency, seconds)
    out["closed"] = {**_phase_summary(closed), **meter.report(closed.completed)}

    if rate is not None:
        await asyncio.sleep(1)  # let queues drain between the two phases
        meter = CpuMeter(server)
        opened = await open_loop(pool, rate, seconds, first=3_333_333)
        out["open"] = {"rate": rate, **_phase_summary(opened), **meter.report(opened.completed)}
    out["connections_opened"] = pool.opened
    return out


def _serve_and_measure(
    server: Server,
    client: Client,
    api_key: str,
    tags: list[str],
    concurrency: int,
    rate: float | None,
    seconds: float,
    warmup: float,
    locations: tuple[str | None, ...] = (None,),
) -> tuple[list[dict[str, Any]], Sent]:
    """Serve, then measure once per entry of `locations` in turn (same server, same data:
    with a location and then without, the detector's cost is the difference). Returns the
    measurements and what was sent in all, once the server has stopped (every scan it
    accepted is then stored)."""
    sent = Sent()

    async def measure() -> list[dict[str, Any]]:
        pool_class = RawPool if client == "raw" else HttpxPool
        out = []
        for location in locations:
            pool: Pool = pool_class("127.0.0.1", server.port, api_key, tags, location)
            try:
                out.append(await _measure(pool, server, concurrency, rate, seconds, warmup))
            finally:
                await pool.aclose()
                sent.requests += pool.sent.requests
                sent.answered += pool.sent.answered
                sent.findings += pool.sent.findings
                sent.alert_ids |= pool.sent.alert_ids
            if len(locations) > 1:
                await asyncio.sleep(1)  # the previous phase's queues drain
        return out

    try:
        server.start()
        return asyncio.run(measure()), sent
    finally:
        server.stop()


def _stored(database_url: str, schema: str | None, sent: Sent) -> dict[str, Any]:
    """What the gateway stored, counted after its processes stopped, against what was sent:
    one scan row per answered verification, one alert row per distinct finding answered, no
    duplicates (`exactly_once`)."""
    from api.db import make_engine
    from ledger.config import Settings

    engine = make_engine(Settings(database_url=database_url).sqlalchemy_url, schema)
    try:
        with engine.connect() as connection:
            scans, distinct = connection.execute(
                sa.text("SELECT COUNT(*), COUNT(DISTINCT scan_id) FROM scan_events")
            ).one()
            alerts, alert_ids = connection.execute(
                sa.text("SELECT COUNT(*), COUNT(DISTINCT alert_id) FROM alerts")
            ).one()
    finally:
        engine.dispose()
    return {
        "requests_sent": sent.requests,
        "answered": sent.answered,
        "scan_rows": int(scans),
        "distinct_scan_ids": int(distinct),
        "findings_answered": sent.findings,
        "distinct_alerts_answered": len(sent.alert_ids),
        "alert_rows": int(alerts),
        "exactly_once": int(scans) == int(distinct) == sent.answered
        and int(alerts) == int(alert_ids) == len(sent.alert_ids),
    }


def run_one(
    database: Database,
    node_url: str,
    work: Path,
    *,
    node_pid: int | None = None,
    items: int,
    seconds: float,
    concurrency: int,
    rate: float,
    workers: int,
    client: Client,
    naive_seconds: float,
    naive_http: bool,
    postgres_url: str,
    warmup: float,
    log: Callable[[str], None],
    location: str | None = None,
) -> dict[str, Any]:
    home = work / database
    home.mkdir(parents=True, exist_ok=True)
    schema_cm: contextlib.AbstractContextManager[str | None]
    if database == "sqlite":
        url = f"sqlite:///{home / 'gateway.db'}"
        schema_cm = contextlib.nullcontext(None)
    else:
        url = postgres_url
        schema_cm = _postgres_schema(postgres_url)
    with schema_cm as schema:
        log(f"[{database}] set-up: {items} items enrolled through the API")
        prepared = _prepare(node_url, url, schema, home, items)
        server = Server(prepared.env, workers, home)
        log(f"[{database}] gateway: {workers} uvicorn worker(s), {seconds:g} s closed + open loop")
        # with a location, the same without one right after (the baseline it is compared with)
        locations = (location, None) if location is not None else (None,)
        measurements, sent = _serve_and_measure(
            server,
            client,
            prepared.api_key,
            prepared.tags,
            concurrency,
            rate,
            seconds,
            warmup,
            locations,
        )
        measured = measurements[0]
        unlocated = measurements[1] if len(measurements) > 1 else None
        stored = _stored(url, schema, sent)
    registry = prepared.env["BORDERLEDGER_REGISTRY"]
    log(f"[{database}] naive design: one eth_call of checkTag per verification, direct")
    busy_before, clock = _machine_busy_seconds(), time.perf_counter()
    node_before = tree_cpu_seconds(node_pid) if node_pid else None
    naive = naive_design(node_url, registry, prepared.tags, workers, concurrency, naive_seconds)
    node_after = tree_cpu_seconds(node_pid) if node_pid else None
    busy_after, elapsed = _machine_busy_seconds(), time.perf_counter() - clock
    naive_summary = _phase_summary(naive)
    if busy_before is not None and busy_after is not None:  # start-up and warm-up included
        naive_summary["machine_cores_busy"] = round((busy_after - busy_before) / elapsed, 2)
    if naive.correct:
        # CPU per verification, which other work on the machine hardly changes (unlike the
        # rates): the naive processes in their window, plus the chain node answering them
        # (node: over the whole naive run, start-up and warm-up included, an overestimate).
        naive_summary["client_cpu_ms_per_verify"] = round(
            naive.cpu_seconds * 1000 / naive.correct, 3
        )
        if node_before is not None and node_after is not None:
            naive_summary["node_cpu_ms_per_verify"] = round(
                (node_after - node_before) * 1000 / naive.correct, 3
            )
    naive_over_http: dict[str, Any] | None = None
    if naive_http:
        log(f"[{database}] naive design behind the same uvicorn set-up")
        naive_server = Server(prepared.env, workers, home, naive=True)
        [naive_over_http], _ = _serve_and_measure(
            naive_server, client, "-", prepared.tags, concurrency, None, naive_seconds, warmup
        )

    closed, opened = measured["closed"], measured["open"]

    def ratio_of(rate: float, other: float | None) -> float | None:
        return round(rate / other, 1) if other else None

    def ratio(other: float | None) -> float | None:
        return ratio_of(closed["per_second"], other)

    naive_http_rate = naive_over_http["closed"]["per_second"] if naive_over_http else None
    server_cpu = closed.get("server_cpu_ms_per_verify")
    naive_cpu = (
        round(
            naive_summary["client_cpu_ms_per_verify"] + naive_summary["node_cpu_ms_per_verify"], 3
        )
        if "node_cpu_ms_per_verify" in naive_summary
        else None
    )
    return {
        "database": database,
        "location": location,  # a UN/LOCODE on every scan: each one also runs the detector
        "verify_per_second": closed["per_second"],
        "p50_ms": closed["p50_ms"],
        "p99_ms_at_500_per_second": opened["p99_ms"] if rate == 500 else None,
        "open_loop_rate": rate,
        "p99_ms_at_open_loop_rate": opened["p99_ms"],
        "naive_verify_per_second": naive_summary["per_second"],
        "ratio_vs_naive": ratio(naive_summary["per_second"]),
        "naive_http_verify_per_second": naive_http_rate,
        "ratio_vs_naive_http": ratio(naive_http_rate),
        # CPU cost per verification: the gateway's server processes vs the naive design's
        # processes plus the chain node; unlike the rates, other load hardly moves it.
        "server_cpu_ms_per_verify": server_cpu,
        "naive_cpu_ms_per_verify": naive_cpu,
        "cpu_ratio_vs_naive": round(naive_cpu / server_cpu, 1)
        if naive_cpu and server_cpu
        else None,
        "other_cores_busy": {  # CPU taken by anything but the server and the load generator
            "closed_loop": closed.get("other_cores_busy"),
            "open_loop": opened.get("other_cores_busy"),
        },
        "errors": closed["errors"] + opened["errors"],
        # the same server and data without a location (no detector): located / unlocated
        **(
            {
                "unlocated": {
                    "verify_per_second": unlocated["closed"]["per_second"],
                    "p50_ms": unlocated["closed"]["p50_ms"],
                    "p99_ms_at_open_loop_rate": unlocated["open"]["p99_ms"],
                    "errors": unlocated["closed"]["errors"] + unlocated["open"]["errors"],
                    "server_cpu_ms_per_verify": unlocated["closed"].get("server_cpu_ms_per_verify"),
                    # the design comparison like for like: neither side runs the detector
                    "ratio_vs_naive": ratio_of(
                        unlocated["closed"]["per_second"], naive_summary["per_second"]
                    ),
                },
                "ratio_vs_unlocated": round(
                    closed["per_second"] / unlocated["closed"]["per_second"], 2
                )
                if unlocated["closed"]["per_second"]
                else None,
            }
            if unlocated is not None
            else {}
        ),
        "stored": stored,  # every answered scan stored once, every finding's alert once
        "naive_errors": naive.errors
        + (naive_over_http["closed"]["errors"] if naive_over_http else 0),
        "verdicts": dict(Counter(closed["verdicts"]) + Counter(opened["verdicts"])),
        "closed_loop": {"connections": concurrency, "seconds": seconds, **closed},
        "open_loop": {"seconds": seconds, **opened},
        "connections_per_worker": measured["connections_per_worker"],
        "connections_opened": measured["connections_opened"],
        "naive": {
            "design": "RegistryClient.check_tag (one eth_call of checkTag) per verification, "
            "called directly: no HTTP, no auth, no scan record",
            "processes": max(1, min(workers, concurrency)),
            "threads": concurrency,
            "seconds": naive_seconds,
            **naive_summary,
        },
        **(
            {
                "naive_http": {
                    "design": "bench.serve --naive: the same eth_call behind the same uvicorn "
                    "workers, lean ASGI front and load generator (no auth, no scan record)",
                    "connections": concurrency,
                    "seconds": naive_seconds,
                    **naive_over_http["closed"],
                }
            }
            if naive_over_http
            else {}
        ),
        "setup_seconds": prepared.setup_seconds,
    }


def run_verify_bench(
    databases: tuple[Database, ...] = ("sqlite", "postgresql"),
    *,
    items: int = 10_000,
    seconds: float = 10.0,
    concurrency: int = 32,
    rate: float = 500.0,
    workers: int = 2,
    client: Client = "raw",
    naive_seconds: float | None = None,
    naive_http: bool = True,
    postgres_url: str = DEFAULT_POSTGRES_URL,
    warmup: float = 2.0,
    log: Callable[[str], None] | None = None,
    location: str | None = None,
) -> dict[str, Any]:
    from chain.node import LocalNode

    say = log or (lambda message: print(message, file=sys.stderr, flush=True))
    started = time.perf_counter()
    load_before = _loadavg()
    runs = []
    with LocalNode("anvil") as node, tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        for database in databases:
            runs.append(
                run_one(
                    database,
                    node.url,
                    Path(tmp),
                    node_pid=node.process.pid if node.process else None,
                    items=items,
                    seconds=seconds,
                    concurrency=concurrency,
                    rate=rate,
                    workers=workers,
                    client=client,
                    naive_seconds=naive_seconds if naive_seconds is not None else seconds,
                    naive_http=naive_http,
                    postgres_url=postgres_url,
                    warmup=warmup,
                    log=say,
                    location=location,
                )
            )
    met = {
        run["database"]: {
            "verify_per_second": (run["verify_per_second"] or 0)
            >= TARGETS["verify_per_second_min"],
            "p99_ms_at_500_per_second": run["p99_ms_at_500_per_second"] is not None
            and run["p99_ms_at_500_per_second"] <= TARGETS["p99_ms_at_500_per_second_max"],
            # The naive design runs no detector: a located run is compared to it through its
            # unlocated baseline (same server, same data, same run).
            "ratio_vs_naive": (
                run.get("unlocated", {}).get("ratio_vs_naive", run["ratio_vs_naive"]) or 0
            )
            >= TARGETS["naive_ratio_min"],
            "stored_exactly_once": run["stored"]["exactly_once"],
        }
        for run in runs
    }
    return {
        "benchmark": "verify",
        "items": items,
        "uvicorn_workers": workers,
        "client": client,
        "location": location,
        "http": _http_impl(),
        "targets": TARGETS,
        "targets_met": met,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": _loadavg(),
        },
        "total_seconds": round(time.perf_counter() - started, 1),
        # each database's headline figures side by side (details in `runs`)
        "summary": {
            run["database"]: {
                "verify_per_second": run["verify_per_second"],
                "p99_ms_at_500_per_second": run["p99_ms_at_500_per_second"],
                "unlocated_verify_per_second": run.get("unlocated", {}).get("verify_per_second"),
                "ratio_vs_unlocated": run.get("ratio_vs_unlocated"),
                "stored_exactly_once": run["stored"]["exactly_once"],
            }
            for run in runs
        },
        "runs": runs,
    }


def _http_impl() -> dict[str, str]:
    """What uvicorn picks with its defaults (`http="auto"`, `loop="auto"`)."""
    from importlib.util import find_spec

    return {
        "uvicorn_http": "httptools" if find_spec("httptools") else "h11",
        "uvicorn_loop": "uvloop" if find_spec("uvloop") else "asyncio",
    }


__all__ = [
    "DEFAULT_POSTGRES_URL",
    "HttpxPool",
    "Phase",
    "RawPool",
    "closed_loop",
    "naive_design",
    "open_loop",
    "percentile",
    "run_verify_bench",
]
