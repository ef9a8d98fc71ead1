"""Gateway commands of `borderledger`: `serve` (production) and `up` (development).

`serve` runs the gateway alone against an existing chain and database. Settings come from the
environment as everywhere else (`ledger/config.py`): `BORDERLEDGER_RPC_URL`,
`BORDERLEDGER_REGISTRY`, `DATABASE_URL` (or `BORDERLEDGER_DATABASE_URL`; SQLite under
`BORDERLEDGER_HOME` when unset), `BORDERLEDGER_SECRET_KEY`, … The database is migrated once,
here, before any worker starts, so workers never race each other through a migration.

`up` runs everything on embedded defaults (Anvil, the registry, demo organizations).

Kept import-light: the gateway's modules load only when a command runs, so `borderledger --help`
and the chain commands do not pay for FastAPI and SQLAlchemy.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ledger.config import Settings
from ledger.errors import InvalidInput


def up(
    port: Annotated[
        int | None,
        typer.Option(help="gateway port on 127.0.0.1 (default 8000; 0 picks a free port)"),
    ] = None,
    rpc_port: Annotated[int, typer.Option(help="Anvil port (0 picks a free port)")] = 8545,
    items: Annotated[int, typer.Option(help="serials in the demo batch")] = 1000,
) -> None:
    """Run everything on embedded defaults until Ctrl-C: Anvil, the registry, the gateway on
    SQLite, demo organizations and a demo batch; client settings go to <home>/dev.json."""
    from api.up import run_up

    run_up(port, rpc_port, items, Console(), Console(stderr=True))


def serve(
    host: Annotated[
        str | None, typer.Option(help="address to listen on (default 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="worker processes, each with its own socket")
    ] = 2,
    certfile: Annotated[
        Path | None,
        typer.Option(
            "--certfile",
            "--cert",
            help="TLS certificate chain (PEM); serve HTTPS with --keyfile (phones: README, "
            "'Phones over HTTPS')",
        ),
    ] = None,
    keyfile: Annotated[
        Path | None, typer.Option("--keyfile", "--key", help="TLS private key (PEM)")
    ] = None,
    graceful_timeout: Annotated[
        float, typer.Option(min=0, help="seconds in-flight requests get after SIGTERM")
    ] = 30.0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
    ready_file: Annotated[
        Path | None, typer.Option(help="touched once every worker serves (for supervisors)")
    ] = None,
) -> None:
    """Serve the gateway in production: migrate the database, then run WORKERS processes
    on one port (SO_REUSEPORT), with TLS when given a certificate and key. SIGTERM stops it
    gracefully: requests in flight finish, background work is handed back, exit 0."""
    settings = Settings()
    if not settings.registry:
        raise InvalidInput("set BORDERLEDGER_REGISTRY to the registry's address")
    if (certfile is None) != (keyfile is None):
        raise InvalidInput("TLS needs both --certfile and --keyfile")
    for path in (certfile, keyfile):
        if path is not None and not path.is_file():
            raise InvalidInput(f"{path}: no such file")
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),  # uvicorn also knows "trace"
        format="%(asctime)s %(name)s %(message)s",
    )
    from api.db import make_engine
    from api.migrate import upgrade
    from api.server import WorkerOptions, serve_workers

    engine = make_engine(settings.sqlalchemy_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    options = WorkerOptions(
        host=host or settings.gateway_host,
        port=settings.gateway_port if port is None else port,
        certfile=str(certfile) if certfile else None,
        keyfile=str(keyfile) if keyfile else None,
        log_level=log_level,
        access_log=access_log,
        graceful_timeout=graceful_timeout,
    )
    scheme = "https" if certfile else "http"
    where = f"{scheme}://{options.host}:{options.port}"
    status = serve_workers(
        options,
        workers,
        ready_file=ready_file,
        on_ready=lambda: typer.echo(f"serving {where} with {workers} worker(s)", err=True),
    )
    raise typer.Exit(status)
