"""Run a command line app the way `borderledger` does: domain errors become one clear line
and an exit code (2 for bad input, 1 for anything else), SIGTERM exits 143, Ctrl-C 130.

Kept apart from borderledger.cli (which imports every package's commands, web3 included) so
that `borderledger scan` can start without them (borderledger.entry)."""

from __future__ import annotations

import signal
import sys

import typer
from rich.console import Console

from ledger.errors import BorderLedgerError, InvalidInput


def run(app: typer.Typer) -> None:
    err = Console(stderr=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        app(prog_name="borderledger")
    except InvalidInput as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except BorderLedgerError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


def scan_main() -> None:
    """`borderledger scan ...` alone: 1-2 s less start-up than the whole command line (no
    web3, no gateway), which over a folder of 400 photos is a fifth of the time."""
    from scanner.cli import scan

    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)

    @app.callback()
    def borderledger() -> None:
        """BorderLedger: enroll genuine products on an EVM ledger and check their signed tags."""

    app.command("scan")(scan)
    run(app)
