"""`borderledger device …` and `borderledger sync`, and the queueing used by `scan`.

`scan --queue` signs and queues every code instead of asking the gateway; without `--queue`,
`scan` queues automatically from the first code the gateway cannot be reached for, provided
the device has a key (`device init`). Queued codes have no gateway verdict yet: `scan` exits 1
("not checked yet") unless an offline verdict judged them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer
from rich.console import Console
from rich.table import Table

from ledger.config import Settings
from ledger.errors import InvalidInput
from scanner.device import QUEUE_FILE, DeviceKey, default_dir, has_device, init_device, load_device
from scanner.online import CodeResult, GatewayUnreachable, resolve_gateway
from scanner.queue import ScanQueue
from scanner.sync import DEFAULT_BATCH, sync_queue

device_app = typer.Typer(
    help="The officer's device key: signs scans queued offline (see docs/scanner.md).",
    no_args_is_help=True,
)
DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="device directory (default: <BORDERLEDGER_HOME>/device)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON object only")]


def device_dir(directory: Path | None) -> Path:
    return directory or default_dir(Settings().home)


def offline_verdict_of(result: CodeResult) -> dict[str, Any] | None:
    """The verdict a code already has when it is queued (from an offline verifier), as the
    opaque object stored in the record; None when it was not judged."""
    if result.verdict is None:
        return None
    verdict: dict[str, Any] = dict(result.response or {})
    verdict.setdefault("verdict", result.verdict)
    verdict.setdefault("reasons", result.reasons)
    return verdict


class Judges(Protocol):
    """Anything that fills in a CodeResult's verdict: the gateway client, an offline one."""

    def judge(self, result: CodeResult, location: str | None = None) -> CodeResult: ...


class Judge:
    """Ask the gateway for each code, or queue it (told to, or the gateway is unreachable).

    `offline`: a verifier that judges without network (a trust bundle); when given, every
    code queued is judged by it first and its verdict goes into the signed record, so the
    gateway can flag a disagreement at sync time."""

    def __init__(
        self,
        verifier: Judges,
        directory: Path,
        queue_only: bool,
        location: str | None,
        offline: Judges | None = None,
        shipment: str | None = None,
    ) -> None:
        self.verifier = verifier
        self.directory = directory
        self.queue_only = queue_only
        self.location = location
        self.offline = offline
        self.shipment = shipment
        self.fallback: str | None = None  # why scans were queued instead of checked
        self._queue: ScanQueue | None = None
        self._device: DeviceKey | None = None
        if queue_only:
            self._device = load_device(directory)  # fail before decoding anything

    def __call__(self, result: CodeResult) -> CodeResult:
        if not self.queue_only:
            try:
                return self.verifier.judge(result, self.location)
            except GatewayUnreachable as exc:
                if not has_device(self.directory):
                    raise
                self.queue_only = True
                self.fallback = str(exc)
        return self.enqueue(result)

    def enqueue(self, result: CodeResult) -> CodeResult:
        if not result.payload.checkable:
            result.error = result.payload.message
            return result
        if self.offline is not None and result.verdict is None:
            self.offline.judge(result, self.location)
        if self._device is None:
            self._device = load_device(self.directory)
        if self._queue is None:
            self._queue = ScanQueue(self.directory / QUEUE_FILE)
        queued = self._queue.append(
            self._device,
            result.payload,
            self.location,
            offline_verdict=offline_verdict_of(result),
            shipment=self.shipment,
        )
        result.queued = queued.scan_id
        return result

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()


@device_app.command("init")
def init(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Create this device's Ed25519 key (kept if it exists) and print its public key and id.

    The key is written to DIR/device_key.pem (PKCS#8 PEM, unencrypted, mode 0600). Register
    the printed public key with the gateway (POST /v1/devices, customs agency's API key)."""
    key, created = init_device(device_dir(directory))
    _show(key, created, as_json)


@device_app.command("show")
def show(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Print this device's id, public key and queue counts."""
    key = load_device(device_dir(directory))
    _show(key, None, as_json)


def _show(key: DeviceKey, created: bool | None, as_json: bool) -> None:
    queue_path = key.path.parent / QUEUE_FILE
    counts: dict[str, int] = {}
    if queue_path.exists():
        with ScanQueue(queue_path) as queue:
            counts = queue.counts()
    data: dict[str, Any] = {
        "deviceId": key.device_id,
        "publicKey": key.public_key,
        "keyFile": str(key.path),
        "queue": counts,
    }
    if created is not None:
        data["created"] = created
    if as_json:
        print(json.dumps(data, separators=(",", ":")))
        return
    out = Console()
    if created is True:
        out.print(f"created device key {key.path} (mode 0600)")
    elif created is False:
        out.print(f"device key exists, kept: {key.path}")
    out.print(f"device id:  {key.device_id}")
    out.print(f"public key: {key.public_key}")
    if counts:
        out.print("queue:      " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    if created is not None:
        out.print(
            "register it: POST /v1/devices "
            f'{{"name": "...", "publicKey": "{key.public_key}"}} with the agency\'s API key'
        )


def sync(
    gateway: Annotated[
        str | None,
        typer.Option(help="gateway URL (default: BORDERLEDGER_GATEWAY_URL or <home>/dev.json)"),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(help="API key (default: BORDERLEDGER_API_KEY or the officer in dev.json)"),
    ] = None,
    directory: DirOption = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=500, help="scans per request")
    ] = DEFAULT_BATCH,
    as_json: JsonOption = False,
) -> None:
    """Send the scans queued offline to the gateway and show its verdicts. Safe to re-run.

    Exit codes: 0 every queued scan is synced and cleared; 1 some scans were rejected or could
    not be sent (gateway unreachable: they stay queued); 3 a synced scan is not
    GENUINE/GENUINE_UNSIGNED or its offline verdict disagreed with the gateway's."""
    directory = device_dir(directory)
    key = load_device(directory)
    url, api = resolve_gateway(gateway, api_key, Settings().home)
    queue_path = directory / QUEUE_FILE
    if not queue_path.exists():
        raise InvalidInput(f"no scan queue at {queue_path}: nothing was queued on this device")
    with ScanQueue(queue_path) as queue:
        report = sync_queue(queue, key, url, api, batch_size)
        remaining = queue.counts()
    rejected = [r for r in report.results if r["status"] == "rejected"]
    code = 0
    if rejected or remaining["pending"]:
        code = 1
    if report.not_cleared or report.disagreements:
        code = 3
    if as_json:
        print(
            json.dumps(
                {
                    "gateway": url,
                    "deviceId": key.device_id,
                    "sent": report.sent,
                    "counts": report.counts,
                    "queue": remaining,
                    "results": report.results,
                    "exit_code": code,
                },
                separators=(",", ":"),
            )
        )
        raise typer.Exit(code)
    out = Console()
    if report.results:
        table = Table(title=f"Synced from {key.device_id}", show_lines=True)
        for column in ("scan", "status", "verdict", "detail"):
            table.add_column(column, overflow="fold")
        for r in report.results:
            detail = r.get("message") or ", ".join(r.get("reasons") or [])
            if r.get("verdictDisagrees"):
                detail = f"offline verdict was {r.get('offlineVerdict')}! " + detail
            table.add_row(str(r.get("scanId")), r["status"], str(r.get("verdict") or ""), detail)
        out.print(table)
    out.print(
        f"sent {report.sent}: {report.counts['accepted']} accepted, "
        f"{report.counts['duplicate']} duplicate, {report.counts['rejected']} rejected; "
        f"{remaining['pending']} still queued"
    )
    raise typer.Exit(code)
