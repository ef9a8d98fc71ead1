"""`borderledger bench ...` commands; each prints one JSON object as its last stdout line."""

from __future__ import annotations

import json
from typing import Annotated

import typer

bench_app = typer.Typer(
    help="Benchmarks (print one JSON object, last line of stdout).", no_args_is_help=True
)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of numbers") from None
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter("sizes must be positive")
    return sizes


@bench_app.command("enroll")
def enroll(
    items: Annotated[int, typer.Option(help="items in the end-to-end enrollment")] = 1_000_000,
    gas_sizes: Annotated[str, typer.Option(help="batch sizes for gas per item")] = "1,100,10000",
    baseline_sizes: Annotated[str, typer.Option(help="ERC-721 baseline sizes")] = "1,100,1000",
    workers: Annotated[
        int | None, typer.Option(help="signing processes (default: all cores)")
    ] = None,
    node: Annotated[str, typer.Option(help="anvil or hardhat")] = "anvil",
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON only (the default output is JSON too)")
    ] = False,
) -> None:
    """Gas per enrolled item vs one ERC-721 mint per item, and 1,000,000-item enrollment time."""
    from bench.enroll import run_enroll_bench

    if items < 1:
        raise typer.BadParameter("--items must be positive")
    result = run_enroll_bench(items, _sizes(gas_sizes), _sizes(baseline_sizes), workers, node)
    print(json.dumps(result, separators=(",", ":")))
