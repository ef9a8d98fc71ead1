"""`borderledger bench custody`: the custody log at scale, anchored on a real chain.

1. A gateway on Anvil with a customs agency that anchors (in-process, real database).
2. `entries` border scans go through the real scan path: `ScanWriter.record` → the writer
   thread inserts them in batches and appends each batch to the custody log in the same
   transaction (`api.custody.store.append`). One item gets `item_events` of them (the
   timeline measured below); the rest are spread over other serials. Measured: entries/s.
3. One checkpoint (size, root) over everything is anchored through the chain writer and
   indexed: gas of that one transaction / entries = gas per entry.
4. Inclusion proof size at that size, verification time (RFC 9162 verifier, mean over 1,000
   random leaves), and the time a fresh process needs to load the log from the database.
5. `GET /v1/items/{gtin}/{serial}/custody` for the item with `item_events` entries, over real
   HTTP (uvicorn), sequentially: p50 / p99 latency.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.limits import bench_limit_settings

GTIN = "09506000134352"
AGENCY = "Bench Customs"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_custody_bench(
    entries: int = 1_000_000,
    item_events: int = 100,
    requests: int = 200,
    database: str = "sqlite",
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/test",
) -> dict[str, Any]:
    """Run the benchmark (module docstring); `database` is sqlite or postgresql (a fresh
    schema of `postgres_url`, dropped afterwards)."""
    if database == "postgresql":
        from bench.verify import _postgres_schema

        with _postgres_schema(postgres_url) as schema:
            return _run(entries, item_events, requests, postgres_url, schema)
    return _run(entries, item_events, requests, None, None)


def _run(
    entries: int, item_events: int, requests: int, database_url: str | None, schema: str | None
) -> dict[str, Any]:
    import httpx
    from eth_account import Account
    from fastapi.testclient import TestClient
    from sqlmodel import Session

    from api.custody.store import LogMirror
    from api.db import make_engine
    from api.gateway import Gateway
    from api.main import create_app
    from api.models import PendingWrite
    from api.orgs import create_dev_admin
    from api.threaded import serve_in_thread
    from chain.contract import RegistryClient, connect
    from chain.node import LocalNode, dev_private_key
    from chain.tx import TransactionSender
    from custody.log import verify_inclusion
    from ledger.config import Settings

    if entries < item_events:
        raise ValueError("entries must be at least item_events")
    result: dict[str, Any] = {"entries": entries, "item_events": item_events}
    with LocalNode("anvil") as node, tempfile.TemporaryDirectory(prefix="bench-custody-") as tmp:
        w3 = connect(node.url)
        admin = Account.from_key(dev_private_key(0))
        sender = TransactionSender(w3, admin, lambda d: None, backoff=0.05)  # type: ignore[arg-type,return-value]
        registry = RegistryClient.deploy(sender)
        settings = Settings(
            rpc_url=node.url,
            registry=registry.address,
            home=Path(tmp),
            database_url=database_url or f"sqlite:///{Path(tmp) / 'gateway.db'}",
            secret_key="bench-secret-" + uuid.uuid4().hex,
            index_start_block=int(w3.eth.block_number),
            anchor_organization=AGENCY,
            anchor_every_entries=10**12,
            stale_after_seconds=10**9,
            **bench_limit_settings(),
        )
        engine = make_engine(settings.sqlalchemy_url, schema)
        gateway = Gateway.from_settings(settings, engine)
        admin_key = create_dev_admin(engine, settings.secret_key)
        try:
            with TestClient(create_app(gateway, background=False)) as client:
                auth = {"Authorization": f"Bearer {admin_key}"}
                holder = client.post(
                    "/v1/organizations",
                    json={"name": "Bench Pharma", "role": "rights_holder", "recordation": "B-1"},
                    headers=auth,
                ).json()
                officer = client.post(
                    "/v1/organizations", json={"name": AGENCY, "role": "customs"}, headers=auth
                ).json()
                client.post(
                    "/v1/gtin-bindings",
                    json={"gtin": GTIN, "organizationId": holder["id"]},
                    headers=auth,
                ).raise_for_status()
                serials = [f"S{i:05d}" for i in range(1000)]
                batch = client.post(
                    "/v1/batches",
                    json={"gtin": GTIN, "lot": "BENCH", "serials": serials},
                    headers={"Authorization": f"Bearer {holder['apiKey']}"},
                ).json()
                gateway.sync_index()

                # 2. appends through the scan writer
                start = datetime.now(UTC) - timedelta(days=30)
                target = serials[0]
                rng = random.Random(7)
                others = serials[1:]
                clock = time.perf_counter()
                for n in range(entries):
                    serial = target if n % (entries // item_events) == 0 else rng.choice(others)
                    gateway.scans.record(
                        {
                            "scan_id": str(uuid.UUID(int=rng.getrandbits(128))),
                            "organization_id": officer["id"],
                            "gtin": GTIN,
                            "lot": None,
                            "serial": serial,
                            "batch_id": batch["batchId"],
                            "input_kind": "typed",
                            "location": "NLRTM",
                            "latitude": None,
                            "longitude": None,
                            "scanned_at": start + timedelta(seconds=n),
                            "recorded_at": start + timedelta(seconds=n),
                            "verdict": "GENUINE_UNSIGNED",
                            "reasons": ["SERIAL_IN_BATCH", "SIGNATURE_MISSING"],
                            "index_block": 1,
                        }
                    )
                gateway.scans.flush(timeout=3600)
                seconds = time.perf_counter() - clock
                size = gateway.custody.mirror.catch_up()
                if size != entries:
                    raise RuntimeError(f"the log holds {size} entries, {entries} appended")
                result["append_seconds"] = round(seconds, 2)
                result["entries_per_second"] = round(entries / seconds)

                # 3. one anchor for everything
                checkpoint = gateway.custody.anchorer.run_once(force=True)
                if checkpoint is None or checkpoint.write_id is None:
                    raise RuntimeError("no checkpoint was anchored")
                gateway.sync_index()
                with Session(engine) as session:
                    write = session.get(PendingWrite, checkpoint.write_id)
                    assert write is not None and write.tx_hash is not None
                receipt = w3.eth.get_transaction_receipt(write.tx_hash)  # type: ignore[arg-type]
                gas = int(receipt["gasUsed"])
                result["anchor_gas"] = gas
                result["gas_per_entry"] = round(gas / entries, 6)
                anchored = registry.checkpoint_root(officer["address"], size)
                result["anchored_on_chain"] = anchored == gateway.custody.mirror.log.root(size)

                # 4. proofs
                log = gateway.custody.mirror.log
                root = log.root(size)
                picks = [rng.randrange(size) for _ in range(1000)]
                proofs = [(i, log.leaf(i), log.inclusion_proof(i, size)) for i in picks]
                result["proof_bytes"] = max(32 * len(p) for _, _, p in proofs)
                clock = time.perf_counter()
                ok = all(verify_inclusion(leaf, i, size, p, root) for i, leaf, p in proofs)
                result["proof_verify_us"] = round(
                    (time.perf_counter() - clock) / len(proofs) * 1e6, 1
                )
                if not ok:
                    raise RuntimeError("an inclusion proof did not verify")
                clock = time.perf_counter()
                fresh = LogMirror(engine)
                fresh.catch_up()
                result["log_load_seconds"] = round(time.perf_counter() - clock, 2)
                if fresh.log.root() != log.root():
                    raise RuntimeError("the reloaded log has another root")

                # 5. timeline over HTTP
                officer_auth = {"Authorization": f"Bearer {officer['apiKey']}"}
                with (
                    serve_in_thread(client.app, "bench-custody") as url,
                    httpx.Client(base_url=url, timeout=60) as http,
                ):
                    path = f"/v1/items/{GTIN}/{target}/custody"
                    first = http.get(path, headers=officer_auth)
                    if first.status_code != 200:
                        raise RuntimeError(f"timeline: HTTP {first.status_code} {first.text[:300]}")
                    shown = first.json()["entries"]
                    if len(shown) != item_events or any(
                        e["anchoring"] != "anchored" for e in shown
                    ):
                        raise RuntimeError(f"timeline shows {len(shown)} entries")
                    result["timeline_bytes"] = len(first.content)
                    latencies = []
                    for _ in range(requests):
                        clock = time.perf_counter()
                        r = http.get(path, headers=officer_auth)
                        latencies.append((time.perf_counter() - clock) * 1000)
                        if r.status_code != 200:
                            raise RuntimeError(f"timeline: HTTP {r.status_code}")
                result["timeline_p50_ms"] = round(_percentile(latencies, 0.5), 2)
                result["timeline_p99_ms"] = round(_percentile(latencies, 0.99), 2)
        finally:
            gateway.stop()
            engine.dispose()
    result["database"] = "postgresql" if database_url else "sqlite"
    return result
