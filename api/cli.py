"""`borderledger serve`: the gateway alone, for production, against an existing chain and
database.

Settings come from the environment as everywhere else (`ledger/config.py`):
`BORDERLEDGER_RPC_URL`, `BORDERLEDGER_REGISTRY`, `DATABASE_URL` (or
`BORDERLEDGER_DATABASE_URL`; SQLite under `BORDERLEDGER_HOME` when unset),
`BORDERLEDGER_SECRET_KEY`, … The database is migrated once, here, before any worker starts,
so workers never race each other through a migration.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from api.db import make_engine
from api.migrate import upgrade
from api.server import WorkerOptions, serve_workers
from ledger.config import Settings
from ledger.errors import InvalidInput


def serve(
    host: Annotated[
        str | None, typer.Option(help="address to listen on (default 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="worker processes, each with its own socket")
    ] = 2,
    certfile: Annotated[
        Path | None, typer.Option(help="TLS certificate chain (PEM); serve HTTPS with --keyfile")
    ] = None,
    keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM)")] = None,
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


def main() -> None:
    """`python -m api.cli`: the serve command on its own (domain errors exit 2)."""
    try:
        typer.run(serve)
    except InvalidInput as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
