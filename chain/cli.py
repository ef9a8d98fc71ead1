"""Chain-access commands of `borderledger`: nodes, keys, deployment, accreditation, signer keys,
enrollment, checks, statuses and the chain-only demo.

The command-line root (`borderledger.cli`) registers these; domain errors raised here become
one line and a non-zero exit there (2 for bad input, 1 for anything else).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from chain.check import TagReport, check_tag_uri, find_item_proof
from chain.contract import RegistryClient, connect
from chain.enroll import enroll_batch
from chain.keystore import create_keystore, keystore_address, load_account
from chain.node import LocalNode, dev_private_key
from chain.tx import TransactionSender, write_atomic
from ledger.batch import BatchInput, read_batch_csv
from ledger.config import Settings
from ledger.errors import BorderLedgerError, InvalidInput, KeystoreError
from ledger.merkle import leaf_hash
from ledger.models import Status

keys_app = typer.Typer(help="Encrypted account keystores.", no_args_is_help=True)
accredit_app = typer.Typer(
    help="Accredit rights holders and customs agencies (registry admin).", no_args_is_help=True
)
signer_app = typer.Typer(help="Tag-signing keys of a rights holder.", no_args_is_help=True)
status_app = typer.Typer(
    help="Recall, theft, destruction, decommissioning of batches and items.", no_args_is_help=True
)

out = Console()
err = Console(stderr=True)
T = TypeVar("T")

KeyOption = Annotated[
    str, typer.Option("--key", help="keystore name of the account that sends the transaction")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON only")]


def settings() -> Settings:
    return Settings()


# ---------------------------------------------------------------------------- helpers


def _password(password_file: Path | None = None) -> str:
    if password_file is not None:
        try:
            return password_file.read_text().rstrip("\n")
        except OSError as exc:
            raise KeystoreError(
                f"cannot read password file {password_file}: {exc.strerror}"
            ) from None
    configured = settings().keystore_password
    if configured:
        return configured
    if sys.stdin.isatty():
        return str(typer.prompt("keystore password", hide_input=True))
    raise KeystoreError(
        "no keystore password: set BORDERLEDGER_KEYSTORE_PASSWORD or use --password-file"
    )


def _deployment() -> dict[str, Any]:
    path = settings().deployment_file
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {}


def _rpc_url() -> str:
    env = os.environ.get("BORDERLEDGER_RPC_URL")
    return env or str(_deployment().get("rpc_url") or settings().rpc_url)


def _registry_address() -> str:
    address = settings().registry or _deployment().get("registry")
    if not address:
        raise InvalidInput(
            "no registry: deploy one with `borderledger deploy` or set BORDERLEDGER_REGISTRY"
        )
    return str(address)


def _resolve_address(value: str) -> str:
    """An address, or the address of a keystore name (no password needed)."""
    if value.startswith("0x"):
        from web3 import Web3

        if not Web3.is_address(value):
            raise InvalidInput(f"{value!r} is not an Ethereum address")
        return str(Web3.to_checksum_address(value))
    return keystore_address(settings().keystore_dir, value)


def _client(key: str | None = None, password_file: Path | None = None) -> RegistryClient:
    cfg = settings()
    w3 = connect(_rpc_url())
    registry = RegistryClient(w3, _registry_address())
    if key is None:
        return registry
    account = load_account(cfg.keystore_dir, key, _password(password_file))
    sender = TransactionSender(
        w3,
        account,
        registry.decode_revert,
        receipt_timeout=cfg.receipt_timeout,
        attempts=cfg.rpc_retries,
        backoff=cfg.rpc_backoff,
    )
    return registry.with_sender(sender)


def _holding(client: RegistryClient, batch_id: bytes) -> RegistryClient:
    """`client` on the registry that holds `batch_id`: the current one, or after an upgrade
    the previous registry it was registered on (its statuses change there; the gateway's
    index follows both). Unknown everywhere: the current one, which refuses it clearly."""
    if client.get_batch(batch_id).registered:
        return client
    for previous in _deployment().get("previous", []):
        old = RegistryClient(client.w3, str(previous["registry"]), client.sender)
        if old.get_batch(batch_id).registered:
            return old
    return client


def _emit(data: dict[str, Any]) -> None:
    out.print_json(json.dumps(data, default=str))


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    tasks: dict[str, Any] = {}
    labels = {"sign": "signing tags", "qr": "rendering QR codes"}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(labels.get(phase, phase), total=total)
        bar.update(tasks[phase], completed=done)

    with bar:
        yield update


# ---------------------------------------------------------------------------- node & keys


def node(
    kind: Annotated[str, typer.Option(help="anvil or hardhat")] = "anvil",
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8545,
) -> None:
    """Run a local development chain until Ctrl-C."""
    if kind not in ("anvil", "hardhat"):
        raise InvalidInput(f"node kind {kind!r}: choose anvil or hardhat")
    with LocalNode(kind, port) as running:  # type: ignore[arg-type]
        err.print(f"{kind} listening on [bold]{running.url}[/] (chain id 31337); Ctrl-C stops it")
        _wait_for_interrupt(running)


def _wait_for_interrupt(running: LocalNode) -> None:
    try:
        while running.process is not None and running.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        err.print("stopping")


@keys_app.command("new")
def keys_new(
    name: Annotated[str, typer.Argument(help="keystore name, e.g. admin, holder, signer")],
    dev_index: Annotated[
        int | None,
        typer.Option(
            help="import development account N (funded on local nodes) instead of a new key"
        ),
    ] = None,
    password_file: Annotated[Path | None, typer.Option(help="file holding the password")] = None,
) -> None:
    """Create an encrypted keystore with a new random key and print its address."""
    cfg = settings()
    key = dev_private_key(dev_index) if dev_index is not None else None
    address = create_keystore(
        cfg.keystore_dir, name, _password(password_file), key, cfg.keystore_scrypt_n
    )
    _emit({"name": name, "address": address, "keystore": str(cfg.keystore_dir / f"{name}.json")})


@keys_app.command("list")
def keys_list() -> None:
    """List keystores and their addresses."""
    directory = settings().keystore_dir
    names = sorted(p.stem for p in directory.glob("*.json")) if directory.exists() else []
    _emit({"keys": {name: keystore_address(directory, name) for name in names}})


# ---------------------------------------------------------------------------- registry admin


def deploy(
    key: KeyOption = "admin",
    password_file: Path | None = None,
    upgrade: Annotated[
        bool,
        typer.Option(
            help="replace the deployed registry: the old one is kept under `previous`, so "
            "its batches still verify"
        ),
    ] = False,
) -> None:
    """Deploy a registry administered by the --key account; remember it for later commands.

    With --upgrade the deployment file keeps the registry it named before (and those before
    it) under `previous`: batches stay on the registry they were registered on, with their
    original block and time, and `borderledger check` looks a tag up there when the current
    registry does not have its batch."""
    cfg = settings()
    old = _deployment()
    if upgrade and not old.get("registry"):
        raise InvalidInput(f"--upgrade: {cfg.deployment_file} names no registry to upgrade")
    account = load_account(cfg.keystore_dir, key, _password(password_file))
    w3 = connect(_rpc_url())
    sender = TransactionSender(w3, account, lambda data: BorderLedgerError(data))  # type: ignore[arg-type,return-value]
    registry = RegistryClient.deploy(sender)
    deployment: dict[str, Any] = {
        "rpc_url": _rpc_url(),
        "chain_id": registry.chain_id,
        "registry": registry.address,
        "admin": account.address,
    }
    if upgrade:
        retired = {
            "registry": old["registry"],
            "chain_id": old.get("chain_id", registry.chain_id),
            "retired_at_block": int(w3.eth.block_number),
        }
        deployment["previous"] = [retired, *old.get("previous", [])]
    write_atomic(cfg.deployment_file, json.dumps(deployment, indent=2).encode())
    _emit(deployment)


@accredit_app.command("holder")
def accredit_holder(
    account: Annotated[str, typer.Argument(help="address or keystore name of the rights holder")],
    name: Annotated[str, typer.Option(help="legal name")],
    recordation: Annotated[str, typer.Option(help="customs trademark recordation reference")] = "",
    key: KeyOption = "admin",
    password_file: Path | None = None,
) -> None:
    """Accredit a rights holder."""
    holder = _resolve_address(account)
    receipt = _client(key, password_file).accredit_rights_holder(holder, name, recordation)
    _emit({"holder": holder, "name": name, "recordation": recordation, "tx_hash": receipt.tx_hash})


@accredit_app.command("revoke-holder")
def accredit_revoke_holder(
    account: Annotated[str, typer.Argument(help="address or keystore name of the rights holder")],
    key: KeyOption = "admin",
    password_file: Path | None = None,
) -> None:
    """Revoke a rights holder's accreditation, for good: its earlier batches stay as they
    were; it registers no batch, adds no signer key and changes no status any more."""
    holder = _resolve_address(account)
    receipt = _client(key, password_file).revoke_rights_holder(holder)
    _emit({"holder": holder, "revoked": True, "tx_hash": receipt.tx_hash})


@accredit_app.command("bind-gtin")
def accredit_bind_gtin(
    gtin: Annotated[str, typer.Argument(help="GTIN-14 to bind")],
    account: Annotated[str, typer.Argument(help="address or keystore name of the rights holder")],
    reassign: Annotated[
        bool, typer.Option(help="move a GTIN bound to another holder (explicit)")
    ] = False,
    key: KeyOption = "admin",
    password_file: Path | None = None,
) -> None:
    """Bind a GTIN to a rights holder (its recordation): only that holder registers batches
    of it. A bound GTIN moves to another holder only with --reassign."""
    holder = _resolve_address(account)
    client = _client(key, password_file)
    receipt = client.reassign_gtin(gtin, holder) if reassign else client.bind_gtin(gtin, holder)
    _emit({"gtin": gtin, "holder": holder, "reassigned": reassign, "tx_hash": receipt.tx_hash})


@accredit_app.command("agency")
def accredit_agency(
    account: Annotated[str, typer.Argument(help="address or keystore name of the customs agency")],
    name: Annotated[str, typer.Option(help="agency name")],
    key: KeyOption = "admin",
    password_file: Path | None = None,
) -> None:
    """Accredit a customs agency."""
    agency = _resolve_address(account)
    receipt = _client(key, password_file).accredit_customs_agency(agency, name)
    _emit({"agency": agency, "name": name, "tx_hash": receipt.tx_hash})


@signer_app.command("add")
def signer_add(
    signer: Annotated[str, typer.Argument(help="address or keystore name of the signing key")],
    key: KeyOption = "holder",
    password_file: Path | None = None,
) -> None:
    """Register a tag-signing key for the --key rights holder."""
    address = _resolve_address(signer)
    receipt = _client(key, password_file).add_signer(address)
    _emit({"signer": address, "tx_hash": receipt.tx_hash, "block": receipt.block_number})


@signer_app.command("revoke")
def signer_revoke(
    signer: Annotated[str, typer.Argument(help="address or keystore name of the signing key")],
    key: KeyOption = "holder",
    password_file: Path | None = None,
) -> None:
    """Revoke a tag-signing key (tags of batches registered while it was active stay valid)."""
    address = _resolve_address(signer)
    client = _client(key, password_file)
    receipt = client.revoke_signer(address)
    _emit(
        {
            "signer": address,
            "revoked_at": client.signer_key(address).revoked_at,
            "tx_hash": receipt.tx_hash,
        }
    )


# ---------------------------------------------------------------------------- enrollment


def enroll(
    csv_file: Annotated[
        Path, typer.Argument(help="CSV with a 'serial' column (and optional gtin, lot, expiry)")
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="directory for tags.csv, QR codes, tree and summary")
    ],
    gtin: Annotated[str | None, typer.Option(help="GTIN, if the CSV has no gtin column")] = None,
    lot: Annotated[str | None, typer.Option(help="lot, if the CSV has no lot column")] = None,
    expiry: Annotated[str | None, typer.Option(help="expiry YYMMDD")] = None,
    key: KeyOption = "holder",
    signer: Annotated[str, typer.Option(help="keystore name of the tag-signing key")] = "signer",
    qr: Annotated[
        bool, typer.Option("--qr/--no-qr", help="render a PNG and SVG QR code per item")
    ] = True,
    workers: Annotated[
        int | None, typer.Option(help="signing processes (default: one per core)")
    ] = None,
    password_file: Path | None = None,
) -> None:
    """Enroll a batch: sign a tag per serial, register the batch's Merkle root on chain.

    Safe to re-run: a registered batch is not registered again, an interrupted run resumes.
    """
    cfg = settings()
    batch = read_batch_csv(csv_file, gtin, lot, expiry)
    password = _password(password_file)
    client = _client(key, password_file)
    holder_key = bytes(load_account(cfg.keystore_dir, key, password).key)
    signer_key = bytes(load_account(cfg.keystore_dir, signer, password).key)
    with _progress() as progress:
        result = enroll_batch(
            batch,
            client,
            signer_key,
            out_dir,
            holder_key=holder_key,
            host=cfg.resolver_host,
            qr=qr,
            workers=workers,
            progress=progress,
        )
    _emit(
        {
            "batchId": result.batch_id,
            "gtin": result.gtin,
            "lot": result.lot,
            "root": result.root,
            "count": result.item_count,
            "txHash": result.tx_hash,
            "block": result.block_number,
            "alreadyRegistered": result.already_registered,
            "registry": result.registry,
            "chainId": result.chain_id,
            "signer": result.signer,
            "out": result.out_dir,
            "seconds": result.timings,
        }
    )


# ---------------------------------------------------------------------------- checking


def check(
    uri: Annotated[str, typer.Argument(help="tag URI (GS1 Digital Link with ?sig=)")],
    batch_dir: Annotated[
        Path | None, typer.Option(help="enrollment output, to prove membership too")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a tag against the chain. Exit 0 if genuine, 3 if the chain does not vouch for it."""
    report = check_tag_uri(_client(), uri, batch_dir)
    if not report.batch_registered:
        # An upgraded deployment: the batch may be on a registry this one replaced.
        for previous in _deployment().get("previous", []):
            old = RegistryClient(connect(_rpc_url()), str(previous["registry"]))
            earlier = check_tag_uri(old, uri, batch_dir)
            if earlier.batch_registered:
                report = earlier
                break
    if as_json:
        _emit(report.to_json())
    else:
        _print_report(report)
    raise typer.Exit(0 if report.genuine else 3)


def _print_report(report: TagReport) -> None:
    verdict = {
        "GENUINE": "[bold green]GENUINE[/]",
        "COUNTERFEIT_SUSPECT": "[bold red]POTENTIAL SUSPECT[/]",
    }.get(report.verdict, f"[bold yellow]{report.verdict}[/]")
    table = Table(show_header=False, box=None)
    table.add_row("verdict", verdict)
    table.add_row("item", f"(01){report.gtin}(10){report.lot}(21){report.serial}")
    table.add_row(
        "batch", report.batch_id + ("" if report.batch_registered else " (not registered)")
    )
    table.add_row("holder", report.holder or "-")
    table.add_row(
        "signer", f"{report.signer or '-'} ({'valid' if report.signature_valid else 'not valid'})"
    )
    table.add_row(
        "in batch",
        {None: "not checked (no --batch-dir)", True: "proven", False: "NOT proven"}[
            report.in_batch
        ],
    )
    table.add_row("status", report.status)
    for reason, detail in zip(report.reasons, report.details, strict=True):
        table.add_row("reason", f"{reason}: {detail}")
    out.print(table)


@status_app.command("batch")
def status_batch(
    gtin: str,
    lot: str,
    status: Annotated[
        str, typer.Argument(help="active, recalled, stolen, destroyed or decommissioned")
    ],
    key: KeyOption = "holder",
    password_file: Path | None = None,
) -> None:
    """Set the status of a whole batch."""
    new = _parse_status(status)
    batch_id = BatchInput.create(gtin, lot, ["x"]).batch_id
    receipt = _holding(_client(key, password_file), batch_id).set_batch_status(batch_id, new)
    _emit(
        {"batchId": "0x" + batch_id.hex(), "status": new.name.lower(), "tx_hash": receipt.tx_hash}
    )


@status_app.command("item")
def status_item(
    batch_dir: Annotated[Path, typer.Argument(help="the batch's enrollment output directory")],
    serial: str,
    status: Annotated[
        str, typer.Argument(help="active, recalled, stolen, destroyed or decommissioned")
    ],
    key: KeyOption = "holder",
    password_file: Path | None = None,
) -> None:
    """Set the status of one item (its leaf and proof come from the batch directory)."""
    new = _parse_status(status)
    summary = (
        json.loads((batch_dir / "batch.json").read_text())
        if (batch_dir / "batch.json").exists()
        else None
    )
    if summary is None:
        raise InvalidInput(f"{batch_dir} has no batch.json: is it an enrollment output?")
    found = find_item_proof(batch_dir, summary["gtin"], serial)
    if found is None:
        raise InvalidInput(f"serial {serial!r} is not in the batch at {batch_dir}")
    salt, proof = found
    client = _holding(
        _client(key, password_file),
        BatchInput.create(summary["gtin"], summary["lot"], ["x"]).batch_id,
    )
    receipt = client.set_item_status(summary["gtin"], summary["lot"], serial, salt, proof, new)
    leaf = leaf_hash(summary["gtin"], serial, salt)
    _emit(
        {
            "serial": serial,
            "leaf": "0x" + leaf.hex(),
            "status": new.name.lower(),
            "tx_hash": receipt.tx_hash,
        }
    )


def _parse_status(text: str) -> Status:
    try:
        return Status.parse(text)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


# ---------------------------------------------------------------------------- demo


def demo(
    items: Annotated[int, typer.Option(help="serials in the demo batch")] = 1000,
    node_kind: Annotated[str, typer.Option("--node", help="anvil or hardhat")] = "anvil",
    keep_running: Annotated[bool, typer.Option(help="keep the chain running until Ctrl-C")] = False,
) -> None:
    """The main job on embedded defaults: start a chain, deploy, accredit, enroll, check."""
    from chain.demo import run_demo

    if items < 1 or items > 1_000_000:
        raise InvalidInput(f"--items {items}: choose 1 to 1,000,000")
    run_demo(items, node_kind, keep_running, out, err)
