"""`borderledger up` (`make run`): the whole stack on embedded defaults, until Ctrl-C.

Starts a local Anvil node, deploys the registry from development account 0, runs the
gateway under a real uvicorn server on a fresh SQLite file under BORDERLEDGER_HOME, creates
demo organizations (admin, a rights holder with a tag-signing key, a customs agency, an
auditor) and enrolls a demo batch through the gateway's own API, as a client would. What a
client needs (URLs, registry, API keys, a sample tag) is written to `<home>/dev.json`, which
exists only while the stack runs. SIGINT and SIGTERM stop everything in order (HTTP server,
gateway threads, Anvil) and the command exits 0.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import signal
import socket
import string
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from eth_account import Account
from rich.console import Console
from rich.table import Table

from chain.contract import RegistryClient, connect
from chain.node import LocalNode, dev_private_key
from chain.tx import TransactionSender
from ledger.config import Settings
from ledger.errors import BorderLedgerError, InvalidInput
from ledger.trustbundle import key_description, signing_key

DEMO_GTIN = "09506000134352"  # GS1's own example GTIN
DEV_FILE = "dev.json"
DB_FILE = "gateway.db"
MAX_ITEMS = 1_000_000
_SERIAL_ALPHABET = string.ascii_uppercase + string.digits

#: The demo customs agency; it also anchors the custody log's checkpoints.
DEMO_CUSTOMS = "Port of Rotterdam Customs"
#: The demo anchors new custody-log entries after this many seconds (unless configured).
DEMO_ANCHOR_SECONDS = 10.0
#: The demo organizations created through POST /v1/organizations: (dev.json key, name, role,
#: trademark recordation).
DEMO_ORGS = (
    ("rights_holder", "Acme Pharma GmbH", "rights_holder", "CBP TMK 19-00123"),
    ("officer", DEMO_CUSTOMS, "customs", ""),
    ("auditor", "EU Customs Audit", "auditor", ""),
)


class UpError(BorderLedgerError):
    """The stack could not be started (busy port, another instance, a failed step)."""


class _Stop(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM: unwind and stop everything."""


# ---------------------------------------------------------------------------- entry point


def run_up(
    port: int | None, rpc_port: int, items: int, out: Console, err: Console
) -> dict[str, Any]:
    """Run the stack until SIGINT/SIGTERM; returns the dev.json contents after a clean stop."""
    base = Settings()
    port = base.gateway_port if port is None else port
    if not 1 <= items <= MAX_ITEMS:
        raise InvalidInput(f"--items {items}: choose 1 to {MAX_ITEMS:,}")
    for option, value in (("--port", port), ("--rpc-port", rpc_port)):
        if not 0 <= value <= 65535:
            raise InvalidInput(f"{option} {value}: choose 0 (a free port) to 65535")
    home = base.home.resolve()
    dev_file = home / DEV_FILE
    _refuse_second_instance(dev_file)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise _Stop(signum)

    for sig in previous:
        signal.signal(sig, on_signal)
    running = _Running()
    try:
        with contextlib.ExitStack() as stack:
            try:
                _start(stack, running, base, home, port, rpc_port, items, out, err)
                _wait(running)
            except _Stop:
                err.print("stopping: HTTP server, gateway threads, Anvil")
            finally:
                # Unwinding has begun: further signals must not interrupt the clean-up.
                for sig in previous:
                    signal.signal(sig, signal.SIG_IGN)
    except _Stop:  # a second signal raced the first one's handling; clean-up still ran
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    err.print("stopped")
    return running.info


@dataclass
class _Running:
    """What `_start` has started so far, for `_wait` to watch."""

    node: LocalNode | None = None
    server_thread: threading.Thread | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _wait(running: _Running) -> None:
    """Sleep until a signal arrives; fail if Anvil or the HTTP server dies meanwhile."""
    assert running.node is not None and running.server_thread is not None
    while True:
        process = running.node.process
        if process is None or process.poll() is not None:
            raise UpError("Anvil exited unexpectedly; stopping the gateway")
        if not running.server_thread.is_alive():
            raise UpError("the gateway's HTTP server stopped unexpectedly; stopping Anvil")
        time.sleep(0.5)


# ---------------------------------------------------------------------------- start-up


def _start(
    stack: contextlib.ExitStack,
    running: _Running,
    base: Settings,
    home: Path,
    port: int,
    rpc_port: int,
    items: int,
    out: Console,
    err: Console,
) -> None:
    started = time.perf_counter()
    home.mkdir(parents=True, exist_ok=True)
    # Reserve the gateway port before anything slow, so a busy port fails at once.
    listener = _listen(base.gateway_host, port)
    stack.callback(listener.close)
    if rpc_port:
        _check_free("127.0.0.1", rpc_port, "--rpc-port")
    gateway_port = int(listener.getsockname()[1])
    host = base.gateway_host
    gateway_url = f"http://{'[' + host + ']' if ':' in host else host}:{gateway_port}"

    node = running.node = LocalNode("anvil", rpc_port, bin_dir=base.node_bin_dir)
    stack.callback(node.stop)  # before start(): a signal during start-up still stops it
    node.start()
    _step(err, f"[bold]1.[/] Anvil started at {node.url}")

    w3 = connect(node.url)
    admin = Account.from_key(dev_private_key(0))
    registry = RegistryClient.deploy(TransactionSender(w3, admin, lambda d: None))  # type: ignore[arg-type,return-value]
    chain_id = registry.chain_id
    _step(err, f"[bold]2.[/] registry deployed at {registry.address} (admin {admin.address})")

    for stale in (DEV_FILE, DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm"):
        (home / stale).unlink(missing_ok=True)
    database_url = f"sqlite:///{home / DB_FILE}"
    settings = base.model_copy(
        update={
            "home": home,
            "rpc_url": node.url,
            "registry": registry.address,
            "database_url": database_url,
            "environment": "dev",
            # The demo customs agency anchors the custody log (once its organization exists).
            "anchor_organization": base.anchor_organization or DEMO_CUSTOMS,
            "anchor_interval_seconds": base.anchor_interval_seconds
            if "anchor_interval_seconds" in base.model_fields_set
            else DEMO_ANCHOR_SECONDS,
            "index_start_block": int(w3.eth.block_number),
            "gateway_port": gateway_port,
        }
    )
    admin_key, running.server_thread = _serve(stack, settings, listener, gateway_url)
    _step(err, f"[bold]3.[/] gateway listening at {gateway_url} (SQLite {home / DB_FILE})")

    with httpx.Client(base_url=gateway_url, timeout=300) as client:
        api = _Api(client)
        orgs: dict[str, dict[str, Any]] = {}
        for slot, name, role, recordation in DEMO_ORGS:
            orgs[slot] = api.post(
                "/v1/organizations",
                admin_key,
                {"name": name, "role": role, "recordation": recordation},
                expect=(201,),
            )
            failed = [w for w in orgs[slot]["writes"] if w["status"] != "done"]
            if failed:
                raise UpError(f"setting up {name} on chain failed: {failed}")
        holder, officer = orgs["rights_holder"], orgs["officer"]
        # The demo auditor reads every holder's records (the admin's grant).
        api.put(f"/v1/organizations/{orgs['auditor']['id']}/grants", admin_key, {"all": True})
        # The registry admin binds the demo GTIN to the holder (its recordation) first: only
        # the holder a GTIN is bound to registers batches of it.
        binding = api.post(
            "/v1/gtin-bindings",
            admin_key,
            {"gtin": DEMO_GTIN, "organizationId": holder["id"]},
            expect=(202,),
        )
        if binding["write"]["status"] != "done":
            raise UpError(f"binding GTIN {DEMO_GTIN} on chain failed: {binding['write']}")
        _step(
            err,
            f"[bold]4.[/] organizations: rights holder {holder['address']} (signer "
            f"{holder['signer']}), customs agency {officer['address']}, auditor (read-only)",
        )
        demo_users = _demo_users(
            api,
            {
                "admin": admin_key,
                "rights_holder": holder["apiKey"],
                "officer": officer["apiKey"],
                "auditor": orgs["auditor"]["apiKey"],
            },
        )
        _step(err, f"[bold]4b.[/] demo users: {', '.join(u['email'] for u in demo_users.values())}")
        batch = _enroll_demo_batch(api, holder["apiKey"], admin_key, items)
        sample_serial, sample_tag = _first_tag(api, holder["apiKey"], batch["batchId"])
        _step(
            err,
            f"[bold]5.[/] enrolled {batch['count']:,} items in batch {batch['batchId'][:18]}…, "
            f"tx {str(batch['txHash'])[:18]}… in block {batch['block']}, indexed",
        )
        guide = _publish_demo_guide(api, holder["apiKey"], officer["apiKey"])
        _step(
            err,
            f"[bold]5b.[/] published the product guide {guide} (officers see it with a verdict)",
        )

    info = running.info = {
        "gateway_url": gateway_url,
        "docs_url": gateway_url + "/docs",
        "rpc_url": node.url,
        "chain_id": chain_id,
        "registry": registry.address,
        "database_url": database_url,
        # The key trust bundles are signed with: pin it on scanners (`borderledger bundle fetch
        # --pin`, `scan --offline --gateway-key`).
        "gateway_key": key_description(
            signing_key(settings.secret_key, settings.bundle_signing_key)
        ),
        "api_keys": {
            "admin": admin_key,
            "rights_holder": holder["apiKey"],
            "officer": officer["apiKey"],
            "auditor": orgs["auditor"]["apiKey"],
        },
        # One person per role, for the pages (sign in at login_url).
        "login_url": gateway_url + "/login",
        "users": demo_users,
        "organizations": {
            "admin": {"name": "Registry admin", "role": "admin", "address": admin.address},
            **{
                slot: {
                    "id": org["id"],
                    "name": org["name"],
                    "role": org["role"],
                    "address": org["address"],
                    **({"signer": org["signer"]} if org["signer"] else {}),
                }
                for slot, org in orgs.items()
            },
        },
        "demo_batch": {
            "batch_id": batch["batchId"],
            "gtin": batch["gtin"],
            "lot": batch["lot"],
            "expiry": batch["expiry"],
            "count": batch["count"],
            "root": batch["root"],
            "tx_hash": batch["txHash"],
            "block": batch["block"],
        },
        "sample_serial": sample_serial,
        "sample_tag": sample_tag,
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write_private(home / DEV_FILE, json.dumps(info, indent=2).encode() + b"\n")
    stack.callback((home / DEV_FILE).unlink, missing_ok=True)
    _print_summary(info, home / DEV_FILE, time.perf_counter() - started, out)
    # Requests from here on are the user's: show them (uvicorn's access log).
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)


def _serve(
    stack: contextlib.ExitStack, settings: Settings, listener: socket.socket, url: str
) -> tuple[str, threading.Thread]:
    """Create the gateway and its admin organization, and serve it from a uvicorn thread."""
    import uvicorn

    from api.gateway import Gateway
    from api.main import create_app
    from api.orgs import create_dev_admin

    gateway = Gateway.from_settings(settings)
    stack.callback(gateway.engine.dispose)
    stack.callback(gateway.stop)  # the app does not own a gateway it is given
    admin_key = create_dev_admin(gateway.engine, settings.secret_key)
    app = create_app(gateway, settings, background=True)
    config = uvicorn.Config(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    # Not the main thread: uvicorn leaves signal handling to us.
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="uvicorn", daemon=True
    )

    def shutdown() -> None:
        server.should_exit = True
        if thread.is_alive():
            thread.join(timeout=15)

    stack.callback(shutdown)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive():
            raise UpError(f"the gateway failed to start on {url} (see the log above)")
        if time.monotonic() > deadline:
            raise UpError(f"the gateway did not start on {url} within 60 s")
        time.sleep(0.05)
    return admin_key, thread


#: The demo person of each dev.json slot: their role inside the organization and name.
DEMO_USERS = {
    "officer": ("officer", "Olivia Officer"),
    "rights_holder": ("analyst", "Ravi Analyst"),
    "auditor": ("auditor", "Aude Auditor"),
    "admin": ("admin", "Ada Admin"),
}


def _demo_users(api: _Api, keys: dict[str, str]) -> dict[str, dict[str, str]]:
    """One signed-up user per role, made as a real one is: invited through POST /v1/users
    with the organization's key, then the invitation accepted with a random password."""
    out = {}
    for slot, (role, name) in DEMO_USERS.items():
        email = f"{slot.replace('_', '-')}@demo.borderledger.example"
        password = secrets.token_urlsafe(12)
        invitation = api.post(
            "/v1/users", keys[slot], {"email": email, "name": name, "role": role}, expect=(201,)
        )
        api.post(
            "/v1/invitations/accept",
            keys[slot],
            {"token": invitation["token"], "password": password},
            expect=(200,),
        )
        out[slot] = {"email": email, "password": password}
    return out


def _enroll_demo_batch(api: _Api, holder_key: str, admin_key: str, items: int) -> dict[str, Any]:
    """Enroll random serials (as the EU medicines system requires, so a valid serial cannot be
    guessed) and wait until the gateway's indexer has the batch, so verification is ready."""
    serials: set[str] = set()
    while len(serials) < items:
        serials.add("".join(secrets.choice(_SERIAL_ALPHABET) for _ in range(12)))
    lot = "DEMO" + secrets.token_hex(3).upper()
    body = {"gtin": DEMO_GTIN, "lot": lot, "serials": sorted(serials), "expiry": "281231"}
    batch = api.post("/v1/batches", holder_key, body, expect=(201, 202))
    if batch.get("jobId"):  # a large batch: enrolled by a background job
        job = api.poll(
            f"/v1/jobs/{batch['jobId']}",
            holder_key,
            lambda j: j["status"] in ("done", "failed"),
            f"enrollment job {batch['jobId']}",
            timeout=3600,
        )
        if job["status"] != "done":
            raise UpError(f"enrolling the demo batch failed: {job['error']}")
        batch = job["result"]
    if batch["registration"] != "done":
        raise UpError(f"registering the demo batch on chain failed: {batch.get('error')}")
    indexed: dict[str, Any] = api.poll(
        f"/v1/batches/{batch['batchId']}",
        admin_key,
        lambda b: b.get("status") is not None,
        "the indexer to pick up the demo batch",
    )
    return indexed


def _publish_demo_guide(api: _Api, holder_key: str, officer_key: str) -> str:
    """The demo product's identification guide, written by the holder and published by the
    customs agency (docs/guides.md), so an officer's verdict carries its essentials."""
    body = {
        "gtin": DEMO_GTIN,
        "brand": "Demo Brand",
        "name": "Demo product",
        "category": "pharmaceuticals_personal_care",
        "features": [
            {"kind": "hologram", "description": "a silver hologram over the cap"},
            {
                "kind": "serial_format",
                "description": "12 letters and digits after 21 in the QR tag",
            },
        ],
        "msrpCents": 2500,
        "currency": "USD",
        "contacts": [
            {"kind": "legal", "name": "Demo legal", "email": "legal@demo.borderledger.example"}
        ],
        "recordations": [
            {"kind": "cbp_recordation", "number": "TMK DEMO-1", "expires": "2099-12-31"}
        ],
    }
    guide_id = str(api.post("/v1/guides", holder_key, body, expect=(200, 201))["guideId"])
    api.post(f"/v1/guides/{guide_id}/submit", holder_key, {}, expect=(200,))
    api.post(f"/v1/guides/{guide_id}/review", officer_key, {}, expect=(200,))
    api.post(f"/v1/guides/{guide_id}/publish", officer_key, {}, expect=(200,))
    return guide_id


def _first_tag(api: _Api, holder_key: str, batch_id: str) -> tuple[str, str]:
    lines = api.get_text(f"/v1/batches/{batch_id}/tags", holder_key).splitlines()
    header = lines[0].split(",")
    row = dict(zip(header, lines[1].split(","), strict=True))
    return row["serial"], row["uri"]


class _Api:
    """The few gateway calls `up` makes, each failing with one clear line."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def _send(
        self, method: str, path: str, key: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        """One call; a `429` is waited out (its `Retry-After`, a few times): `up` makes its
        demo data in a burst, under the same rate limits as every other caller."""
        for _ in range(30):
            response = self.client.request(method, path, json=body, headers=_auth(key))
            if response.status_code != 429:
                return response
            time.sleep(min(float(response.headers.get("Retry-After", "1") or 1), 10.0))
        return response

    def _check(self, response: httpx.Response, expect: tuple[int, ...]) -> None:
        if response.status_code not in expect:
            raise UpError(
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code}: {response.text[:500]}"
            )

    def post(
        self, path: str, key: str, body: dict[str, Any], expect: tuple[int, ...]
    ) -> dict[str, Any]:
        response = self._send("POST", path, key, body)
        self._check(response, expect)
        data: dict[str, Any] = response.json()
        return data

    def put(self, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._send("PUT", path, key, body)
        self._check(response, (200,))
        data: dict[str, Any] = response.json()
        return data

    def get(self, path: str, key: str) -> dict[str, Any]:
        response = self._send("GET", path, key)
        self._check(response, (200,))
        data: dict[str, Any] = response.json()
        return data

    def get_text(self, path: str, key: str) -> str:
        response = self._send("GET", path, key)
        self._check(response, (200,))
        return response.text

    def poll(
        self,
        path: str,
        key: str,
        done: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = 600,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            data = self.get(path, key)
            if done(data):
                return data
            if time.monotonic() > deadline:
                raise UpError(f"gave up waiting for {what} after {timeout:.0f} s")
            time.sleep(0.1)


def _step(err: Console, text: str) -> None:
    err.print(text, soft_wrap=True, highlight=False)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---------------------------------------------------------------------------- ports & files


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket for the gateway (uvicorn serves on it); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(
        family, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )  # TCP_NODELAY on accepted sockets
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise _port_error(host, port, "--port", exc) from None
    sock.set_inheritable(False)
    return sock


def _check_free(host: str, port: int, option: str) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise _port_error(host, port, option, exc) from None


def _port_error(host: str, port: int, option: str, exc: OSError) -> UpError:
    if exc.errno == errno.EADDRINUSE:
        return UpError(
            f"port {port} on {host} is already in use: stop what is listening there, or "
            f"choose another with {option} ({option} 0 picks a free port)"
        )
    return UpError(f"cannot listen on {host}:{port} ({option}): {exc.strerror or exc}")


def _refuse_second_instance(dev_file: Path) -> None:
    """Two `up`s on one home would wipe each other's database: refuse the second."""
    try:
        pid = int(json.loads(dev_file.read_text()).get("pid", 0))
    except (OSError, ValueError, AttributeError):
        return
    if pid <= 0 or pid == os.getpid():
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # left behind by a run that was killed: stale
    except PermissionError:
        pass
    raise UpError(
        f"`borderledger up` is already running (pid {pid}, see {dev_file}): stop it first, "
        "or give this one its own BORDERLEDGER_HOME"
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically, readable by the owner only (the file holds API keys)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


# ---------------------------------------------------------------------------- summary


def _print_summary(info: dict[str, Any], dev_file: Path, seconds: float, out: Console) -> None:
    keys = info["api_keys"]
    batch = info["demo_batch"]
    table = Table(title=f"BorderLedger is up ({seconds:.1f} s)", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("gateway", info["gateway_url"])
    table.add_row("API docs", info["docs_url"])
    table.add_row("chain", f"{info['rpc_url']} (Anvil, chain id {info['chain_id']})")
    table.add_row("registry", info["registry"])
    table.add_row("database", info["database_url"])
    table.add_row(
        "demo batch",
        f"{batch['count']:,} items, GTIN {batch['gtin']} lot {batch['lot']}, {batch['batch_id']}",
    )
    table.add_row("sample tag", info["sample_tag"])
    for role in ("admin", "rights_holder", "officer", "auditor"):
        table.add_row(f"API key ({role})", keys[role])
    table.add_row("sign in", info["login_url"])
    for role, user in info["users"].items():
        table.add_row(f"user ({role})", f"{user['email']}  password {user['password']}")
    table.add_row("client config", str(dev_file))
    out.print(table)
    body = json.dumps({"tag": info["sample_tag"], "location": {"unlocode": "NLRTM"}})
    out.print("Verify the sample tag as the customs officer:", style="bold")
    for line in _curl(info["gateway_url"], keys["officer"], body):
        out.print(line, soft_wrap=True, markup=False, highlight=False)
    out.print(
        f"Everything a client needs is in [bold]{dev_file}[/]. Ctrl-C stops the gateway and the chain."
    )


def _curl(url: str, key: str, body: str) -> Iterator[str]:
    yield f"curl -s -X POST {url}/v1/verify \\"
    yield f"  -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\"
    yield f"  -d '{body}'"


__all__ = ["run_up"]
