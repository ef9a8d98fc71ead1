"""`borderledger bench enroll`: gas per item and end-to-end enrollment speed.

Gas: batches of 1, 100, 10,000 and 1,000,000 items registered as one Merkle root each, side by
side on the same node with the "one NFT per product" baseline: an OpenZeppelin ERC-721 mint
per item, one transaction each (its cost per item is flat, so 1, 100 and 1,000 suffice).

Speed: enrollment of 1,000,000 items end to end, as the CLI does it: read and validate the
CSV, derive salts, compute leaves, sign a tag per item on every core, build the tree, write
tags.csv and tree.bin, register the root and wait for the receipt. QR images are not part of
it: rendering is ~2 ms per code in pure Python and is done by the label printer's pipeline.
"""

from __future__ import annotations

import csv
import os
import platform
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from chain.contract import RegistryClient, connect, deploy, load_artifact
from chain.enroll import enroll_batch
from chain.node import LocalNode, dev_private_key
from chain.tx import TransactionSender
from ledger.batch import BatchInput, read_batch_csv
from ledger.issuance import default_workers

BENCH_GTIN = "09506000134352"


def _serials(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{i:09d}" for i in range(n)]


def _baseline_gas(w3: Any, minter: LocalAccount, sizes: list[int]) -> dict[str, float]:
    """Gas per item of minting one ERC-721 per item, one transaction per mint."""
    sender = TransactionSender(w3, minter, lambda d: None)  # type: ignore[arg-type,return-value]
    address, _ = deploy(sender, "ProductNFT")
    nft = w3.eth.contract(address=address, abi=load_artifact("ProductNFT")["abi"])
    result: dict[str, float] = {}
    token = 1
    for size in sizes:
        nonce = w3.eth.get_transaction_count(minter.address, "pending")
        hashes = []
        for i in range(size):
            tx = nft.functions.mint(minter.address, token).build_transaction(
                {"from": minter.address, "nonce": nonce + i, "gas": 120_000}
            )
            hashes.append(w3.eth.send_raw_transaction(minter.sign_transaction(tx).raw_transaction))
            token += 1
        total = sum(int(w3.eth.wait_for_transaction_receipt(h)["gasUsed"]) for h in hashes)
        result[str(size)] = round(total / size, 2)
    return result


def run_enroll_bench(
    enroll_items: int = 1_000_000,
    gas_sizes: tuple[int, ...] = (1, 100, 10_000),
    baseline_sizes: tuple[int, ...] = (1, 100, 1000),
    workers: int | None = None,
    node_kind: str = "anvil",
) -> dict[str, Any]:
    workers = workers or default_workers()
    with LocalNode(node_kind) as node, tempfile.TemporaryDirectory() as tmp:  # type: ignore[arg-type]
        w3 = connect(node.url)
        admin, holder = Account.from_key(dev_private_key(0)), Account.from_key(dev_private_key(1))
        signer_key = dev_private_key(2)
        registry = RegistryClient.deploy(TransactionSender(w3, admin, lambda d: None))  # type: ignore[arg-type,return-value]
        registry.sender._decode_revert = registry.decode_revert  # type: ignore[union-attr]
        registry.accredit_rights_holder(holder.address, "Bench Brand", "BENCH-1")
        registry.bind_gtin(BENCH_GTIN, holder.address)
        as_holder = registry.with_sender(TransactionSender(w3, holder, registry.decode_revert))
        signer = Account.from_key(signer_key)
        as_holder.add_signer(signer.address)
        work = Path(tmp)

        # The first lot is measured separately (cold storage of the holder's records), then
        # every size is a later lot, the usual case.
        first = enroll_batch(
            BatchInput.create(BENCH_GTIN, "CLAIM", ["C1"]),
            as_holder,
            signer_key,
            work / "claim",
            batch_secret=secrets.token_bytes(32),
            qr=False,
            workers=1,
        )
        gas: dict[str, float] = {}
        gas_total: dict[str, int] = {}
        for size in gas_sizes:
            batch = BatchInput.create(BENCH_GTIN, f"GAS{size}", _serials(size, "G"))
            done = enroll_batch(
                batch,
                as_holder,
                signer_key,
                work / f"gas{size}",
                batch_secret=secrets.token_bytes(32),
                qr=False,
                workers=workers,
            )
            gas_total[str(size)] = int(done.gas_used or 0)
            gas[str(size)] = round(gas_total[str(size)] / size, 6)

        csv_path = work / "serials.csv"
        with csv_path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["gtin", "lot", "serial"])
            writer.writerows((BENCH_GTIN, "BIG", s) for s in _serials(enroll_items, "S"))
        started = time.perf_counter()
        clock = time.perf_counter()
        big_batch = read_batch_csv(csv_path)
        read_seconds = time.perf_counter() - clock
        big = enroll_batch(
            big_batch,
            as_holder,
            signer_key,
            work / "big",
            batch_secret=secrets.token_bytes(32),
            qr=False,
            workers=workers,
        )
        elapsed = time.perf_counter() - started
        gas_total[str(enroll_items)] = int(big.gas_used or 0)
        gas[str(enroll_items)] = round(gas_total[str(enroll_items)] / enroll_items, 6)
        tags_bytes = (work / "big" / "tags.csv").stat().st_size
        baseline = _baseline_gas(w3, admin, list(baseline_sizes))

    # The baseline's cost per item is flat, so its largest run stands for every batch size.
    flat = baseline[str(max(baseline_sizes))]
    ratio = {k: round(flat / v, 1) for k, v in gas.items()}
    return {
        "benchmark": "enroll",
        "node": node_kind,
        "machine": {
            "cpus": os.cpu_count(),
            "workers": workers,
            "python": platform.python_version(),
        },
        "gas_per_item": gas,
        "gas_per_batch": gas_total,
        "first_lot_of_new_gtin_gas": first.gas_used,
        "baseline": "OpenZeppelin ERC-721 mint per item, one transaction each",
        "baseline_gas_per_item": baseline,
        "baseline_over_borderledger_gas_ratio": ratio,
        "first_lot_of_new_gtin_gas_per_item_at_max": round((first.gas_used or 0) / enroll_items, 6),
        "enroll_items": enroll_items,
        "enroll_1m_seconds": round(elapsed, 2),
        "items_per_second": round(enroll_items / elapsed),
        "enroll_seconds_breakdown": {
            "read_and_validate_csv": round(read_seconds, 2),
            **big.timings,
        },
        "tags_csv_bytes": tags_bytes,
    }
