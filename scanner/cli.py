"""`borderledger scan`: read codes from photos (or typed entry) and show the gateway's verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ledger.config import Settings
from ledger.errors import InvalidInput
from scanner.decode import decode_files, expand_paths
from scanner.device_cli import Judge
from scanner.device_cli import device_dir as device_dir_of
from scanner.payload import classify, typed
from scanner.verify import CLEARED, CodeResult, Verifier, resolve_gateway, results_of

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_NOTHING_READ = 2
EXIT_NOT_CLEARED = 3

_STYLE = {
    "GENUINE": "bold green",
    "GENUINE_UNSIGNED": "bold yellow",
    "COUNTERFEIT_SUSPECT": "bold red",
    "RECALLED": "bold red",
    "STOLEN": "bold red",
    "DECOMMISSIONED": "bold red",
}


def scan(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="image files or folders of images (PNG, JPEG, ...)", show_default=False
        ),
    ] = None,
    serial: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--serial",
            metavar="GTIN SERIAL",
            help="a GTIN and serial typed from the label's printed text",
            show_default=False,
        ),
    ] = None,
    lot: Annotated[str | None, typer.Option(help="lot (batch) typed with --serial")] = None,
    code: Annotated[
        list[str] | None,
        typer.Option(
            "--code",
            help="a code's text typed or pasted: a tag URI or a GS1 element string such as "
            "'(01)09506000134352(17)281231(10)L1(21)SN0001' (repeatable)",
            show_default=False,
        ),
    ] = None,
    gateway: Annotated[
        str | None,
        typer.Option(help="gateway URL (default: BORDERLEDGER_GATEWAY_URL or <home>/dev.json)"),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(help="API key (default: BORDERLEDGER_API_KEY or the officer in dev.json)"),
    ] = None,
    location: Annotated[
        str | None, typer.Option(help="UN/LOCODE where the scan happens, e.g. NLRTM")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object only")] = False,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue",
            help="do not ask the gateway: sign each code with the device key and queue it for "
            "`borderledger sync` (done automatically when the gateway is unreachable and the "
            "device has a key)",
        ),
    ] = False,
    device_dir: Annotated[
        Path | None,
        typer.Option(help="device directory (default: <BORDERLEDGER_HOME>/device)"),
    ] = None,
) -> None:
    """Read tags from photos of labels and show the gateway's verdict for each code.

    Reads GS1 Digital Link QR codes (signed tags), GS1 DataMatrix / GS1-128 element strings
    ((01) GTIN, (17) expiry, (10) lot, (21) serial) and typed entry (--serial, --code).
    Codes from other systems (a web address, a retail EAN-13) are reported, not checked.

    Exit codes:

    0: every image was read and every code judged GENUINE or GENUINE_UNSIGNED.

    1: some images or codes could not be read or judged (the others were cleared);
    also when the gateway cannot be reached or refuses the API key, and when codes were
    queued for `borderledger sync` instead of checked.

    2: nothing could be read or judged (no code found, corrupt files, only codes from other
    systems), or bad input (a missing file, an invalid option).

    3: at least one verdict is not GENUINE/GENUINE_UNSIGNED (suspect, recalled, stolen,
    decommissioned): hold the item.
    """
    if location is not None and not _is_unlocode(location):
        raise InvalidInput(f"--location {location!r} is not a UN/LOCODE (e.g. NLRTM)")
    if lot is not None and serial is None:
        raise InvalidInput("--lot goes with --serial GTIN SERIAL")
    if not paths and serial is None and not code:
        raise InvalidInput("nothing to scan: give image files or folders, --serial or --code")
    url, key = ("", "") if queue else resolve_gateway(gateway, api_key, Settings().home)

    results: list[CodeResult] = []
    unreadable: list[dict[str, str]] = []
    if serial is not None:
        results.append(CodeResult("typed", typed(serial[0], serial[1], lot)))
    for text in code or []:
        results.append(CodeResult("typed", classify(text)))
    files = expand_paths(paths or [])
    with Verifier(url, key) as verifier:
        judge = Judge(verifier, device_dir_of(device_dir), queue, location)
        try:
            for result in results:
                judge(result)
            for file in decode_files(files):
                if file.error is not None:
                    unreadable.append({"source": str(file.path), "error": file.error})
                    continue
                for result in results_of(file):
                    results.append(judge(result))
        finally:
            judge.close()

    exit_code = exit_code_for(results, unreadable)
    if as_json:
        answer = report(results, unreadable, exit_code, url)
        if judge.fallback:
            answer["queued_because"] = judge.fallback
        print(json.dumps(answer, separators=(",", ":")))
    else:
        _print(results, unreadable, exit_code)
        if judge.fallback:
            Console().print(f"[bold cyan]gateway unreachable, scans queued:[/] {judge.fallback}")
    raise typer.Exit(exit_code)


def exit_code_for(results: list[CodeResult], unreadable: list[dict[str, str]]) -> int:
    judged = [r for r in results if r.judged]
    if any(r.verdict not in CLEARED for r in judged):
        return EXIT_NOT_CLEARED
    if not judged:
        return EXIT_PARTIAL if any(r.queued for r in results) else EXIT_NOTHING_READ
    if unreadable or len(judged) < len(results):
        return EXIT_PARTIAL
    return EXIT_OK


def report(
    results: list[CodeResult], unreadable: list[dict[str, str]], exit_code: int, gateway: str
) -> dict[str, Any]:
    verdicts: dict[str, int] = {}
    for r in results:
        if r.verdict:
            verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
    return {
        "gateway": gateway,
        "codes": [r.to_json() for r in results],
        "unreadable": unreadable,
        "counts": {
            "codes": len(results),
            "judged": sum(1 for r in results if r.judged),
            "not_judged": sum(1 for r in results if not r.judged),
            "unreadable_files": len(unreadable),
            "queued": sum(1 for r in results if r.queued),
            "verdicts": verdicts,
        },
        "exit_code": exit_code,
    }


def _is_unlocode(text: str) -> bool:
    return len(text) == 5 and text[:2].isalpha() and text[:2].isupper() and text[2:].isalnum()


def _print(results: list[CodeResult], unreadable: list[dict[str, str]], exit_code: int) -> None:
    out = Console()
    if results:
        table = Table(title="Scan results", show_lines=True)
        table.add_column("source", overflow="fold")
        table.add_column("code", overflow="fold")
        table.add_column("verdict")
        table.add_column("summary", overflow="fold")
        for r in results:
            p = r.payload
            identity = (
                f"GTIN {p.gtin}\nserial {p.serial}" + (f"\nlot {p.lot}" if p.lot else "")
                if p.gtin and p.serial
                else p.raw[:60]
            )
            what = f"{p.kind}" + (" (signed)" if p.signed else "")
            if r.format:
                what += f" · {r.format}"
            verdict = (
                Text(r.verdict, style=_STYLE.get(r.verdict, "bold"))
                if r.verdict
                else Text("QUEUED", style="bold cyan")
                if r.queued
                else Text("NOT CHECKED", style="bold magenta")
            )
            summary = r.summary or r.error or p.message
            if r.queued:
                summary = f"signed and queued for `borderledger sync` (scan {r.queued})\n" + (
                    summary if r.verdict else ""
                )
            if r.reasons:
                summary += "\n" + ", ".join(r.reasons)
            table.add_row(r.source, f"{what}\n{identity}", verdict, summary)
        out.print(table)
    for item in unreadable:
        out.print(f"[bold magenta]unreadable:[/] {item['error']}", highlight=False)
    message = {
        EXIT_OK: "[bold green]all codes read and cleared[/]",
        EXIT_PARTIAL: "[bold yellow]some images or codes could not be read or checked[/]",
        EXIT_NOTHING_READ: "[bold magenta]nothing could be read or checked[/]",
        EXIT_NOT_CLEARED: "[bold red]hold: at least one item is not cleared[/]",
    }[exit_code]
    out.print(message)
