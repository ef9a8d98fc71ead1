"""`borderledger scan`: read codes from photos (or typed entry) and show the gateway's verdicts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ledger.config import Settings
from ledger.errors import InvalidInput
from ledger.scan_record import SHIPMENT_PATTERN
from scanner.bundles import OfflineVerifier, open_bundle
from scanner.decode import expand_paths
from scanner.device import has_device
from scanner.device_cli import Judge
from scanner.device_cli import device_dir as device_dir_of
from scanner.online import CLEARED, CodeResult, Verifier, resolve_gateway
from scanner.payload import classify, typed
from scanner.pipeline import PARALLEL_FROM, Decoder, scan_files

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_NOTHING_READ = 2
EXIT_NOT_CLEARED = 3
EXIT_CHAIN_DISAGREES = 4

_STYLE = {
    "GENUINE": "bold green",
    "GENUINE_UNSIGNED": "bold yellow",
    "GENUINE_DIVERTED": "bold yellow",
    "PENDING": "bold cyan",
    "COUNTERFEIT_SUSPECT": "bold red",
    "RECALLED": "bold red",
    "STOLEN": "bold red",
    "DECOMMISSIONED": "bold red",
    "UNVERIFIED": "bold yellow",
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
    shipment: Annotated[
        str | None,
        typer.Option(
            help="shipment reference (entry, air-waybill or parcel number) sent with every scan "
            "and written into queued offline records: scans group by it"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object only")] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="judge from a trust bundle (--bundle), with no network at all"
        ),
    ] = False,
    bundle: Annotated[
        Path | None, typer.Option(help="trust bundle file from `borderledger bundle fetch`")
    ] = None,
    gateway_key: Annotated[
        str | None,
        typer.Option(
            help="the gateway's Ed25519 public key (64 hex digits) to check the bundle with "
            "(default: the key pinned in <bundle>.pin)"
        ),
    ] = None,
    max_age: Annotated[
        float | None,
        typer.Option(
            help="warn when the bundle is older than this many seconds "
            "(default: BORDERLEDGER_BUNDLE_MAX_AGE_SECONDS, 86400)"
        ),
    ] = None,
    verify_chain: Annotated[
        str | None,
        typer.Option(
            metavar="RPC_URL",
            help="check each gateway verdict against the chain through this RPC node; "
            "exit 4 on any disagreement",
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            help="registry address for --verify-chain (default: BORDERLEDGER_REGISTRY, else "
            "the address in the gateway's proof)"
        ),
    ] = None,
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

    3: at least one verdict is not GENUINE/GENUINE_UNSIGNED (suspect or a copy, recalled,
    stolen, decommissioned, GENUINE_DIVERTED gray-market goods to check against the
    recordation, PENDING registration to scan again, or UNVERIFIED offline): hold the item.

    4: --verify-chain found the chain disagreeing with the gateway: do not trust the gateway.

    Offline (--offline --bundle FILE): the bundle's signature is checked first (a tampered
    bundle or another key: refused, exit 2); verdicts then need no network, state the bundle's
    age, and cannot check Merkle membership (MEMBERSHIP_NOT_CHECKED); unsigned codes are
    UNVERIFIED.
    """
    if location is not None and not _is_unlocode(location):
        raise InvalidInput(f"--location {location!r} is not a UN/LOCODE (e.g. NLRTM)")
    if shipment is not None and not re.match(SHIPMENT_PATTERN, shipment):
        raise InvalidInput(
            f"--shipment {shipment!r} is not a shipment reference: letters, digits, space . / -, "
            "starting with a letter or digit, at most 35 characters"
        )
    if lot is not None and serial is None:
        raise InvalidInput("--lot goes with --serial GTIN SERIAL")
    if not paths and serial is None and not code:
        raise InvalidInput("nothing to scan: give image files or folders, --serial or --code")
    settings = Settings()
    mode = _mode(offline, bundle, gateway_key, max_age, verify_chain, registry)
    directory = device_dir_of(device_dir)
    files = expand_paths(paths or [])
    # The photos decode on every core from here on, while the gateway client (or the trust
    # bundle) is set up: 0.2-0.3 s of a folder's scan, one core idle, before.
    with Decoder() as decoder:
        decoding = decoder.decode(files)
        verifier: Verifier | OfflineVerifier
        if offline:
            assert bundle is not None
            verifier = OfflineVerifier(
                open_bundle(bundle, gateway_key),
                max_age if max_age is not None else settings.bundle_max_age_seconds,
            )
            url = verifier.url
        else:
            url, key = ("", "") if queue else resolve_gateway(gateway, api_key, settings.home)
            verifier = Verifier(url, key, shipment=shipment)
        checker = None
        if verify_chain:
            # Imported here: it brings web3 (1-2 s of start-up) that a plain scan never uses.
            from scanner.chaincheck import ChainChecker

            checker = ChainChecker(verify_chain, registry or settings.registry)
        # Offline scans are also queued for `borderledger sync` when this handheld has a device key:
        # the offline verdict travels in the signed record and the gateway judges it again later.
        offline_judge = verifier if isinstance(verifier, OfflineVerifier) else None
        queue_only = queue or (offline_judge is not None and has_device(directory))

        results: list[CodeResult] = []
        if serial is not None:
            results.append(CodeResult("typed", typed(serial[0], serial[1], lot)))
        for text in code or []:
            results.append(CodeResult("typed", classify(text)))
        with verifier:
            judge = Judge(
                verifier, directory, queue_only, location, offline=offline_judge, shipment=shipment
            )
            try:
                for result in results:
                    judge(result)
                online = None
                if isinstance(verifier, Verifier) and not judge.queue_only:
                    online_verifier = verifier

                    def online(codes: list[CodeResult]) -> list[CodeResult]:
                        return online_verifier.judge_many(codes, location)

                with _progress(len(files), show=not as_json) as advance:
                    decoded, unreadable = scan_files(
                        files, judge, online, decoded=decoding, advance=advance
                    )
                results.extend(decoded)
            finally:
                judge.close()
    if checker is not None:
        for result in results:
            checked = checker.check(result)
            result.chain_check = checked.to_json() if checked else None

    exit_code = exit_code_for(results, unreadable)
    if as_json:
        out = report(results, unreadable, exit_code, url)
        if isinstance(verifier, OfflineVerifier):
            out["bundle"] = verifier.bundle.age(verifier.max_age)
        out["mode"] = mode
        if judge.fallback:
            out["queued_because"] = judge.fallback
        print(json.dumps(out, separators=(",", ":")))
    else:
        if isinstance(verifier, OfflineVerifier):
            _print_bundle(verifier)
        _print(results, unreadable, exit_code)
        if judge.fallback:
            Console().print(f"[bold cyan]gateway unreachable, scans queued:[/] {judge.fallback}")
    raise typer.Exit(exit_code)


@contextmanager
def _progress(total: int, show: bool) -> Iterator[Callable[[], None] | None]:
    """A Rich progress bar over the files of a folder's scan, on a terminal only (a pipe or
    `--json` gets nothing but the result); a handful of files needs none."""
    console = Console(stderr=True)
    if not show or total < PARALLEL_FROM or not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("decoding"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("decoding", total=total)
        yield lambda: bar.advance(task)


def _mode(
    offline: bool,
    bundle: Path | None,
    gateway_key: str | None,
    max_age: float | None,
    verify_chain: str | None,
    registry: str | None,
) -> str:
    """Check the offline / chain options go together; returns the mode's name."""
    if offline:
        if bundle is None:
            raise InvalidInput("--offline needs --bundle FILE (from `borderledger bundle fetch`)")
        if verify_chain is not None:
            raise InvalidInput("--verify-chain checks gateway answers: it needs the network")
        if max_age is not None and max_age <= 0:
            raise InvalidInput(f"--max-age {max_age}: give a number of seconds above 0")
        return "offline"
    for option, value in (("--bundle", bundle), ("--gateway-key", gateway_key)):
        if value is not None:
            raise InvalidInput(f"{option} goes with --offline")
    if registry is not None and verify_chain is None:
        raise InvalidInput("--registry goes with --verify-chain RPC_URL")
    return "online+chain" if verify_chain else "online"


def _print_bundle(verifier: OfflineVerifier) -> None:
    age = verifier.bundle.age(verifier.max_age)
    out = Console()
    block_age = age["blockAgeSeconds"]
    mined = f", mined {_duration(block_age)} ago" if block_age is not None else ""
    out.print(
        f"[bold]offline[/]: trust bundle of gateway key {age['keyId']}, index block "
        f"{age['block']}{mined}, issued {_duration(age['ageSeconds'])} ago",
        highlight=False,
    )
    if age["stale"]:
        out.print(
            f"[bold yellow]warning:[/] the bundle is older than {_duration(age['maxAgeSeconds'])}"
            ": statuses and revocations since then are not known. Fetch a new one "
            "(`borderledger bundle fetch`).",
            highlight=False,
        )


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds} s"


def exit_code_for(results: list[CodeResult], unreadable: list[dict[str, str]]) -> int:
    if any(r.chain_check and r.chain_check["disagreements"] for r in results):
        return EXIT_CHAIN_DISAGREES
    judged = [r for r in results if r.judged]
    unchecked = any(r.chain_check and r.chain_check["error"] for r in results)
    if any(r.verdict not in CLEARED for r in judged):
        return EXIT_NOT_CLEARED
    if not judged:
        return EXIT_PARTIAL if any(r.queued for r in results) else EXIT_NOTHING_READ
    if unreadable or len(judged) < len(results) or unchecked:
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


def _chain_line(check: dict[str, Any]) -> str:
    if check["error"]:
        return "chain: NOT CHECKED, " + str(check["error"])
    if check["agrees"]:
        if not check["checked"]:
            return "chain: not checked (" + "; ".join(check["notes"]) + ")"
        return "chain agrees (" + ", ".join(check["checked"]) + ")"
    return "CHAIN DISAGREES: " + "; ".join(
        f"{d['check']}: gateway {d['gateway']}, chain {d['chain']}" for d in check["disagreements"]
    )


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
            if r.chain_check is not None:
                summary += "\n" + _chain_line(r.chain_check)
            table.add_row(r.source, f"{what}\n{identity}", verdict, summary)
        out.print(table)
    for item in unreadable:
        out.print(f"[bold magenta]unreadable:[/] {item['error']}", highlight=False)
    message = {
        EXIT_OK: "[bold green]all codes read and cleared[/]",
        EXIT_PARTIAL: "[bold yellow]some images or codes could not be read or checked[/]",
        EXIT_NOTHING_READ: "[bold magenta]nothing could be read or checked[/]",
        EXIT_NOT_CLEARED: "[bold red]hold: at least one item is not cleared[/]",
        EXIT_CHAIN_DISAGREES: "[bold red]the chain disagrees with the gateway: do not trust "
        "its verdicts[/]",
    }[exit_code]
    out.print(message)
