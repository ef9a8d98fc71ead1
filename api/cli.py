"""Gateway commands of `borderledger`: `up` (everything on embedded defaults, for development).

Kept import-light: the gateway's modules load only when a command runs, so `borderledger --help`
and the chain commands do not pay for FastAPI and SQLAlchemy.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console


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
