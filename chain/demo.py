"""The main job on embedded defaults (`make run`): the whole ledger story on a local chain.

A registry admin accredits a rights holder and a customs agency; the holder registers a
signing key and enrolls a batch of randomised serials (as the EU medicines system requires,
so a valid serial cannot be guessed); then tags are checked on chain: a genuine one, a forged
one signed by an unknown key, and one after the holder reported the item stolen.
"""

from __future__ import annotations

import json
import secrets
import shutil
import string
import time

from eth_account import Account
from rich.console import Console
from rich.table import Table

from chain.check import check_tag_uri, find_item_proof
from chain.contract import RegistryClient, connect
from chain.enroll import enroll_batch
from chain.node import LocalNode, dev_private_key
from chain.tx import TransactionSender, write_atomic
from ledger.batch import BatchInput
from ledger.config import Settings
from ledger.digital_link import DigitalLink, parse_digital_link
from ledger.models import Status
from ledger.tags import TagDomain, TagSigner

DEMO_GTIN = "09506000134352"  # GS1's own example GTIN
_SERIAL_ALPHABET = string.ascii_uppercase + string.digits


def run_demo(items: int, node_kind: str, keep_running: bool, out: Console, err: Console) -> None:
    cfg = Settings()
    home = cfg.home / "demo"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    started = time.perf_counter()
    with LocalNode(node_kind) as node:  # type: ignore[arg-type]
        err.print(f"[bold]1.[/] {node_kind} chain started at {node.url}")
        w3 = connect(node.url)
        admin, holder, agency = (Account.from_key(dev_private_key(i)) for i in (0, 1, 2))
        signer_key = dev_private_key(3)

        def sender(account: object) -> TransactionSender:
            return TransactionSender(w3, account, lambda d: None)  # type: ignore[arg-type,return-value]

        registry = RegistryClient.deploy(sender(admin))
        registry.sender._decode_revert = registry.decode_revert  # type: ignore[union-attr]
        err.print(f"[bold]2.[/] registry deployed at {registry.address}")
        registry.accredit_rights_holder(holder.address, "Acme Pharma GmbH", "CBP TMK 19-00123")
        registry.accredit_customs_agency(agency.address, "Port of Rotterdam Customs")
        registry.bind_gtin(DEMO_GTIN, holder.address)
        as_holder = registry.with_sender(TransactionSender(w3, holder, registry.decode_revert))
        signer = TagSigner(signer_key, TagDomain(registry.chain_id, registry.address))
        as_holder.add_signer(signer.address)
        err.print(
            f"[bold]3.[/] accredited holder {holder.address}, agency {agency.address}, signer {signer.address}"
        )

        serials = sorted(
            {"".join(secrets.choice(_SERIAL_ALPHABET) for _ in range(12)) for _ in range(items)}
        )
        batch = BatchInput.create(
            DEMO_GTIN, "DEMO" + secrets.token_hex(3).upper(), serials, "281231"
        )
        result = enroll_batch(
            batch,
            as_holder,
            signer_key,
            home / "batch",
            holder_key=bytes(holder.key),
            host=cfg.resolver_host,
            qr=items <= 5000,
        )
        err.print(
            f"[bold]4.[/] enrolled {result.item_count} items, root {result.root[:18]}…, "
            f"tx {result.tx_hash[:18]}… in block {result.block_number} ({result.gas_used} gas)"
        )

        uri = (home / "batch" / "tags.csv").read_text().splitlines()[1].rsplit(",", 1)[1]
        genuine = check_tag_uri(registry, uri, home / "batch")
        link = parse_digital_link(uri)
        forger = TagSigner(secrets.token_bytes(32), TagDomain(registry.chain_id, registry.address))
        forged_uri = DigitalLink(
            link.gtin, link.lot, "FAKE0001", forger.sign(link.gtin, "FAKE0001", link.lot)
        ).to_uri()
        forged = check_tag_uri(registry, forged_uri, home / "batch")
        stolen_serial = serials[-1]
        salt, proof = find_item_proof(home / "batch", link.gtin, stolen_serial) or (b"", [])
        as_holder.set_item_status(link.gtin, link.lot, stolen_serial, salt, proof, Status.STOLEN)
        stolen_uri = DigitalLink(
            link.gtin, link.lot, stolen_serial, signer.sign(link.gtin, stolen_serial, link.lot)
        ).to_uri()
        stolen = check_tag_uri(registry, stolen_uri, home / "batch")
        err.print("[bold]5.[/] checked tags on chain")

        table = Table(title="Tag checks against the chain")
        for column in ("tag", "verdict", "why"):
            table.add_column(column)
        for name, report in (
            ("genuine tag", genuine),
            ("forged tag", forged),
            ("stolen item", stolen),
        ):
            verdict = "[green]GENUINE[/]" if report.genuine else "[red]POTENTIAL SUSPECT[/]"
            table.add_row(
                name,
                verdict,
                "signature, key, proof and status all check out"
                if report.genuine
                else "; ".join(report.details),
            )
        out.print(table)
        summary = {
            "rpc_url": node.url,
            "chain_id": registry.chain_id,
            "registry": registry.address,
            "batch": result.to_json(),
            "checks": {
                "genuine": genuine.to_json(),
                "forged": forged.to_json(),
                "stolen": stolen.to_json(),
            },
            "seconds": round(time.perf_counter() - started, 2),
        }
        write_atomic(home / "summary.json", json.dumps(summary, indent=2, default=str).encode())
        out.print(
            f"tags, QR codes and proofs: [bold]{home / 'batch'}[/]; summary: [bold]{home / 'summary.json'}[/]"
        )
        out.print_json(
            json.dumps(
                {
                    "batchId": result.batch_id,
                    "root": result.root,
                    "count": result.item_count,
                    "txHash": result.tx_hash,
                    "genuine": genuine.genuine,
                    "forgedDetected": not forged.genuine,
                    "stolenDetected": not stolen.genuine,
                }
            )
        )
        if keep_running:
            err.print(f"chain still running at {node.url}; Ctrl-C stops it")
            try:
                while node.process is not None and node.process.poll() is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                err.print("stopping")


__all__ = ["run_demo"]
