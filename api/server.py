"""The gateway under uvicorn in several worker processes on one port.

Each worker process is a uvicorn server with its own listening socket on the same port
(`SO_REUSEPORT`), so the kernel spreads new connections evenly over them. uvicorn's own
`--workers` shares one socket instead, and the first worker to wake accepts a whole burst of
connections: with 32 keep-alive clients connecting at once, one worker got 30 of them.

Used by `borderledger serve` (api/cli.py) and by the benchmarks (bench/serve.py). Every
worker builds its own gateway (engine, index snapshot, scan writer, indexer, outbox, webhook
and job threads); those threads lease or lock what they work on, so any number of workers
(and of hosts) can share one database.

Stopping: SIGTERM or SIGINT to the supervisor is passed to every worker as SIGTERM; each
stops accepting connections, finishes the requests in flight (up to `graceful_timeout`),
then stops its gateway's threads (a running job is handed back to the queue) and exits.
The supervisor exits 0 once all have.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from pathlib import Path

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("borderledger.serve")


def app_factory() -> FastAPI:
    """One gateway per worker process, from the environment (uvicorn `factory=True`). The
    supervisor has migrated the database already; the gateway is stopped with the app."""
    from api.gateway import Gateway
    from api.main import create_app
    from ledger.config import Settings

    settings = Settings()
    gateway = Gateway.from_settings(settings, migrate=False)
    return create_app(gateway, settings, background=True, stop_gateway=True)


@dataclass(frozen=True)
class WorkerOptions:
    host: str
    port: int
    factory: str = "api.server:app_factory"
    certfile: str | None = None
    keyfile: str | None = None
    log_level: str = "warning"
    access_log: bool = False
    graceful_timeout: float = 30.0


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening socket of its own on a port shared with the other workers."""
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose `proto` says
    # TCP, and accepted sockets inherit it from this one. uvicorn's own `--workers` binds with
    # proto 0, so Nagle stays on and a keep-alive answer written in two parts (head, body)
    # waits for the client's delayed ACK: ~40 ms per request.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run_worker(options: WorkerOptions, ready: Event) -> None:
    """One worker process: its own SO_REUSEPORT socket and uvicorn server; `ready` is set
    once it serves."""
    sock = reuseport_socket(options.host, options.port)
    config = uvicorn.Config(
        options.factory,
        factory=True,
        log_level=options.log_level,
        access_log=options.access_log,
        backlog=2048,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=int(options.graceful_timeout),
        ssl_certfile=options.certfile,
        ssl_keyfile=options.keyfile,
    )
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            ready.set()

    threading.Thread(target=announce, name="announce-ready", daemon=True).start()
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again under the
    # handler it found: with these no-op handlers a clean stop is a clean exit (status 0).
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    server.run(sockets=[sock])  # uvicorn's own loop choice (uvloop when installed)


def serve_workers(
    options: WorkerOptions,
    workers: int,
    *,
    ready_file: Path | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Run `workers` worker processes until SIGTERM or SIGINT; returns the exit status
    (0 when every worker stopped cleanly). A worker that dies unexpectedly is replaced."""
    context = get_context("spawn")
    stop = threading.Event()

    def start(index: int) -> tuple[SpawnProcess, Event]:
        event = context.Event()
        process = context.Process(target=run_worker, args=(options, event), name=f"worker-{index}")
        process.start()
        return process, event

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    running = [start(i) for i in range(workers)]
    try:
        for process, event in running:
            while not event.wait(0.1):
                if stop.is_set():
                    break
                if not process.is_alive():
                    log.error("%s exited with %s while starting", process.name, process.exitcode)
                    stop.set()
                    return _shutdown(running, options.graceful_timeout) or 1
        if not stop.is_set():
            if ready_file is not None:
                ready_file.touch()
            if on_ready is not None:
                on_ready()
        while not stop.wait(0.5):
            for index, (process, _) in enumerate(running):
                if not process.is_alive():
                    log.error(
                        "%s exited with %s; starting a new one", process.name, process.exitcode
                    )
                    running[index] = start(index)
        return _shutdown(running, options.graceful_timeout)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if ready_file is not None:
            with contextlib.suppress(FileNotFoundError):
                ready_file.unlink()


def _shutdown(running: list[tuple[SpawnProcess, Event]], graceful_timeout: float) -> int:
    """SIGTERM every worker, wait for them (requests in flight, then the gateway's own
    threads), and kill what is left; 0 when every worker exited cleanly."""
    for process, _ in running:
        if process.pid is not None and process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + graceful_timeout + 60  # requests, then the job hand-back
    status = 0
    for process, _ in running:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.error("%s did not stop in time; killing it", process.name)
            process.kill()
            process.join()
            status = 1
        elif process.exitcode not in (0, None):
            status = 1
    return status
