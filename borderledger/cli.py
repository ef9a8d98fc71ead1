"""`borderledger`: one command line assembled from each package's commands.

Each package owns its commands; this module only lists them, in the order `--help` shows, and
turns domain errors into one line and an exit code (2 for bad input, 1 for anything else), so
tracebacks are left for bugs.
"""

from __future__ import annotations

import typer

from api import cli as gateway_cli
from api.case_cli import simulate_app
from bench.cli import bench_app
from borderledger.run import run
from chain import cli as chain_cli
from custody import cli as custody_cli
from scanner.bundle_cli import bundle_app
from scanner.cli import scan
from scanner.device_cli import device_app, sync

app = typer.Typer(
    help="BorderLedger: enroll genuine products on an EVM ledger and check their signed tags.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Chain access: a local node, keys, the registry and its writes.
app.command()(chain_cli.node)
app.add_typer(chain_cli.keys_app, name="keys")
app.command()(chain_cli.deploy)
app.add_typer(chain_cli.accredit_app, name="accredit")
app.add_typer(chain_cli.signer_app, name="signer")
app.command()(chain_cli.enroll)
app.command()(chain_cli.check)
app.add_typer(chain_cli.status_app, name="status")
app.command()(chain_cli.demo)
# The gateway: production (`serve`) and everything on embedded defaults (`up`).
app.command()(gateway_cli.serve)
app.command()(gateway_cli.up)
# Chain of custody.
app.command()(custody_cli.audit)
# The officer's scanner.
app.command("scan")(scan)
app.add_typer(bundle_app, name="bundle")
app.add_typer(device_app, name="device")
app.command("sync")(sync)
# Simulated data (a year of customs cases).
app.add_typer(simulate_app, name="simulate")
# Benchmarks.
app.add_typer(bench_app, name="bench")


def main() -> None:
    """Console entry point: domain errors become one clear line and a non-zero exit."""
    run(app)


__all__ = ["app", "main"]


if __name__ == "__main__":
    main()
