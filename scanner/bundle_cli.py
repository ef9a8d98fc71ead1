"""`borderledger bundle fetch|show`: get a signed trust bundle for offline scans, and read one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ledger.config import Settings
from scanner.bundles import fetch_bundle, open_bundle, pin_path
from scanner.online import resolve_gateway

bundle_app = typer.Typer(
    help="Trust bundles: the gateway's signed index, for `scan --offline`.",
    no_args_is_help=True,
)


@bundle_app.command("fetch")
def fetch(
    out: Annotated[Path, typer.Option(help="where to write the bundle (and <out>.pin)")],
    gateway: Annotated[
        str | None,
        typer.Option(help="gateway URL (default: BORDERLEDGER_GATEWAY_URL or <home>/dev.json)"),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="a customs or admin API key (default as for `scan`)")
    ] = None,
    pin: Annotated[
        str | None,
        typer.Option(
            help="the gateway's Ed25519 public key (64 hex digits); without it the key pinned "
            "by an earlier fetch is used, else the key the gateway announces (trust on first use)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object only")] = False,
) -> None:
    """Download the gateway's trust bundle, check its signature, and store it with its key.

    Nothing is written when the bundle does not verify (another key, altered bytes)."""
    url, key = resolve_gateway(gateway, api_key, Settings().home)
    fetched = fetch_bundle(url, key, out, pin)
    b = fetched.bundle
    summary = {
        "bundle": str(fetched.path),
        "pin": str(pin_path(fetched.path)),
        "keyId": b.key_id,
        "publicKey": b.public_key,
        "keySource": fetched.pin_source,
        "block": b.index_block,
        "issuedAt": b.age(1)["issuedAt"],
        "counts": {
            "holders": len(b.holders),
            "signers": len(b.signers),
            "batches": len(b.batches),
            "flaggedItems": len(b.items),
        },
        "bytes": fetched.size,
    }
    if as_json:
        print(json.dumps(summary, separators=(",", ":")))
        return
    err = Console(stderr=True)
    if fetched.pin_source == "trust on first use":
        err.print(
            f"[bold yellow]trust on first use:[/] pinned the key the gateway announced, "
            f"{b.public_key} (id {b.key_id}). Compare it with the key the gateway's operator "
            "gives you; later fetches must be signed by it.",
            highlight=False,
        )
    c = summary["counts"]
    Console().print(
        f"bundle of index block {b.index_block} verified (key {b.key_id}, {fetched.pin_source}): "
        f"{c['holders']} holders, {c['signers']} signer keys, {c['batches']} batches, "
        f"{c['flaggedItems']} flagged items → {fetched.path}",
        highlight=False,
    )


@bundle_app.command("show")
def show(
    path: Annotated[Path, typer.Argument(help="a bundle file")],
    gateway_key: Annotated[
        str | None, typer.Option(help="key to check it with (default: <bundle>.pin)")
    ] = None,
) -> None:
    """Verify a bundle and print its signed payload as JSON (exit 2 if it does not verify)."""
    bundle = open_bundle(path, gateway_key)
    print(json.dumps(bundle.payload, indent=2, sort_keys=True))
