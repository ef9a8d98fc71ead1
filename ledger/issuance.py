"""Computing a batch's leaves and signed tags, in parallel over the machine's cores.

This is enrollment's hot path: per item one HMAC (salt), two keccaks (leaf), three keccaks
(tag digest; the GTIN and lot hashes are the same for the whole batch and computed once) and
one secp256k1 signature, the most expensive step. Work is cut into chunks that worker
processes (from a fork server: the job once per worker, then serials and results are
pickled) turn into leaf hashes and ready-to-write CSV lines.
"""

from __future__ import annotations

import hashlib
import hmac
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import coincurve

from ledger.digital_link import encode_signature
from ledger.hashing import keccak256
from ledger.tags import TAG_TYPEHASH

CHUNK_SIZE = 10_000
TAGS_CSV_HEADER = "gtin,lot,serial,salt,uri\n"


@dataclass(frozen=True, slots=True)
class TaggingJob:
    """Everything a worker needs to tag items of one batch."""

    gtin: str
    lot: str
    batch_secret: bytes
    signer_key: bytes
    domain_separator: bytes
    host: str


@dataclass(frozen=True, slots=True)
class TaggedChunk:
    leaves: bytes  # 32 bytes per item, in input order
    csv_lines: str


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def tag_chunk(job: TaggingJob, serials: list[str]) -> TaggedChunk:
    """Leaves and tags.csv lines for `serials`."""
    gtin_bytes = job.gtin.encode()
    gtin_hash, lot_hash = keccak256(gtin_bytes), keccak256(job.lot.encode())
    prefix = b"\x19\x01" + job.domain_separator
    key = coincurve.PrivateKey(job.signer_key)
    secret = job.batch_secret
    # abi.encode(string gtin, string serial, bytes32 salt): head is fixed, tail holds both strings.
    gtin_tail = (14).to_bytes(32, "big") + gtin_bytes + b"\x00" * 18
    head_offsets = (96).to_bytes(32, "big") + (96 + len(gtin_tail)).to_bytes(32, "big")
    uri_base = f"https://{job.host}/01/{job.gtin}/10/{quote(job.lot, safe='')}/21/"
    row_prefix = f"{job.gtin},{_csv_field(job.lot)},"
    leaves = bytearray()
    lines: list[str] = []
    hmac_new, sha256, sign = hmac.new, hashlib.sha256, key.sign_recoverable
    for serial in serials:
        raw = serial.encode()
        salt = hmac_new(secret, gtin_bytes + raw, sha256).digest()
        encoded = (
            head_offsets
            + salt
            + gtin_tail
            + len(raw).to_bytes(32, "big")
            + raw
            + b"\x00" * (-len(raw) % 32)
        )
        leaves += keccak256(keccak256(encoded))
        struct_hash = keccak256(TAG_TYPEHASH + gtin_hash + keccak256(raw) + lot_hash)
        sig = sign(keccak256(prefix + struct_hash), hasher=None)
        signature = sig[:64] + bytes((sig[64] + 27,))
        uri = f"{uri_base}{quote(serial, safe='')}?sig={encode_signature(signature)}"
        lines.append(f"{row_prefix}{_csv_field(serial)},{salt.hex()},{uri}\n")
    return TaggedChunk(bytes(leaves), "".join(lines))


_worker_job: TaggingJob | None = None


def _init_worker(job: TaggingJob) -> None:
    global _worker_job
    _worker_job = job
    # Started for the CLI, which turns SIGTERM into sys.exit: restore the default so that
    # Pool.terminate() ends workers at once instead of raising inside them.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _work(serials: list[str]) -> TaggedChunk:
    assert _worker_job is not None
    return tag_chunk(_worker_job, serials)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def tag_batch(
    job: TaggingJob,
    serials: list[str],
    workers: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> Iterator[TaggedChunk]:
    """Yield tagged chunks in input order; `on_chunk(items)` is called as each one is done."""
    workers = workers or default_workers()
    chunks = [serials[i : i + CHUNK_SIZE] for i in range(0, len(serials), CHUNK_SIZE)]
    if workers == 1 or len(chunks) == 1:
        for chunk in chunks:
            done = tag_chunk(job, chunk)
            if on_chunk:
                on_chunk(len(chunk))
            yield done
        return
    # forkserver, not fork: the gateway tags inside a job runner thread while other threads
    # (the server's, the database driver's, webhook deliveries) may hold locks at the moment
    # of a fork, and a forked child that inherits a held lock hangs for ever (seen once on
    # PostgreSQL: the enrollment stuck mid-batch). The fork server is single-threaded; the
    # job (plain bytes and strings) and the module-level functions pickle.
    context = multiprocessing.get_context("forkserver")
    with context.Pool(workers, initializer=_init_worker, initargs=(job,)) as pool:
        for chunk, done in zip(chunks, pool.imap(_work, chunks), strict=True):
            if on_chunk:
                on_chunk(len(chunk))
            yield done
