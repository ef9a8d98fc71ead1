"""The gateway under real uvicorn, for benchmarks: `python -m bench.serve --port N --workers W`.

Settings come from the environment as usual (`BORDERLEDGER_*`, `DATABASE_URL`);
`BORDERLEDGER_BENCH_SCHEMA` pins a PostgreSQL schema (`api.db.make_engine`'s `schema`), so a
benchmark can run in a throw-away schema of a shared database. Every worker process builds
its own gateway (engine, index snapshot, scan writer, indexer and outbox threads).

Workers: each worker process is a uvicorn server with its own listening socket on the same
port (`SO_REUSEPORT`), run by `api.server` exactly as `borderledger serve` runs them (that
module says why). `--ready-file PATH` is created once every worker has started and is
serving.

`--naive` serves the naive design instead, for comparison: `POST /v1/verify` with
`{"tag": uri}` parses the tag and asks the chain, one `eth_call` of the registry's `checkTag`
view per verification (no database, no index, no authentication, no scan record), behind the
same kind of lean ASGI front as the gateway's /v1/verify.
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.server import WorkerOptions, serve_workers

SCHEMA_ENV = "BORDERLEDGER_BENCH_SCHEMA"


def app_factory() -> FastAPI:
    """One gateway per worker process, from the environment (uvicorn `factory=True`)."""
    from api.db import make_engine
    from api.gateway import Gateway
    from api.main import create_app
    from ledger.config import Settings

    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url, os.environ.get(SCHEMA_ENV) or None)
    gateway = Gateway.from_settings(settings, engine)
    return create_app(gateway, settings, background=True)


class NaiveRequest(BaseModel):
    tag: str


def naive_app_factory() -> ASGIApp:
    """The naive design: every verification is an eth_call of `checkTag`.

    Served the way the gateway serves /v1/verify: a lean ASGI front answers well-formed
    requests (orjson in and out, the blocking eth_call in the threadpool, as a sync web3
    client needs) and hands anything else to a FastAPI app with the same route, so the two
    designs are compared over the same HTTP stack."""
    from chain.contract import RegistryClient, connect
    from ledger.config import Settings
    from ledger.digital_link import parse_digital_link
    from ledger.models import Status

    settings = Settings()
    if not settings.registry:
        raise SystemExit("the naive gateway needs BORDERLEDGER_REGISTRY")
    registry = settings.registry
    local = threading.local()  # one Web3 (HTTP session) per threadpool thread

    def client() -> RegistryClient:
        found: RegistryClient | None = getattr(local, "client", None)
        if found is None:
            found = local.client = RegistryClient(connect(settings.rpc_url), registry)
        return found

    def check(tag: str) -> dict[str, Any]:
        link = parse_digital_link(tag)
        result = client().check_tag(link.gtin, link.serial, link.lot, link.signature)
        genuine = (
            result.batch_registered
            and result.signature_valid
            and result.effective_status == Status.ACTIVE
        )
        return {
            "verdict": "GENUINE" if genuine else "COUNTERFEIT_SUSPECT",
            "item": {"gtin": link.gtin, "lot": link.lot, "serial": link.serial},
            "batchId": result.batch_id,
            "holder": result.holder,
            "signer": result.signer,
            "status": result.effective_status.name.lower(),
        }

    app = FastAPI(title="naive verification: one eth_call per verification")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/verify")
    def verify(body: NaiveRequest) -> dict[str, Any]:
        return check(body.tag)

    async def front(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/verify" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        try:
            tag = NaiveRequest.model_validate(orjson.loads(raw)).tag
        except Exception:  # malformed: FastAPI answers

            async def replay() -> Message:
                return {"type": "http.request", "body": raw, "more_body": False}

            await app(scope, replay, send)
            return
        answer = orjson.dumps(await run_in_threadpool(check, tag))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(answer)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    return front


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--naive", action="store_true", help="serve the naive design")
    parser.add_argument(
        "--factory",
        default="bench.serve:app_factory",
        help="module:function building the app (to measure a variant of the gateway)",
    )
    parser.add_argument("--ready-file", type=Path, help="created once every worker serves")
    args = parser.parse_args(argv)
    factory = "bench.serve:naive_app_factory" if args.naive else args.factory
    options = WorkerOptions(args.host, args.port, factory)
    raise SystemExit(serve_workers(options, args.workers, ready_file=args.ready_file))


if __name__ == "__main__":
    main()
