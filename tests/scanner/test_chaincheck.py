"""`borderledger scan --verify-chain`: the scanner checks the gateway's answers on chain, and a
gateway whose answers were tampered with (a database row edited, an intercepting proxy
rewriting the proof or the verdict) is caught: disagreement reported, exit 4."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session, select

from api.models import IndexedBatch, IndexedItemStatus
from ledger.digital_link import DigitalLink
from ledger.tags import TagDomain, TagSigner
from tests.scanner.conftest import SERIALS, Served
from tests.scanner.test_bundles import cli, last_json
from tests.stack import GTIN

Rewrite = Callable[[dict[str, Any]], dict[str, Any]]


@contextmanager
def intercepting_proxy(upstream: str, rewrite: Rewrite) -> Iterator[str]:
    """An HTTP proxy in front of the gateway that rewrites every /v1/verify answer."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            reply = httpx.post(upstream + self.path, content=body, headers=headers, timeout=30)
            data = reply.content
            if self.path == "/v1/verify" and reply.status_code == 200:
                data = json.dumps(rewrite(reply.json())).encode()
            self.send_response(reply.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def scan(
    served: Served, home: Path, *args: str, url: str | None = None
) -> tuple[int, dict[str, Any]]:
    proc = cli(
        home,
        "scan",
        "--gateway",
        url or served.url,
        "--api-key",
        served.officer_key,
        "--verify-chain",
        served.stack.node.url,
        *args,
        "--json",
    )
    return proc.returncode, last_json(proc)


def test_honest_gateway_agrees_with_the_chain(served: Served, tmp_path: Path) -> None:
    stack = served.stack
    forged = DigitalLink(GTIN, "L1", SERIALS[1], b"\x01" * 64 + b"\x1b").to_uri()
    code, report = scan(
        served,
        tmp_path,
        "--code",
        served.tags[SERIALS[0]],
        "--code",
        forged,
        "--code",
        DigitalLink(GTIN, "L9", SERIALS[0]).to_uri(),
        "--code",
        DigitalLink("00000000000017", "L1", SERIALS[0]).to_uri(),
        "--serial",
        GTIN,
        SERIALS[2],
        "--registry",
        stack.registry.address,
    )
    assert code == 3, report  # a suspect among them, and no disagreement
    # typed entry comes first, then the --code entries in order
    typed, genuine, forged_check, lot_unknown, gtin_unknown = (
        c["chainCheck"] for c in report["codes"]
    )
    for check in (typed, genuine, forged_check, lot_unknown, gtin_unknown):
        assert check["agrees"] is True and check["error"] is None, check
    assert genuine["registrySource"] == "--registry"
    for name in ("chainId", "batch registered", "root", "membership", "signature", "status"):
        assert name in genuine["checked"], genuine
    assert "signature" in forged_check["checked"]
    assert "batch unregistered" in lot_unknown["checked"]
    assert "gtin unregistered" in gtin_unknown["checked"]
    assert "membership" in typed["checked"] and "signature" not in typed["checked"]
    # without --registry the proof's address is used, and the report says so
    code, report = scan(served, tmp_path, "--code", served.tags[SERIALS[0]])
    assert code == 0, report
    check = report["codes"][0]["chainCheck"]
    assert check["agrees"] and check["registrySource"].startswith("the gateway's proof")


def test_edited_database_rows_are_caught(served: Served, tmp_path: Path) -> None:
    stack = served.stack
    engine = stack.gateway.engine
    # the chain says SN0003 is stolen ...
    r = stack.client.post(
        f"/v1/batches/{served.batch['batchId']}/status",
        json={"status": "stolen", "serial": SERIALS[3]},
        headers=stack.headers(served.holder_key),
    )
    assert r.status_code == 202, r.text
    stack.sync()
    # ... but someone deleted the index row and changed the batch's root in the gateway's DB
    with Session(engine) as session:
        row = session.exec(select(IndexedItemStatus)).one()
        session.delete(row)
        batch = session.get(IndexedBatch, served.batch["batchId"])
        assert batch is not None
        batch.root = "0x" + "ab" * 32
        session.add(batch)
        session.commit()
    stack.gateway.catalog.invalidate()
    assert stack.verify(served.officer_key, tag=served.tags[SERIALS[3]])["verdict"] == "GENUINE"

    code, report = scan(served, tmp_path, "--code", served.tags[SERIALS[3]])
    assert code == 4, report
    (entry,) = report["codes"]
    assert entry["verdict"] == "GENUINE"  # what the gateway said ...
    check = entry["chainCheck"]
    assert not check["agrees"]
    found = {d["check"]: d for d in check["disagreements"]}  # ... and what the chain says
    assert found["status"] == {"check": "status", "gateway": "active", "chain": "stolen"}
    assert found["root"]["gateway"] == "0x" + "ab" * 32
    assert found["root"]["chain"] == stack.registry.get_batch(served.batch["batchId"]).root
    assert report["exit_code"] == 4


def test_an_intercepting_proxy_is_caught(served: Served, tmp_path: Path) -> None:
    stack = served.stack
    domain = TagDomain(stack.registry.chain_id, stack.registry.address)
    forged_sig = TagSigner(b"\x07" * 32, domain).sign(GTIN, SERIALS[4], "L1")
    forged = DigitalLink(GTIN, "L1", SERIALS[4], forged_sig).to_uri()

    def launder(answer: dict[str, Any]) -> dict[str, Any]:
        """Turn a suspect into GENUINE, and corrupt one node of any Merkle proof."""
        answer["verdict"] = "GENUINE"
        answer["summary"] = "Genuine: signed by the rights holder and registered on chain."
        answer["reasons"] = ["SERIAL_IN_BATCH", "SIGNATURE_VALID"]
        proof = answer.get("proof") or {}
        if proof.get("merkleProof"):
            first = proof["merkleProof"][0]
            proof["merkleProof"][0] = first[:-1] + ("0" if first[-1] != "0" else "1")
        return answer

    with intercepting_proxy(served.url, launder) as url:
        code, report = scan(
            served,
            tmp_path,
            "--code",
            forged,
            "--code",
            served.tags[SERIALS[5]],
            "--registry",
            stack.registry.address,
            url=url,
        )
    assert code == 4, report
    forged_check, genuine_check = (c["chainCheck"] for c in report["codes"])
    assert [c["verdict"] for c in report["codes"]] == ["GENUINE", "GENUINE"]
    found = {d["check"]: d for d in forged_check["disagreements"]}
    assert found["signature valid"] == {
        "check": "signature valid",
        "gateway": True,
        "chain": False,
    }
    assert found["serial in batch"]["chain"] is False
    found = {d["check"]: d for d in genuine_check["disagreements"]}
    assert set(found) == {"serial in batch"}, found  # the genuine tag: only the proof was bent

    # Rich output names the disagreement
    with intercepting_proxy(served.url, launder) as url:
        proc = cli(
            tmp_path,
            "scan",
            "--gateway",
            url,
            "--api-key",
            served.officer_key,
            "--verify-chain",
            stack.node.url,
            "--code",
            forged,
        )
    assert proc.returncode == 4
    assert (
        "CHAIN DISAGREES" in proc.stdout and "the chain disagrees with the gateway" in proc.stdout
    )


def test_unreachable_rpc_is_reported_not_crashed(served: Served, tmp_path: Path) -> None:
    proc = cli(
        tmp_path,
        "scan",
        "--gateway",
        served.url,
        "--api-key",
        served.officer_key,
        "--verify-chain",
        "http://127.0.0.1:9",
        "--code",
        served.tags[SERIALS[0]],
        "--json",
    )
    report = last_json(proc)
    assert proc.returncode == 1, proc.stderr  # not checked is not cleared, nor a disagreement
    check = report["codes"][0]["chainCheck"]
    assert check["agrees"] is None and not check["disagreements"]
    assert "cannot" in check["error"] and "Traceback" not in proc.stderr
