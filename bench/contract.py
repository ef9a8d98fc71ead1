"""Stateful property testing of the registry on a real node (Hypothesis `RuleBasedStateMachine`).

Foundry's invariant tests need a native solc, which cannot be installed here; this drives the
deployed contract on Anvil instead: random sequences of every external function, sent by
several accounts (the admin, three rights holders, a customs agency, a stranger), each step
mined for real. A Python model predicts whether each call succeeds; after each step the chain
must agree with the model, and these invariants must hold:

- a registered batch's root (and holder) never changes;
- `Destroyed` is final, for batches and items;
- only a batch's holder changes its statuses (never the admin, never a revoked holder);
- each agency's checkpoint size only grows;
- a key revoked (or whose holder was revoked) before a batch never validates its tags;
- a GTIN's owner changes only by the admin's binding of an unbound GTIN or its reassignment.

`tests/chain/test_registry_stateful.py` runs a short profile; `borderledger bench contract`
runs the long one (>= 256 sequences x 100 steps) and prints its figures as JSON.

Speed: the node's unlocked dev accounts send the transactions (no signing here) with a fixed
gas limit (no estimation), so a call the model expects to revert is mined and checked by its
receipt status; every sequence starts from an `evm_snapshot` of the fresh deployment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests
from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from web3 import Web3

from chain.contract import CUSTOMS_ROLE, RIGHTS_HOLDER_ROLE, RegistryClient, connect
from chain.node import dev_private_key, rpc_request
from chain.tx import TransactionSender
from ledger import merkle
from ledger.hashing import keccak256
from ledger.models import ZERO_ADDRESS, Status
from ledger.tags import TagDomain, TagSigner

GAS = 1_000_000
ADMIN_DELAY = 2 * 24 * 3600
#: GTINs with valid check digits; the model binds and reassigns them among the holders.
GTINS = ("09506000134352", "04012345000016", "04012345000030")
LOTS = ("L1", "L2", "L3")
SERIALS = ("S1", "S2", "S3")
SECRET = b"\x22" * 32
#: Dev account indexes: 0 admin, 1-3 rights holders, 4 customs agency, 5 stranger.
ADMIN, HOLDERS, AGENCY, STRANGER = 0, (1, 2, 3), 4, 5
ACTORS = (0, 1, 2, 3, 4, 5)
STATUSES = tuple(Status)
#: Callers, biased towards the parties that may act (the admin and the holders), so sequences
#: get past accreditation; every actor still calls every function.
CALLERS = st.sampled_from((0, 0, 1, 1, 2, 2, 3, 3, 4, 5))


@dataclass
class Deployment:
    """One registry on a node, snapshotted fresh; shared by every sequence of a run."""

    url: str
    w3: Web3
    registry: RegistryClient
    accounts: list[str]
    session: requests.Session = field(default_factory=requests.Session)
    snapshot: str = ""
    steps: int = 0
    sequences: int = 0
    reverts: int = 0

    @classmethod
    def create(cls, url: str) -> Deployment:
        w3 = connect(url)
        admin = Account.from_key(dev_private_key(0))
        registry = RegistryClient.deploy(TransactionSender(w3, admin, lambda d: None))  # type: ignore[arg-type,return-value]
        accounts = [Account.from_key(dev_private_key(i)).address for i in ACTORS]
        deployment = cls(url, w3, registry, accounts)
        deployment.snapshot = str(rpc_request(url, "evm_snapshot"))
        return deployment

    def rpc(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Several JSON-RPC calls in one HTTP batch request; their results, in order."""
        body = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        replies = {r["id"]: r for r in self.session.post(self.url, json=body, timeout=30).json()}
        out = []
        for i in range(len(calls)):
            if "error" in replies[i]:
                raise RuntimeError(f"{calls[i][0]} failed: {replies[i]['error']}")
            out.append(replies[i]["result"])
        return out

    def reset(self) -> None:
        rpc_request(self.url, "evm_revert", [self.snapshot])
        self.snapshot = str(rpc_request(self.url, "evm_snapshot"))
        self.sequences += 1


@dataclass
class ModelBatch:
    gtin: str
    lot: str
    holder: int
    root: bytes
    registered_at: int
    status: Status = Status.ACTIVE
    items: dict[str, Status] = field(default_factory=dict)


@dataclass
class ModelSigner:
    key: bytes
    holder: int
    added_at: int
    revoked_at: int = 0


def _tree(gtin: str) -> tuple[merkle.MerkleTree, dict[str, tuple[bytes, list[bytes]]]]:
    salts = {s: merkle.item_salt(SECRET, gtin, s) for s in SERIALS}
    leaves = {s: merkle.leaf_hash(gtin, s, salts[s]) for s in SERIALS}
    tree = merkle.MerkleTree.from_leaves(list(leaves.values()))
    return tree, {s: (salts[s], tree.proof(leaves[s])) for s in SERIALS}


_TREES = {g: _tree(g) for g in GTINS}


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


_CURRENT: Deployment | None = None


def use_deployment(deployment: Deployment) -> None:
    """The deployment the machine drives (set once per run, before `run_state_machine`)."""
    global _CURRENT
    _CURRENT = deployment


class RegistryMachine(RuleBasedStateMachine):
    """The model of one sequence; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        assert _CURRENT is not None, "call use_deployment() first"
        self.d = _CURRENT
        self.d.reset()
        self.fns = self.d.registry.contract.functions
        self.admin = ADMIN
        self.pending_admin: int | None = None
        self.holders: dict[int, int] = {}  # accredited holder -> 0, or its revocation time
        self.agencies: set[int] = set()
        self.owners: dict[str, int] = {}
        self.batches: dict[str, ModelBatch] = {}
        self.signers: dict[str, ModelSigner] = {}
        self.checkpoints: dict[int, int] = {}
        self.signer_count = 0
        self.domain = TagDomain(self.d.registry.chain_id, self.d.registry.address)

    # ------------------------------------------------------------------ plumbing

    def addr(self, actor: int) -> str:
        return self.d.accounts[actor]

    def send(self, actor: int, fn: Any, expect: bool) -> int:
        """Mine `fn` from `actor` (the node mines each transaction at once); the receipt's
        status must be `expect`. Returns its block time."""
        tx = {
            "from": self.addr(actor),
            "to": self.d.registry.address,
            "gas": hex(GAS),
            "data": fn._encode_transaction_data(),
        }
        (tx_hash,) = self.d.rpc([("eth_sendTransaction", [tx])])
        receipt = None
        for _ in range(200):
            (receipt,) = self.d.rpc([("eth_getTransactionReceipt", [tx_hash])])
            if receipt is not None:
                break
            time.sleep(0.01)
        assert receipt is not None, f"{tx_hash} was not mined"
        (block,) = self.d.rpc([("eth_getBlockByHash", [receipt["blockHash"], False])])
        self.d.steps += 1
        ok = int(receipt["status"], 16) == 1
        if not ok:
            self.d.reverts += 1
        assert ok == expect, f"{fn.fn_name} by {actor}: chain {'ran' if ok else 'reverted'}"
        return int(block["timestamp"], 16)

    def calls(self, fns: list[Any]) -> list[Any]:
        """The decoded results of several view calls, in one batch request."""
        raw = self.d.rpc(
            [
                (
                    "eth_call",
                    [
                        {"to": self.d.registry.address, "data": f._encode_transaction_data()},
                        "latest",
                    ],
                )
                for f in fns
            ]
        )
        out = []
        for f, data in zip(fns, raw, strict=True):
            types = [_abi_type(o) for o in f.abi["outputs"]]
            values = self.d.w3.codec.decode(types, bytes.fromhex(data[2:]))
            out.append(values[0] if len(values) == 1 else values)
        return out

    def active_holder(self, actor: int) -> bool:
        return self.holders.get(actor, -1) == 0

    @initialize(setup=st.booleans())
    def set_up(self, setup: bool) -> None:
        """Half the sequences start with two holders, an agency and their GTINs in place,
        so they spend their steps on batches, keys and statuses."""
        if setup:
            self.accredit_holder(ADMIN, 1)
            self.accredit_holder(ADMIN, 2)
            self.accredit_agency(ADMIN, AGENCY)
            self.bind_gtin(ADMIN, GTINS[0], 1)
            self.bind_gtin(ADMIN, GTINS[1], 2)
            self.add_signer(1)
            self.add_signer(2)

    # ------------------------------------------------------------------ accreditation

    @rule(caller=CALLERS, holder=st.sampled_from(HOLDERS))
    def accredit_holder(self, caller: int, holder: int) -> None:
        ok = caller == self.admin and holder not in self.holders
        self.send(caller, self.fns.accreditRightsHolder(self.addr(holder), "H", "TMK"), ok)
        if ok:
            self.holders[holder] = 0

    @rule(caller=CALLERS, agency=st.sampled_from((AGENCY, STRANGER)))
    def accredit_agency(self, caller: int, agency: int) -> None:
        ok = caller == self.admin and agency not in self.agencies
        self.send(caller, self.fns.accreditCustomsAgency(self.addr(agency), "NL"), ok)
        if ok:
            self.agencies.add(agency)

    @rule(
        caller=CALLERS,
        holder=st.sampled_from(HOLDERS),
        how=st.sampled_from(("revokeRightsHolder", "revokeRole", "renounceRole")),
    )
    def revoke_holder(self, caller: int, holder: int, how: str) -> None:
        accredited = self.active_holder(holder)
        if how == "revokeRightsHolder":
            fn, ok = self.fns.revokeRightsHolder(self.addr(holder)), caller == self.admin
            ok = ok and accredited
        elif how == "revokeRole":
            fn, ok = (
                self.fns.revokeRole(RIGHTS_HOLDER_ROLE, self.addr(holder)),
                caller == self.admin,
            )
        else:
            fn, ok = self.fns.renounceRole(RIGHTS_HOLDER_ROLE, self.addr(holder)), caller == holder
        at = self.send(caller, fn, ok)
        if ok and accredited:
            self.holders[holder] = at

    @rule(
        caller=CALLERS,
        role=st.sampled_from((RIGHTS_HOLDER_ROLE, CUSTOMS_ROLE, b"\x00" * 32)),
        account=st.sampled_from(ACTORS),
    )
    def grant_role(self, caller: int, role: bytes, account: int) -> None:
        # accreditation roles only through accreditation; the admin role only in two steps
        self.send(caller, self.fns.grantRole(role, self.addr(account)), False)

    # ------------------------------------------------------------------ the admin role

    @rule(caller=CALLERS, successor=st.sampled_from(ACTORS))
    def begin_admin_transfer(self, caller: int, successor: int) -> None:
        ok = caller == self.admin
        self.send(caller, self.fns.beginDefaultAdminTransfer(self.addr(successor)), ok)
        if ok:
            self.pending_admin = successor

    @rule(caller=CALLERS)
    def cancel_admin_transfer(self, caller: int) -> None:
        ok = caller == self.admin
        self.send(caller, self.fns.cancelDefaultAdminTransfer(), ok)
        if ok:
            self.pending_admin = None

    @rule(caller=CALLERS)
    def accept_admin_transfer(self, caller: int) -> None:
        _, schedule = self.fns.pendingDefaultAdmin().call()
        now = int(self.d.w3.eth.get_block("latest")["timestamp"])
        # the next block is at least a second later; a schedule within that second is left out
        if caller == self.pending_admin and abs(schedule - now) <= 2:
            return
        ok = caller == self.pending_admin and 0 < schedule < now + 1
        self.send(caller, self.fns.acceptDefaultAdminTransfer(), ok)
        if ok:
            self.admin, self.pending_admin = caller, None

    @rule(seconds=st.sampled_from((1, 3600, ADMIN_DELAY + 1)))
    def advance_time(self, seconds: int) -> None:
        rpc_request(self.d.url, "evm_increaseTime", [seconds])
        rpc_request(self.d.url, "evm_mine", [])

    # ------------------------------------------------------------------ GTINs

    @rule(caller=CALLERS, gtin=st.sampled_from(GTINS), holder=st.sampled_from(HOLDERS))
    def bind_gtin(self, caller: int, gtin: str, holder: int) -> None:
        ok = caller == self.admin and self.active_holder(holder) and gtin not in self.owners
        self.send(caller, self.fns.bindGtin(gtin, self.addr(holder)), ok)
        if ok:
            self.owners[gtin] = holder

    @rule(caller=CALLERS, gtin=st.sampled_from(GTINS), holder=st.sampled_from(HOLDERS))
    def reassign_gtin(self, caller: int, gtin: str, holder: int) -> None:
        ok = (
            caller == self.admin
            and self.active_holder(holder)
            and gtin in self.owners
            and self.owners[gtin] != holder
        )
        self.send(caller, self.fns.reassignGtin(gtin, self.addr(holder)), ok)
        if ok:
            self.owners[gtin] = holder

    # ------------------------------------------------------------------ signer keys

    @rule(caller=CALLERS)
    def add_signer(self, caller: int) -> None:
        self.signer_count += 1
        key = keccak256(b"signer" + self.signer_count.to_bytes(4, "big"))
        address = Account.from_key(key).address
        ok = self.active_holder(caller)
        at = self.send(caller, self.fns.addSigner(address), ok)
        if ok:
            self.signers[address] = ModelSigner(key, caller, at)

    @precondition(lambda self: bool(self.signers))
    @rule(caller=CALLERS, data=st.data())
    def revoke_signer(self, caller: int, data: st.DataObject) -> None:
        address = data.draw(st.sampled_from(sorted(self.signers)))
        signer = self.signers[address]
        ok = caller in (signer.holder, self.admin) and signer.revoked_at == 0
        at = self.send(caller, self.fns.revokeSigner(address), ok)
        if ok:
            signer.revoked_at = at

    # ------------------------------------------------------------------ batches

    @rule(caller=CALLERS, gtin=st.sampled_from(GTINS), lot=st.sampled_from(LOTS))
    def register_batch(self, caller: int, gtin: str, lot: str) -> None:
        batch_id = "0x" + keccak256(Web3().codec.encode(["string", "string"], [gtin, lot])).hex()
        tree, _ = _TREES[gtin]
        ok = (
            self.active_holder(caller)
            and batch_id not in self.batches
            and self.owners.get(gtin) == caller
        )
        at = self.send(caller, self.fns.registerBatch(gtin, lot, tree.root, 3, b"\x00" * 32), ok)
        if ok:
            self.batches[batch_id] = ModelBatch(gtin, lot, caller, tree.root, at)

    def _may_change(self, caller: int, batch: ModelBatch, previous: Status, status: Status) -> bool:
        return (
            caller == batch.holder
            and self.active_holder(caller)
            and previous != Status.DESTROYED
            and previous != status
        )

    @precondition(lambda self: bool(self.batches))
    @rule(caller=CALLERS, status=st.sampled_from(STATUSES), data=st.data())
    def set_batch_status(self, caller: int, status: Status, data: st.DataObject) -> None:
        batch_id = data.draw(st.sampled_from(sorted(self.batches)))
        batch = self.batches[batch_id]
        ok = self._may_change(caller, batch, batch.status, status)
        self.send(caller, self.fns.setBatchStatus(bytes.fromhex(batch_id[2:]), int(status)), ok)
        if ok:
            batch.status = status

    @precondition(lambda self: bool(self.batches))
    @rule(
        caller=CALLERS,
        status=st.sampled_from(STATUSES),
        serial=st.sampled_from(SERIALS),
        data=st.data(),
    )
    def set_item_status(
        self, caller: int, status: Status, serial: str, data: st.DataObject
    ) -> None:
        batch_id = data.draw(st.sampled_from(sorted(self.batches)))
        batch = self.batches[batch_id]
        salt, proof = _TREES[batch.gtin][1][serial]
        previous = batch.items.get(serial, Status.ACTIVE)
        ok = self._may_change(caller, batch, previous, status)
        fn = self.fns.setItemStatus(batch.gtin, batch.lot, serial, salt, proof, int(status))
        self.send(caller, fn, ok)
        if ok:
            batch.items[serial] = status

    # ------------------------------------------------------------------ checkpoints

    @rule(caller=CALLERS, grow=st.integers(min_value=-1, max_value=3))
    def anchor_checkpoint(self, caller: int, grow: int) -> None:
        latest = self.checkpoints.get(caller, 0)
        size = max(latest + grow, 0)
        ok = caller in self.agencies and size > latest
        self.send(caller, self.fns.anchorCheckpoint(size, keccak256(b"root%d" % size)), ok)
        if ok:
            self.checkpoints[caller] = size

    # ------------------------------------------------------------------ judging tags

    def _key_valid(self, signer: ModelSigner, batch: ModelBatch) -> bool:
        if signer.holder != batch.holder:
            return False
        ends = [t for t in (signer.revoked_at, self.holders.get(batch.holder, 0)) if t]
        if not ends:
            return True
        return signer.added_at <= batch.registered_at < min(ends)

    @precondition(lambda self: bool(self.batches) and bool(self.signers))
    @rule(serial=st.sampled_from(SERIALS), data=st.data())
    def check_tag(self, serial: str, data: st.DataObject) -> None:
        """A key revoked (with its holder or alone) before a batch never validates its tags;
        the contract's `checkTag` agrees with the model on every key and batch."""
        batch = self.batches[data.draw(st.sampled_from(sorted(self.batches)))]
        address = data.draw(st.sampled_from(sorted(self.signers)))
        signer = self.signers[address]
        tag = TagSigner(signer.key, self.domain).sign(batch.gtin, serial, batch.lot)
        salt, proof = _TREES[batch.gtin][1][serial]
        (check,) = self.calls([self.fns.checkTag(batch.gtin, serial, batch.lot, salt, proof, tag)])
        expected = self._key_valid(signer, batch)
        assert check[4] == expected, (address, batch, check)
        assert check[5] is True  # in batch
        revoked_first = any(
            0 < t <= batch.registered_at
            for t in (signer.revoked_at, self.holders.get(signer.holder, 0))
        )
        if revoked_first:
            assert not check[4]

    # ------------------------------------------------------------------ invariants

    @invariant()
    def chain_agrees_with_model(self) -> None:
        if not hasattr(self, "fns"):
            return
        ids = sorted(self.batches)
        keys = [(b, s) for b in ids for s in SERIALS]
        agencies = sorted(self.checkpoints)
        results = iter(
            self.calls(
                [self.fns.getBatch(bytes.fromhex(b[2:])) for b in ids]
                + [
                    self.fns.itemStatus(
                        bytes.fromhex(b[2:]),
                        keccak256(
                            Web3().codec.encode(["string", "string"], [self.batches[b].gtin, s])
                        ),
                    )
                    for b, s in keys
                ]
                + [self.fns.gtinHolder(g) for g in GTINS]
                + [self.fns.latestCheckpoint(self.addr(a)) for a in agencies]
                + [self.fns.defaultAdmin()]
            )
        )
        # roots and holders never change; statuses change only by the holder's calls (the
        # model lets nobody else change them, and Destroyed never changes)
        for batch_id in ids:
            batch = self.batches[batch_id]
            root, holder, _, registered_at, status = next(results)
            assert bytes(root) == batch.root and Web3.to_checksum_address(holder) == self.addr(
                batch.holder
            )
            assert registered_at == batch.registered_at
            assert Status(status) == batch.status
        for batch_id, serial in keys:
            expected_status = self.batches[batch_id].items.get(serial, Status.ACTIVE)
            assert Status(next(results)) == expected_status
        # a GTIN's owner: only what binding and reassignment made it
        for gtin in GTINS:
            owner = Web3.to_checksum_address(next(results))
            expected = self.addr(self.owners[gtin]) if gtin in self.owners else ZERO_ADDRESS
            assert owner == expected, (gtin, owner, expected)
        # checkpoint sizes only grow
        for agency in agencies:
            assert next(results)[0] == self.checkpoints[agency]
        assert Web3.to_checksum_address(next(results)) == self.addr(self.admin)


def run_state_machine(
    deployment: Deployment, examples: int, steps: int, seed: int | None = None
) -> dict[str, Any]:
    """Run `examples` random sequences of up to `steps` steps; returns the figures."""
    use_deployment(deployment)
    profile = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=seed is None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    machine = RegistryMachine.TestCase
    machine.settings = profile
    started = time.perf_counter()
    before = (deployment.steps, deployment.sequences, deployment.reverts)
    test = machine("runTest")
    if seed is not None:
        from hypothesis import seed as hypothesis_seed

        hypothesis_seed(seed)(test.runTest)
    test.runTest()
    elapsed = time.perf_counter() - started
    sent = deployment.steps - before[0]
    return {
        "sequences": deployment.sequences - before[1],
        "mean_steps": round(sent / max(deployment.sequences - before[1], 1), 1),
        "max_steps": steps,
        "transactions": sent,
        "reverted_as_predicted": deployment.reverts - before[2],
        "seconds": round(elapsed, 1),
        "transactions_per_second": round(sent / elapsed, 1) if elapsed else None,
    }
