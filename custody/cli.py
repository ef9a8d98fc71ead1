"""`borderledger audit`: fetch an item's custody timeline from a gateway and check it against
the chain through the auditor's own RPC connection (the checks are `custody.audit`)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from custody.audit import AuditReport
from custody.chainview import Web3ChainView, audit_on_chain
from ledger.errors import BorderLedgerError, ChainError, InvalidInput, NotFound

__all__ = ["Web3ChainView", "audit", "fetch_timeline", "run_audit"]


def fetch_timeline(gateway: str, gtin: str, serial: str, api_key: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = f"{gateway.rstrip('/')}/v1/items/{gtin}/{serial}/custody"
    try:
        response = httpx.get(url, headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        raise ChainError(f"cannot reach the gateway at {gateway}: {exc}") from None
    if response.status_code == 422:
        raise InvalidInput(_message(response))
    if response.status_code == 404:
        raise NotFound(_message(response))
    if response.status_code != 200:
        raise BorderLedgerError(f"gateway answered {response.status_code}: {_message(response)}")
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        raise BorderLedgerError("the gateway's answer is not JSON") from None
    return body


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def run_audit(
    gtin: str,
    serial: str,
    gateway: str,
    rpc_url: str,
    api_key: str | None,
    registry: str | None,
    strict: bool,
    previous: tuple[str, ...] = (),
) -> tuple[dict[str, Any], AuditReport]:
    timeline = fetch_timeline(gateway, gtin, serial, api_key)
    return timeline, audit_on_chain(
        timeline, rpc_url, registry=registry, previous=previous, strict=strict
    )


def render(timeline: dict[str, Any], report: AuditReport, console: Console) -> None:
    item = timeline.get("item") or {}
    table = Table(title=f"custody of {item.get('gtin')} / {item.get('serial')}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    styles = {"verified": "green", "failed": "bold red", "pending": "yellow"}
    labels = {"verified": "verified", "failed": "NOT verified", "pending": "pending"}
    for check in report.checks:
        table.add_row(
            check.subject,
            f"[{styles[check.state]}]{labels[check.state]}[/]",
            check.detail,
        )
    console.print(table)
    summary = report.to_dict()
    verdict = "[green]all verified[/]" if report.ok else "[bold red]AUDIT FAILED[/]"
    console.print(
        f"{verdict}: {summary['verified']} verified, {summary['failed']} not verified, "
        f"{summary['pending']} pending"
    )


def audit(
    gtin: Annotated[str, typer.Argument(help="GTIN of the item")],
    serial: Annotated[str, typer.Argument(help="serial of the item")],
    gateway: Annotated[str, typer.Option("--gateway", help="gateway base URL")],
    rpc: Annotated[str, typer.Option("--rpc", help="your own JSON-RPC endpoint of the chain")],
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="BORDERLEDGER_API_KEY", help="API key")
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(help="registry address you trust (default: the one the gateway names)"),
    ] = None,
    previous: Annotated[
        list[str] | None,
        typer.Option(
            help="a registry an upgrade replaced that you trust too (repeatable; with --registry)"
        ),
    ] = None,
    strict: Annotated[bool, typer.Option(help="entries pending anchoring fail too")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Verify an item's custody timeline against the chain: every entry's inclusion in an
    anchored checkpoint, the checkpoints' consistency, the enrollment. Exit 1 if anything fails."""
    timeline, report = run_audit(
        gtin, serial, gateway, rpc, api_key, registry, strict, tuple(previous or ())
    )
    if as_json:
        print(json.dumps({"item": timeline.get("item"), **report.to_dict()}, default=str))
    else:
        if registry is None:
            Console(stderr=True).print(
                "[yellow]note:[/] trusting the registry address the gateway names; "
                "give --registry to pin the one you know"
            )
        render(timeline, report, Console())
    if not report.ok:
        raise typer.Exit(1)
