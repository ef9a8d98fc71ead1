"""Enrollment through the gateway, for a rights holder organization.

The gateway draws a random batch secret per batch (kept sealed, so it can prove items and
re-issue tags later), signs the tags with the organization's signer key, stores the tree, and
queues the registration in the outbox in the same transaction: an enrollment accepted while
the chain is down is registered when it comes back, and a retried request is recognised by
its batch id and answered with the original result.
"""

from __future__ import annotations

import json
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from api import jobs
from api.bindings import bound_holder
from api.crypto import seal, unseal
from api.detection import normalized_policy
from api.models import (
    BatchTree,
    GatewayBatch,
    IndexedBatch,
    IndexerState,
    Organization,
    PendingWrite,
    WriteStatus,
)
from api.outbox import enqueue
from api.schemas import BatchPublic
from api.services.guides import default_route_policy
from chain.enroll import batch_metadata
from detector import LocationRegistry
from ledger.batch import BatchInput
from ledger.errors import BatchConflict, Conflict, InvalidInput, PermissionDenied
from ledger.hashing import keccak256
from ledger.issuance import CHUNK_SIZE, TaggingJob, tag_batch
from ledger.merkle import MerkleTree
from ledger.models import Status
from ledger.tags import TagDomain

if TYPE_CHECKING:
    from api.gateway import Gateway

#: The job kind of a large enrollment (api.jobs).
ENROLL_JOB = "enroll"


@dataclass
class EnrollOutcome:
    batch: GatewayBatch
    write: PendingWrite
    created: bool


def tagging_job(
    batch: GatewayBatch, org: Organization, secret_key: str, domain: TagDomain, host: str
) -> TaggingJob:
    if org.signer_key_encrypted is None:
        raise PermissionDenied(f"organization {org.name!r} has no signer key")
    return TaggingJob(
        batch.gtin,
        batch.lot,
        unseal(secret_key, batch.secret_encrypted),
        unseal(secret_key, org.signer_key_encrypted),
        domain.separator,
        host,
    )


def serials_of(tree: BatchTree | bytes) -> list[str]:
    """The batch's serials in input order, from its tree row or that row's `serials_z`."""
    packed = tree if isinstance(tree, bytes) else tree.serials_z
    return zlib.decompress(packed).decode().split("\n")


def enroll(
    session: Session,
    org: Organization,
    batch: BatchInput,
    *,
    secret_key: str,
    domain: TagDomain,
    route_policy: dict[str, Any] | None = None,
    registry: LocationRegistry | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    secret: bytes | None = None,
    leaves_of: Callable[[TaggingJob, list[str]], bytes] | None = None,
) -> EnrollOutcome:
    """Build and store the batch and queue its registration; idempotent per (GTIN, lot).
    A route policy is validated (and normalized) against `registry` before anything is stored:
    a bad country or port is refused with `InvalidInput` (422). A job passes the batch secret
    it drew once and `leaves_of`, which reuses the leaves earlier attempts made."""
    assert org.id is not None
    if route_policy is not None:
        route_policy = normalized_policy(registry or LocationRegistry.default(), route_policy)
    if org.signer_key_encrypted is None or org.signer_address is None:
        raise PermissionDenied(f"organization {org.name!r} has no signer key")
    batch_id = "0x" + batch.batch_id.hex()
    on_chain = session.get(IndexedBatch, batch_id)
    refuse_retired(session, on_chain)
    if on_chain is not None and on_chain.holder != org.address:
        raise BatchConflict(
            f"batch {batch.gtin}/{batch.lot} is registered by another rights holder"
        )
    existing = session.get(GatewayBatch, batch_id)
    if existing is not None and existing.organization_id == org.id:
        previous = session.exec(
            select(PendingWrite).where(PendingWrite.idempotency_key == f"register:{batch_id}")
        ).first()
        if previous is not None and previous.status == WriteStatus.FAILED:
            # The chain refused the registration (e.g. the GTIN turned out to be taken): the
            # batch never existed, so forget it and let the holder enroll the lot afresh.
            session.delete(previous)
            tree_row = session.get(BatchTree, batch_id)
            if tree_row is not None:
                session.delete(tree_row)
            session.flush()
            session.delete(existing)
            session.flush()
            existing = None
    if existing is not None:
        if existing.organization_id != org.id:
            raise BatchConflict(f"batch {batch.gtin}/{batch.lot} belongs to another rights holder")
        stored = session.get(BatchTree, batch_id)
        if (
            stored is not None
            and serials_of(stored) == batch.serials
            and existing.expiry == batch.expiry
        ):
            write = enqueue(session, org.id, "register_batch", {}, f"register:{batch_id}")
            return EnrollOutcome(existing, write, False)
        raise Conflict(
            f"batch {batch.gtin}/{batch.lot} was already enrolled with other serials or expiry"
        )
    # A GTIN is the holder's the registry admin bound it to (GtinBound / GtinReassigned), or
    # whose company prefix it bound (CompanyPrefixBound; the GTIN's own binding wins); the
    # chain has the last word (a registration under a GTIN bound to nobody, or bound since,
    # fails there with the owner named), this refuses what the index already knows.
    binding = bound_holder(session, batch.gtin)
    if binding is not None and binding.holder != org.address:
        raise PermissionDenied(binding.refusal(batch.gtin))
    if binding is None:
        # Not bound in the index yet: a batch of another holder (registered, or enrolled
        # here and queued) shows the GTIN is theirs all the same.
        owner = session.exec(
            select(IndexedBatch.holder).where(IndexedBatch.gtin == batch.gtin).limit(1)
        ).first()
        if owner is not None and owner != org.address:
            raise PermissionDenied(f"GTIN {batch.gtin} belongs to another rights holder ({owner})")
        enrolled_by_other = session.exec(
            select(GatewayBatch.batch_id)
            .where(GatewayBatch.gtin == batch.gtin, GatewayBatch.organization_id != org.id)
            .limit(1)
        ).first()
        if enrolled_by_other is not None:
            raise PermissionDenied(f"GTIN {batch.gtin} belongs to another rights holder")

    if route_policy is None:
        # A batch enrolled without a policy follows the holder's published guide of the
        # product: its authorised markets, usual routes and importers (docs/guides.md).
        default = default_route_policy(session, org.id, batch.gtin)
        if default is not None:
            route_policy = normalized_policy(registry or LocationRegistry.default(), default)
    secret = secret or secrets.token_bytes(32)
    record = GatewayBatch(
        batch_id=batch_id,
        organization_id=org.id,
        gtin=batch.gtin,
        lot=batch.lot,
        expiry=batch.expiry,
        item_count=len(batch),
        root="",
        metadata_hash="",
        signer=org.signer_address,
        secret_encrypted=seal(secret_key, secret),
        route_policy=route_policy,
    )
    job = TaggingJob(
        batch.gtin,
        batch.lot,
        secret,
        unseal(secret_key, org.signer_key_encrypted),
        domain.separator,
        "x",
    )
    leaves: bytes | bytearray
    if leaves_of is not None:
        leaves = leaves_of(job, batch.serials)
    else:
        leaves = bytearray()
        for chunk in tag_batch(job, batch.serials, workers, progress):
            leaves += chunk.leaves
    tree = MerkleTree.from_leaves([bytes(leaves[i : i + 32]) for i in range(0, len(leaves), 32)])
    metadata = batch_metadata(batch, org.signer_address, tree.root)
    record.root = "0x" + tree.root.hex()
    record.metadata_hash = "0x" + keccak256(metadata).hex()
    if on_chain is not None and on_chain.root != record.root:
        raise BatchConflict(
            f"batch {batch.gtin}/{batch.lot} is registered on chain with another root"
        )
    session.add(record)
    session.flush()
    session.add(
        BatchTree(
            batch_id=batch_id,
            nodes=tree.nodes,
            serials_z=zlib.compress("\n".join(batch.serials).encode(), 1),
        )
    )
    write = enqueue(
        session,
        org.id,
        "register_batch",
        {
            "batch_id": batch_id,
            "gtin": batch.gtin,
            "lot": batch.lot,
            "root": record.root,
            "item_count": len(batch),
            "metadata_hash": record.metadata_hash,
        },
        f"register:{batch_id}",
    )
    return EnrollOutcome(record, write, True)


def check_batch_size(count: int) -> None:
    if count > 10_000_000:
        raise InvalidInput(f"a batch holds at most 10,000,000 items; got {count}")


def domain_of(gateway: Gateway, batch_id: str | None = None) -> TagDomain:
    """The EIP-712 domain tags are signed under: this chain and the registry holding the
    batch — the current one, or for a batch registered before an upgrade the registry it was
    registered on (its tags were signed for that one and still are)."""
    snap = gateway.catalog.snapshot()
    chain_id = snap.chain_id or int(gateway.indexer.w3.eth.chain_id)
    held = snap.batches.get(batch_id) if batch_id is not None else None
    return TagDomain(
        chain_id, held.registry_address if held and held.registry_address else gateway.registry
    )


def refuse_retired(session: Session, indexed: IndexedBatch | None) -> None:
    """The gateway writes to the current registry only: a batch held by a registry an
    upgrade replaced is neither enrolled again nor changed here (its holder changes its
    statuses on that registry, e.g. `borderledger status`, and the index follows)."""
    if indexed is None or not indexed.registry_address:
        return
    state = session.get(IndexerState, 1)
    if state is not None and indexed.registry_address != state.registry_address:
        raise BatchConflict(
            f"batch {indexed.gtin}/{indexed.lot} is held by registry {indexed.registry_address}, which"
            f" an upgrade replaced; the gateway writes only to {state.registry_address}"
            " (enroll another lot; change this batch's statuses on its own registry)"
        )


def batch_out(
    batch: GatewayBatch, write: PendingWrite | None, indexed: IndexedBatch | None = None
) -> BatchPublic:
    return BatchPublic(
        batchId=batch.batch_id,
        gtin=batch.gtin,
        lot=batch.lot,
        expiry=batch.expiry,
        count=batch.item_count,
        root=batch.root,
        metadataHash=batch.metadata_hash,
        signer=batch.signer,
        registration=(write.status.value if write else "queued"),
        txHash=(write.tx_hash if write else None) or (indexed.tx_hash if indexed else None),
        block=(write.block_number if write else None)
        or (indexed.block_number if indexed else None),
        error=write.error if write else None,
        status=Status(indexed.status).name.lower() if indexed else None,
        reorgs=write.reorgs if write else 0,
    )


def enroll_and_register(
    gateway: Gateway,
    org: Organization,
    batch: BatchInput,
    policy: dict[str, Any] | None,
    domain: TagDomain,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    job: jobs.JobContext | None = None,
    secret: bytes | None = None,
    leaves_of: Callable[[TaggingJob, list[str]], bytes] | None = None,
) -> tuple[BatchPublic, bool]:
    """Store the batch and its queued registration, try to submit it now, and describe the
    result (registration done, or still queued if the chain is unreachable). Under a `job`,
    the batch is stored only if the job's runner still holds it (`JobContext.commit`)."""
    with Session(gateway.engine, expire_on_commit=False) as session:
        outcome = enroll(
            session,
            org,
            batch,
            secret_key=gateway.settings.secret_key,
            domain=domain,
            route_policy=policy,
            registry=gateway.detection.registry,
            workers=workers,
            progress=progress,
            secret=secret,
            leaves_of=leaves_of,
        )
        if job is not None:
            job.commit(session)
        session.commit()
        write_id = outcome.write.id
    assert write_id is not None
    gateway.writer.process(only=write_id)
    with Session(gateway.engine) as session:
        return batch_out(outcome.batch, session.get(PendingWrite, write_id)), outcome.created


def submit_enrollment(
    gateway: Gateway, org: Organization, batch: BatchInput, policy: dict[str, Any] | None
) -> str:
    """Store a large enrollment as a job (its serials with it) and wake the job runner;
    returns the job id. The upload was validated whole before this: the job cannot fail on
    a bad line."""
    assert org.id is not None
    params: dict[str, Any] = {
        "gtin": batch.gtin,
        "lot": batch.lot,
        "expiry": batch.expiry,
        "route_policy": policy,
        # Drawn once, so that every attempt makes the same leaves and can reuse the chunks
        # earlier attempts finished; sealed like the batch secrets the gateway keeps.
        "secret": seal(gateway.settings.secret_key, secrets.token_bytes(32)),
    }
    with Session(gateway.engine) as session:
        job = jobs.submit(session, org.id, ENROLL_JOB, params, batch.serials, len(batch))
        job_id = job.id
        session.commit()
    gateway.jobs.wake()
    return job_id


def run_enrollment_job(gateway: Gateway, job: jobs.JobContext) -> dict[str, Any]:
    """The `enroll` job: tag, store and register a batch from the job's stored serials.

    Safe to run again after a crash at any point: the leaves of every finished chunk are
    stored with it (the batch secret is the job's, so they stay valid) and a later attempt
    tags only the rest; until the batch is stored nothing else is, and once it is, `enroll`
    recognises the stored batch by its id and returns its queued registration, which the
    outbox submits once (its idempotency key; a signed transaction is stored before it is
    broadcast)."""
    p = job.params
    batch = BatchInput.create(
        str(p["gtin"]),
        str(p["lot"]),
        list(job.items()),
        str(p["expiry"]) if p.get("expiry") else None,
    )
    with Session(gateway.engine, expire_on_commit=False) as session:
        org = session.get(Organization, job.organization_id)
    if org is None:
        raise InvalidInput(f"organization {job.organization_id} no longer exists")
    policy = p.get("route_policy")
    sealed = p.get("secret")
    out, _ = enroll_and_register(
        gateway,
        org,
        batch,
        policy if isinstance(policy, dict) else None,
        domain_of(gateway),
        job=job,
        secret=unseal(gateway.settings.secret_key, sealed) if isinstance(sealed, str) else None,
        leaves_of=lambda tagging, serials: resumable_leaves(job, tagging, serials, workers=2),
    )
    result: dict[str, Any] = json.loads(out.model_dump_json())
    return result


def resumable_leaves(
    job: jobs.JobContext, tagging: TaggingJob, serials: list[str], workers: int
) -> bytes:
    """The batch's leaves, chunk by chunk as the job stored its input: chunks an earlier
    attempt finished are read back, the others tagged (in parallel) and stored as they are
    done, so a crash loses at most the chunks in flight."""
    chunks = job.chunks()
    outputs: dict[int, bytes] = {}
    pending: list[tuple[int, int, int]] = []  # (seq, first item, items)
    start = 0
    for seq, count, output in chunks:
        if output is not None and len(output) == 32 * count:
            outputs[seq] = output
        else:
            pending.append((seq, start, count))
        start += count
    if start != len(serials):
        raise InvalidInput(f"job {job.id}: stored input has {start} items, expected {len(serials)}")
    job.advance(len(serials) - sum(count for _, _, count in pending))
    # tag_batch cuts its input into CHUNK_SIZE pieces: feed it whole stored chunks of that
    # size (only the input's last chunk may be shorter) so that its pieces are our chunks.
    aligned = all(count == CHUNK_SIZE for _, _, count in pending[:-1]) and (
        not pending or pending[-1][2] <= CHUNK_SIZE
    )
    groups = [pending] if aligned else [[chunk] for chunk in pending]
    for group in groups:
        todo = [s for _, first, count in group for s in serials[first : first + count]]
        tagged = tag_batch(tagging, todo, workers, job.advance) if todo else iter(())
        for (seq, _, count), piece in zip(group, tagged, strict=True):
            if len(piece.leaves) != 32 * count:
                raise ValueError(f"chunk {seq}: {len(piece.leaves) // 32} leaves for {count}")
            job.store_output(seq, piece.leaves)
            outputs[seq] = piece.leaves
    return b"".join(outputs[seq] for seq, _, _ in chunks)
