"""`borderledger bench enroll-api`: a large enrollment through the gateway's HTTP API.

What a rights holder's system does with a 1,000,000-item lot, against the real gateway
(`bench.serve`, real uvicorn, a separate process group) on SQLite or PostgreSQL:

1. Anvil, a deployed registry, an admin organization in the database; the gateway started;
   a rights holder and a customs agency created through the API.
2. `POST /v1/batches` with a CSV upload of `items` serials (`text/csv`, ~14 bytes a line):
   above `SYNC_ENROLL_LIMIT` the gateway answers 202 with a job id at once.
3. `GET /v1/jobs/{id}` polled every `poll` seconds until `done` (or `failed`): the job salts
   and hashes every item, builds the Merkle tree, stores batch and tree, and registers the
   root on chain. `enroll_seconds` runs from the upload's first byte to the job seen done.
4. The batch indexed (GET /v1/batches/{id} says `status: active`), then
   `GET /v1/batches/{id}/tags` downloaded as a stream: every line counted, none kept.
5. A sample of the downloaded tags (first, last, and some in between) verified through
   `POST /v1/verify` by the customs agency: all must be GENUINE.

6. Label files: a second batch of `labels` serials is enrolled and its PDF and ZIP label
   files asked for (the gateway runs with SYNC_LABEL_LIMIT=0, so each is a `labels` job):
   the job polled until done, its file downloaded as a stream. `labels_per_second` is the
   job's own rate (labels over its run time: tags signed, QR codes made, file written).
Peak RSS is read from the kernel (`VmHWM` of each server process: its high-water mark since
start) after each phase, so a phase that buffered the whole upload or download shows up.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from bench.limits import bench_limit_env
from bench.verify import BENCH_GTIN, DEFAULT_POSTGRES_URL, Server, _loadavg, _postgres_schema

Database = Literal["sqlite", "postgresql"]


class Gateway:
    """A tiny HTTP/1.1 client for the gateway (http.client: streams both ways)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self,
        method: str,
        path: str,
        key: str,
        body: bytes | Iterator[bytes] | None = None,
        content_type: str = "application/json",
        length: int | None = None,
        timeout: float = 600,
    ) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
            if length is not None:
                headers["Content-Length"] = str(length)
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def json(self, method: str, path: str, key: str, body: Any = None) -> dict[str, Any]:
        status, data = self.request(
            method, path, key, json.dumps(body).encode() if body is not None else None
        )
        if status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {data[:500]!r}")
        answer: dict[str, Any] = json.loads(data)
        return answer

    def stream_lines(self, path: str, key: str, keep: Callable[[int, bytes], None]) -> int:
        """GET `path` and hand each line to `keep(number, line)`; returns the byte count."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            connection.request("GET", path, headers={"Authorization": f"Bearer {key}"})
            response = connection.getresponse()
            if response.status != 200:
                raise RuntimeError(f"GET {path}: HTTP {response.status}: {response.read(500)!r}")
            total, number, rest = 0, 0, b""
            while chunk := response.read(1 << 20):
                total += len(chunk)
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    keep(number, line)
                    number += 1
            if rest:
                keep(number, rest)
            return total
        finally:
            connection.close()


def _csv_upload(items: int, chunk: int = 50_000) -> tuple[Iterator[bytes], int]:
    """The CSV body, generated as it is sent, and its length."""

    def lines(start: int, stop: int) -> bytes:
        return "".join(f"S{i:09d}\n" for i in range(start, stop)).encode()

    header = b"serial\n"
    length = len(header) + items * len(b"S000000000\n")

    def body() -> Iterator[bytes]:
        yield header
        for start in range(0, items, chunk):
            yield lines(start, min(items, start + chunk))

    return body(), length


def _peak_rss_mb(server: Server) -> dict[str, float]:
    """VmHWM (peak resident set) of each worker process, MB."""
    peaks = {}
    for pid in server.worker_pids():
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[str(pid)] = round(int(line.split()[1]) / 1024, 1)
    return peaks


def _admin(node_url: str, database_url: str, schema: str | None, home: Path) -> dict[str, str]:
    """Deploy the registry, migrate the database and create the admin; the gateway's env."""
    from eth_account import Account
    from sqlmodel import Session

    from api.db import make_engine
    from api.migrate import upgrade
    from api.models import Role
    from api.orgs import create_organization
    from chain.contract import RegistryClient, connect
    from chain.node import dev_private_key
    from chain.tx import TransactionSender
    from ledger.config import Settings

    w3 = connect(node_url)
    sender = TransactionSender(
        w3,
        Account.from_key(dev_private_key(0)),
        lambda d: None,  # type: ignore[arg-type,return-value]
        backoff=0.05,
    )
    registry = RegistryClient.deploy(sender)
    start_block = int(w3.eth.block_number)
    secret_key = "bench-secret-key-" + uuid.uuid4().hex
    settings = Settings(database_url=database_url)
    engine = make_engine(settings.sqlalchemy_url, schema)
    try:
        upgrade(engine)
        with Session(engine) as session:
            _, admin_key = create_organization(
                session, "Registry admin", Role.ADMIN, secret_key, private_key=dev_private_key(0)
            )
            session.commit()
    finally:
        engine.dispose()
    return {
        "BORDERLEDGER_RPC_URL": node_url,
        "BORDERLEDGER_REGISTRY": registry.address,
        "BORDERLEDGER_HOME": str(home),
        "BORDERLEDGER_SECRET_KEY": secret_key,
        "BORDERLEDGER_INDEX_START_BLOCK": str(start_block),
        "DATABASE_URL": database_url,
        "BORDERLEDGER_BENCH_SCHEMA": schema or "",
        **bench_limit_env(),
        "BORDERLEDGER_ADMIN_KEY": admin_key,  # for this bench only; the gateway ignores it
    }


def run_one(
    database: Database,
    node_url: str,
    work: Path,
    *,
    items: int,
    samples: int,
    poll: float,
    postgres_url: str,
    log: Callable[[str], None],
    labels: int = 2_000,
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
        env = _admin(node_url, url, schema, home)
        admin_key = env.pop("BORDERLEDGER_ADMIN_KEY")
        env["BORDERLEDGER_SYNC_LABEL_LIMIT"] = "0"  # every ZIP or PDF is a label job
        server = Server(env, 1, home)
        server.start()
        try:
            run = _measure(server, admin_key, items, samples, poll, database, log)
            run["labels"] = _measure_labels(server, run.pop("_holder_key"), labels, log)
            return run
        finally:
            server.stop()


def _measure(
    server: Server,
    admin_key: str,
    items: int,
    samples: int,
    poll: float,
    database: Database,
    log: Callable[[str], None],
) -> dict[str, Any]:
    gw = Gateway(server.port)
    holder = gw.json(
        "POST",
        "/v1/organizations",
        admin_key,
        {"name": "Bench Pharma", "role": "rights_holder", "recordation": "BENCH-1"},
    )
    officer = gw.json(
        "POST", "/v1/organizations", admin_key, {"name": "Bench Customs", "role": "customs"}
    )
    # the registry admin binds the GTIN to the holder before it registers batches of it
    gw.json(
        "POST", "/v1/gtin-bindings", admin_key, {"gtin": BENCH_GTIN, "organizationId": holder["id"]}
    )
    key = holder["apiKey"]
    rss: dict[str, dict[str, float]] = {"start": _peak_rss_mb(server)}

    log(f"[{database}] POST /v1/batches: CSV of {items:,} serials")
    body, length = _csv_upload(items)
    started = time.perf_counter()
    status, data = gw.request(
        "POST",
        f"/v1/batches?gtin={BENCH_GTIN}&lot=BIG1",
        key,
        body,
        content_type="text/csv",
        length=length,
    )
    accepted = time.perf_counter() - started
    if status != 202:
        raise RuntimeError(f"upload: HTTP {status} (expected 202): {data[:500]!r}")
    job_id, batch_id = json.loads(data)["jobId"], json.loads(data)["batchId"]
    polls, job = 0, {}
    while True:
        job = gw.json("GET", f"/v1/jobs/{job_id}", key)
        polls += 1
        if job["status"] in ("done", "failed"):
            break
        time.sleep(poll)
    enroll_seconds = time.perf_counter() - started
    rss["enroll"] = _peak_rss_mb(server)
    if job["status"] != "done":
        raise RuntimeError(f"job failed: {job}")
    result = job["result"]
    log(f"[{database}] job done in {enroll_seconds:.1f} s: {result.get('registration')}")

    clock = time.perf_counter()
    while True:  # until the indexer has seen the registration
        batch = gw.json("GET", f"/v1/batches/{batch_id}", key)
        if batch.get("status") == "active" or time.perf_counter() - clock > 120:
            break
        time.sleep(0.5)
    indexed = time.perf_counter() - clock

    log(f"[{database}] GET /v1/batches/{{id}}/tags (CSV, streamed)")
    wanted = sorted(
        {1, items} | {1 + (items - 1) * k // max(1, samples - 1) for k in range(samples)}
    )
    picked: dict[int, str] = {}
    header: list[bytes] = []

    def keep(number: int, line: bytes) -> None:
        if number == 0:
            header.append(line)
        elif number in wanted:
            picked[number] = line.decode()

    counted = {"lines": 0}

    def count(number: int, line: bytes) -> None:
        counted["lines"] = number
        keep(number, line)

    clock = time.perf_counter()
    size = gw.stream_lines(f"/v1/batches/{batch_id}/tags?format=csv", key, count)
    download = time.perf_counter() - clock
    rss["tags"] = _peak_rss_mb(server)
    columns = header[0].decode().strip().split(",") if header else []
    uri_col = columns.index("uri") if "uri" in columns else -1
    verdicts: dict[str, int] = {}
    for line in picked.values():
        uri = line.strip().split(",")[uri_col]
        answer = gw.json("POST", "/v1/verify", officer["apiKey"], {"tag": uri})
        verdicts[answer["verdict"]] = verdicts.get(answer["verdict"], 0) + 1
    return {
        "_holder_key": key,
        "database": database,
        "items": items,
        "upload_bytes": length,
        "accepted_seconds": round(accepted, 2),
        "enroll_seconds": round(enroll_seconds, 1),
        "items_per_second": round(items / enroll_seconds),
        "job_polls": polls,
        "registration": result.get("registration"),
        "tx_hash": result.get("txHash"),
        "root": result.get("root"),
        "indexed_seconds": round(indexed, 1),
        "tags": {
            "lines": counted["lines"],
            "bytes": size,
            "seconds": round(download, 1),
            "tags_per_second": round(counted["lines"] / download) if download else None,
            "complete": counted["lines"] == items,
            "sample_verdicts": verdicts,
        },
        "peak_rss_mb": rss,
    }


def _seconds(job: dict[str, Any]) -> float:
    """A job's run time, from its own timestamps (claimed to finished)."""
    from datetime import datetime

    started = datetime.fromisoformat(job["startedAt"].replace("Z", "+00:00"))
    finished = datetime.fromisoformat(job["finishedAt"].replace("Z", "+00:00"))
    return (finished - started).total_seconds()


def _measure_labels(
    server: Server, key: str, labels: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """PDF and ZIP label files of a `labels`-item batch, each made by a label job."""
    gw = Gateway(server.port)
    serials = [f"L{i:09d}" for i in range(labels)]
    status, data = gw.request(
        "POST",
        "/v1/batches",
        key,
        json.dumps({"gtin": BENCH_GTIN, "lot": "LABELS1", "serials": serials}).encode(),
    )
    if status == 202:  # above SYNC_ENROLL_LIMIT: wait for the enrollment job
        job_id = json.loads(data)["jobId"]
        while gw.json("GET", f"/v1/jobs/{job_id}", key)["status"] not in ("done", "failed"):
            time.sleep(0.2)
    elif status not in (200, 201):
        raise RuntimeError(f"label batch: HTTP {status}: {data[:500]!r}")
    batch_id = json.loads(data)["batchId"]
    out: dict[str, Any] = {"labels": labels}
    for fmt in ("pdf", "zip"):
        log(f"label file: {fmt}, {labels:,} labels (a job)")
        clock = time.perf_counter()
        status, data = gw.request("GET", f"/v1/batches/{batch_id}/tags?format={fmt}", key)
        if status != 202:
            raise RuntimeError(f"{fmt} labels: HTTP {status} (expected 202): {data[:300]!r}")
        job = json.loads(data)
        while job["status"] not in ("done", "failed", "cancelled"):
            time.sleep(0.1)
            job = gw.json("GET", f"/v1/jobs/{job['id']}", key)
        if job["status"] != "done":
            raise RuntimeError(f"{fmt} label job: {job}")
        ready = time.perf_counter() - clock
        clock = time.perf_counter()
        size = gw.stream_lines(f"/v1/jobs/{job['id']}/file", key, lambda number, line: None)
        download = time.perf_counter() - clock
        run = _seconds(job)
        out[fmt] = {
            "job_seconds": round(run, 2),
            "labels_per_second": round(labels / run, 1) if run > 0 else None,
            "ready_seconds": round(ready, 2),
            "bytes": size,
            "complete": size == job["result"]["bytes"],
            "download_seconds": round(download, 2),
        }
    out["peak_rss_mb"] = _peak_rss_mb(server)
    return out


def run_enroll_api_bench(
    databases: tuple[Database, ...] = ("sqlite",),
    *,
    items: int = 1_000_000,
    samples: int = 20,
    poll: float = 1.0,
    postgres_url: str = DEFAULT_POSTGRES_URL,
    log: Callable[[str], None] | None = None,
    labels: int = 2_000,
) -> dict[str, Any]:
    from chain.node import LocalNode

    say = log or (lambda message: print(message, file=sys.stderr, flush=True))
    started = time.perf_counter()
    load_before = _loadavg()
    runs = []
    with LocalNode("anvil") as node, tempfile.TemporaryDirectory(prefix="bench-enroll-") as tmp:
        for database in databases:
            runs.append(
                run_one(
                    database,
                    node.url,
                    Path(tmp),
                    items=items,
                    samples=samples,
                    poll=poll,
                    postgres_url=postgres_url,
                    log=say,
                    labels=labels,
                )
            )
    return {
        "benchmark": "enroll-api",
        "items": items,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": _loadavg(),
        },
        "total_seconds": round(time.perf_counter() - started, 1),
        "runs": runs,
    }


__all__ = ["run_enroll_api_bench"]
