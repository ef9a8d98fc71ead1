"""Integration tests of BorderLedgerRegistry through `RegistryClient`, on Anvil and Hardhat.

Every external function of the contract is exercised, and every custom error is provoked with
its name and arguments checked, so a change of the contract's rules or of the client's decoding
fails here. The `chain` fixture (tests/conftest.py) runs each test once per node kind on a
freshly deployed registry.

Reverting transactions are simulated before they are sent (`chain.tx`), so a revert never
mines a block; tests still check the state the revert must not have touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from web3.logs import DISCARD

from chain.contract import (
    ADMIN_ROLE,
    CUSTOMS_ROLE,
    REGISTRY,
    RIGHTS_HOLDER_ROLE,
    RegistryClient,
    load_artifact,
)
from chain.node import dev_private_key, rpc_request
from chain.tx import Receipt, TransactionSender
from ledger import batch as ledger_batch
from ledger import merkle, tags
from ledger.errors import ContractReverted
from ledger.hashing import keccak256
from ledger.models import ZERO_ADDRESS, Status
from ledger.tags import SECP256K1_N, TagSigner

ZERO32 = b"\x00" * 32
GTIN = "09506000134352"  # bound to `holder` by the `parties` fixture
OTHER_GTIN = "04012345000016"  # bound to `other_holder`
GTIN_CHECK_ZERO = "04012345000030"  # valid GTIN whose check digit is 0
LOT = "LOT-2025-A"
SERIALS = ("SN0001", "SN0002", "SN0003", "SN0004", "SN0005")
METADATA = keccak256(b"batch metadata")
BATCH_SECRET = b"\x11" * 32


# ---------------------------------------------------------------------------------- helpers


def gtin_with_check_digit(body: str) -> str:
    """`body` (13 digits) followed by its GS1 mod-10 check digit, computed independently."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def expect_revert(action: Callable[[], Any], name: str, **error_args: Any) -> ContractReverted:
    """Run `action`, which must revert with custom error `name` and exactly `error_args`."""
    with pytest.raises(ContractReverted) as caught:
        action()
    assert caught.value.name == name, caught.value
    assert caught.value.error_args == error_args, caught.value
    return caught.value


def events(client: RegistryClient, receipt: Receipt, name: str) -> list[dict[str, Any]]:
    """The args of every `name` event in `receipt`, decoded with the registry's ABI."""
    event = getattr(client.contract.events, name)()
    decoded = event.process_receipt({"logs": receipt.logs}, errors=DISCARD)
    return [dict(entry["args"]) for entry in decoded]


def block_time(client: RegistryClient, receipt: Receipt) -> int:
    return int(client.w3.eth.get_block(receipt.block_number)["timestamp"])


def advance_time(chain: Any, seconds: int = 100) -> None:
    """Move the node's clock forward and mine, so the next block has a later timestamp."""
    rpc_request(chain.node.url, "evm_increaseTime", [seconds])
    rpc_request(chain.node.url, "evm_mine", [])


def high_s(signature: bytes) -> bytes:
    """The malleable twin of a low-s signature: s' = n - s and v flipped (27 <-> 28)."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])


def batch_id_py(gtin: str, lot: str) -> bytes:
    return keccak256(abi_encode(["string", "string"], [gtin, lot]))


def item_key_py(gtin: str, serial: str) -> bytes:
    return keccak256(abi_encode(["string", "string"], [gtin, serial]))


@dataclass(frozen=True)
class Item:
    serial: str
    salt: bytes
    leaf: bytes
    proof: list[bytes]
    key: bytes  # keccak256(abi.encode(gtin, serial)): where the registry keeps its status


@dataclass(frozen=True)
class Batch:
    gtin: str
    lot: str
    batch_id: bytes
    root: bytes
    items: list[Item]
    receipt: Receipt

    @property
    def hex_id(self) -> str:
        return "0x" + self.batch_id.hex()


def build_items(gtin: str, serials: tuple[str, ...]) -> tuple[bytes, list[Item]]:
    salts = [merkle.item_salt(BATCH_SECRET, gtin, s) for s in serials]
    leaves = [merkle.leaf_hash(gtin, s, salt) for s, salt in zip(serials, salts, strict=True)]
    tree = merkle.MerkleTree.from_leaves(leaves)
    items = [
        Item(s, salt, leaf, tree.proof(leaf), item_key_py(gtin, s))
        for s, salt, leaf in zip(serials, salts, leaves, strict=True)
    ]
    return tree.root, items


def register(
    client: RegistryClient, gtin: str = GTIN, lot: str = LOT, serials: tuple[str, ...] = SERIALS
) -> Batch:
    root, items = build_items(gtin, serials)
    receipt = client.register_batch(gtin, lot, root, len(items), METADATA)
    return Batch(gtin, lot, batch_id_py(gtin, lot), root, items, receipt)


# ---------------------------------------------------------------------------------- fixtures


@dataclass
class Parties:
    """Clients of every party, with `holder` and `other_holder` accredited."""

    chain: Any
    admin: RegistryClient
    holder: RegistryClient
    other: RegistryClient
    agency: RegistryClient
    stranger: RegistryClient
    signer: TagSigner


@pytest.fixture
def parties(chain: Any) -> Parties:
    admin = chain.client(chain.admin)
    admin.accredit_rights_holder(chain.holder.address, "Acme Pharma", "TMK-2025-001")
    admin.accredit_rights_holder(chain.other_holder.address, "Globex", "TMK-2025-002")
    admin.bind_gtin(GTIN, chain.holder.address)
    admin.bind_gtin(OTHER_GTIN, chain.other_holder.address)
    return Parties(
        chain=chain,
        admin=admin,
        holder=chain.client(chain.holder),
        other=chain.client(chain.other_holder),
        agency=chain.client(chain.agency),
        stranger=chain.client(chain.stranger),
        signer=chain.tag_signer(),
    )


@pytest.fixture
def batch(parties: Parties) -> Batch:
    """A batch of five items of GTIN/LOT registered by `holder`, whose signer key is active."""
    parties.holder.add_signer(parties.signer.address)
    return register(parties.holder)


def set_item(
    client: RegistryClient,
    batch: Batch,
    item: Item,
    status: Status,
    *,
    proof: list[bytes] | None = None,
) -> Receipt:
    return client.set_item_status(
        batch.gtin,
        batch.lot,
        item.serial,
        item.salt,
        item.proof if proof is None else proof,
        status,
    )


def accredit(client: RegistryClient, kind: str, account: str, name: str) -> Receipt:
    if kind == "rights_holder":
        return client.accredit_rights_holder(account, name, "TMK-1")
    return client.accredit_customs_agency(account, name)


ROLE_OF = {"rights_holder": RIGHTS_HOLDER_ROLE, "customs": CUSTOMS_ROLE}


# ---------------------------------------------------------------------------------- deployment

#: The contract's external surface; every name here is exercised by a test in this file.
FUNCTIONS = {
    "CUSTOMS_ROLE", "DEFAULT_ADMIN_ROLE", "RIGHTS_HOLDER_ROLE", "TAG_TYPEHASH",
    "anchorCheckpoint", "checkpointRoot", "latestCheckpoint",  # test_registry_checkpoints.py
    "accreditCustomsAgency", "accreditRightsHolder", "addSigner", "batchIdOf", "checkTag",
    "customsAgency", "domainSeparator", "eip712Domain", "getBatch", "getRoleAdmin", "grantRole",
    "gtinHolder", "hasRole", "isItemInBatch", "isSignerValidFor", "itemKeyOf", "itemStatus",
    "leafHash", "registerBatch", "renounceRole", "revokeRole", "revokeSigner", "rightsHolder",
    "setBatchStatus", "setItemStatus", "signerKey", "supportsInterface", "tagDigest",
    # test_registry_rights.py: GTIN bindings, holder revocation, the two-step admin
    "bindGtin", "reassignGtin", "revokeRightsHolder", "ADMIN_TRANSFER_DELAY",
    "acceptDefaultAdminTransfer", "beginDefaultAdminTransfer", "cancelDefaultAdminTransfer",
    "changeDefaultAdminDelay", "defaultAdmin", "defaultAdminDelay",
    "defaultAdminDelayIncreaseWait", "owner", "pendingDefaultAdmin", "pendingDefaultAdminDelay",
    "rollbackDefaultAdminDelay",
    # test_registry_prefixes.py: company prefix bindings
    "bindCompanyPrefix", "unbindCompanyPrefix", "companyPrefixHolder", "resolveGtinHolder",
}  # fmt: skip
#: Every custom error; the two ShortStrings errors of EIP712's constructor cannot occur
#: (the domain name and version are short constants).
ERRORS = {
    "AccessControlBadConfirmation", "AccessControlUnauthorizedAccount", "AlreadyAccredited",
    "BatchAlreadyRegistered", "EmptyName",
    "CheckpointNotIncreasing", "InvalidCheckpointSize",  # test_registry_checkpoints.py
    "GtinOwnedByAnotherHolder", "InvalidGtin",
    "InvalidItemCount", "InvalidLot", "InvalidRoot", "InvalidShortString", "ItemNotInBatch",
    "NotBatchHolder", "NotSignerHolder", "SignerAlreadyRegistered", "SignerAlreadyRevoked",
    "StatusIsFinal", "StatusUnchanged", "StringTooLong", "UnknownBatch", "UnknownSigner",
    "ZeroAddress",
    # test_registry_rights.py
    "GtinNotBound", "GtinAlreadyBound", "NotRightsHolder", "RightsHolderIsRevoked",
    "GrantThroughAccreditation", "AccessControlEnforcedDefaultAdminDelay",
    "AccessControlEnforcedDefaultAdminRules", "AccessControlInvalidDefaultAdmin",
    # test_registry_prefixes.py
    "InvalidCompanyPrefix", "CompanyPrefixAlreadyBound", "CompanyPrefixNotBound",
    # SafeCast's, inside AccessControlDefaultAdminRules: unreachable with uint48 times
    "SafeCastOverflowedUintDowncast",
}  # fmt: skip


def test_abi_surface_is_the_one_tested_here() -> None:
    """A function or error added to the contract must get a test here too."""
    abi = load_artifact(REGISTRY)["abi"]
    assert {i["name"] for i in abi if i["type"] == "function"} == FUNCTIONS
    assert {i["name"] for i in abi if i["type"] == "error"} == ERRORS


class TestDeployment:
    def test_deployer_is_admin_and_constants(self, chain: Any) -> None:
        registry = chain.registry
        fns = registry.contract.functions
        assert registry.has_role(ADMIN_ROLE, chain.admin.address)
        assert not registry.has_role(ADMIN_ROLE, chain.stranger.address)
        assert bytes(fns.DEFAULT_ADMIN_ROLE().call()) == ADMIN_ROLE
        assert bytes(fns.RIGHTS_HOLDER_ROLE().call()) == RIGHTS_HOLDER_ROLE
        assert bytes(fns.CUSTOMS_ROLE().call()) == CUSTOMS_ROLE
        assert bytes(fns.TAG_TYPEHASH().call()) == tags.TAG_TYPEHASH
        for role in (ADMIN_ROLE, RIGHTS_HOLDER_ROLE, CUSTOMS_ROLE):
            assert bytes(fns.getRoleAdmin(role).call()) == ADMIN_ROLE

    def test_supports_interface(self, chain: Any) -> None:
        fns = chain.registry.contract.functions
        assert fns.supportsInterface(bytes.fromhex("01ffc9a7")).call()  # ERC-165
        assert fns.supportsInterface(bytes.fromhex("7965db0b")).call()  # IAccessControl
        assert not fns.supportsInterface(bytes.fromhex("ffffffff")).call()

    def test_constructor_refuses_zero_admin(self, chain: Any) -> None:
        sender = TransactionSender(
            chain.registry.w3, chain.admin, chain.registry.decode_revert, backoff=0.05
        )
        expect_revert(
            lambda: RegistryClient.deploy(sender, admin=ZERO_ADDRESS),
            "AccessControlInvalidDefaultAdmin",
            defaultAdmin=ZERO_ADDRESS,
        )


# ---------------------------------------------------------------------------------- accreditation


class TestAccreditation:
    def test_accredit_rights_holder(self, chain: Any) -> None:
        admin = chain.client(chain.admin)
        holder = chain.holder.address
        before = admin.rights_holder(holder)
        assert (before.name, before.recordation, before.accredited) == ("", "", False)

        receipt = admin.accredit_rights_holder(holder, "Acme Pharma", "CBP TMK 22-00123")

        record = admin.rights_holder(holder)
        assert record.address == holder
        assert record.name == "Acme Pharma"
        assert record.recordation == "CBP TMK 22-00123"
        assert record.accredited
        assert admin.has_role(RIGHTS_HOLDER_ROLE, holder)
        assert not admin.has_role(CUSTOMS_ROLE, holder)
        assert events(admin, receipt, "RightsHolderAccredited") == [
            {"holder": holder, "name": "Acme Pharma", "recordation": "CBP TMK 22-00123"}
        ]
        granted = events(admin, receipt, "RoleGranted")
        assert granted == [
            {"role": RIGHTS_HOLDER_ROLE, "account": holder, "sender": chain.admin.address}
        ]

    def test_rights_holder_recordation_may_be_empty(self, chain: Any) -> None:
        admin = chain.client(chain.admin)
        admin.accredit_rights_holder(chain.holder.address, "Acme", "")
        assert admin.rights_holder(chain.holder.address).recordation == ""

    def test_accredit_customs_agency(self, chain: Any) -> None:
        admin = chain.client(chain.admin)
        agency = chain.agency.address
        assert admin.customs_agency(agency) == ""
        assert not admin.has_role(CUSTOMS_ROLE, agency)

        receipt = admin.accredit_customs_agency(agency, "Border Force")

        assert admin.customs_agency(agency) == "Border Force"
        assert admin.has_role(CUSTOMS_ROLE, agency)
        assert not admin.has_role(RIGHTS_HOLDER_ROLE, agency)
        assert events(admin, receipt, "CustomsAgencyAccredited") == [
            {"agency": agency, "name": "Border Force"}
        ]

    def test_one_account_may_hold_both_roles(self, chain: Any) -> None:
        admin = chain.client(chain.admin)
        admin.accredit_rights_holder(chain.holder.address, "Acme", "TMK")
        admin.accredit_customs_agency(chain.holder.address, "Acme customs desk")
        assert admin.has_role(RIGHTS_HOLDER_ROLE, chain.holder.address)
        assert admin.has_role(CUSTOMS_ROLE, chain.holder.address)

    @pytest.mark.parametrize("kind", ["rights_holder", "customs"])
    @pytest.mark.parametrize("caller", ["stranger", "holder"])
    def test_by_non_admin(self, chain: Any, kind: str, caller: str) -> None:
        account = getattr(chain, caller)
        if caller == "holder":  # an accredited rights holder is still not an admin
            chain.client(chain.admin).accredit_rights_holder(account.address, "Acme", "TMK")
        client = chain.client(account)
        expect_revert(
            lambda: accredit(client, kind, chain.agency.address, "Sneaky"),
            "AccessControlUnauthorizedAccount",
            account=account.address,
            neededRole=ADMIN_ROLE,
        )
        assert not client.has_role(ROLE_OF[kind], chain.agency.address)
        assert client.rights_holder(chain.agency.address).name == ""
        assert client.customs_agency(chain.agency.address) == ""

    @pytest.mark.parametrize("kind", ["rights_holder", "customs"])
    def test_zero_address(self, chain: Any, kind: str) -> None:
        admin = chain.client(chain.admin)
        expect_revert(lambda: accredit(admin, kind, ZERO_ADDRESS, "Nobody"), "ZeroAddress")
        assert not admin.has_role(ROLE_OF[kind], ZERO_ADDRESS)

    @pytest.mark.parametrize("kind", ["rights_holder", "customs"])
    def test_empty_name(self, chain: Any, kind: str) -> None:
        admin = chain.client(chain.admin)
        account = chain.agency.address
        expect_revert(lambda: accredit(admin, kind, account, ""), "EmptyName", account=account)
        assert not admin.has_role(ROLE_OF[kind], account)

    @pytest.mark.parametrize("kind", ["rights_holder", "customs"])
    def test_twice(self, chain: Any, kind: str) -> None:
        admin = chain.client(chain.admin)
        account = chain.agency.address
        accredit(admin, kind, account, "First name")
        expect_revert(
            lambda: accredit(admin, kind, account, "Second name"),
            "AlreadyAccredited",
            account=account,
            role=ROLE_OF[kind],
        )
        if kind == "rights_holder":
            assert admin.rights_holder(account).name == "First name"
        else:
            assert admin.customs_agency(account) == "First name"


class TestRoles:
    """The inherited AccessControl functions: grantRole, revokeRole, renounceRole."""

    def test_revoked_rights_holder_can_no_longer_register(self, parties: Parties) -> None:
        holder = parties.chain.holder.address
        receipt = parties.admin.revoke_role(RIGHTS_HOLDER_ROLE, holder)
        assert events(parties.admin, receipt, "RoleRevoked") == [
            {"role": RIGHTS_HOLDER_ROLE, "account": holder, "sender": parties.chain.admin.address}
        ]
        assert not parties.admin.rights_holder(holder).accredited
        expect_revert(
            lambda: register(parties.holder),
            "AccessControlUnauthorizedAccount",
            account=holder,
            neededRole=RIGHTS_HOLDER_ROLE,
        )
        expect_revert(
            lambda: parties.holder.add_signer(parties.signer.address),
            "AccessControlUnauthorizedAccount",
            account=holder,
            neededRole=RIGHTS_HOLDER_ROLE,
        )

    @pytest.mark.parametrize("role", [CUSTOMS_ROLE, RIGHTS_HOLDER_ROLE])
    def test_grant_role_directly_is_refused(self, chain: Any, role: bytes) -> None:
        """An accreditation role comes only with its record (name, recordation) and event."""
        admin = chain.client(chain.admin)
        expect_revert(
            lambda: admin.grant_role(role, chain.agency.address),
            "GrantThroughAccreditation",
            role=role,
        )
        assert not admin.has_role(role, chain.agency.address)
        admin.accredit_customs_agency(chain.agency.address, "Border Force")
        assert admin.customs_agency(chain.agency.address) == "Border Force"

    @pytest.mark.parametrize("action", ["grant", "revoke"])
    def test_grant_and_revoke_need_admin(self, chain: Any, action: str) -> None:
        stranger = chain.client(chain.stranger)
        fn = stranger.grant_role if action == "grant" else stranger.revoke_role
        role = keccak256(b"SOME_ROLE")  # the accreditation roles refuse grantRole outright
        expect_revert(
            lambda: fn(role, chain.stranger.address),
            "AccessControlUnauthorizedAccount",
            account=chain.stranger.address,
            neededRole=ADMIN_ROLE,
        )
        assert not stranger.has_role(RIGHTS_HOLDER_ROLE, chain.stranger.address)

    def test_renounce_role(self, parties: Parties) -> None:
        holder = parties.holder
        address = parties.chain.holder.address
        renounce = holder.contract.functions.renounceRole
        expect_revert(
            lambda: holder._transact(renounce(RIGHTS_HOLDER_ROLE, parties.chain.stranger.address)),
            "AccessControlBadConfirmation",
        )
        assert holder.has_role(RIGHTS_HOLDER_ROLE, address)
        holder._transact(renounce(RIGHTS_HOLDER_ROLE, address))
        assert not holder.has_role(RIGHTS_HOLDER_ROLE, address)


# ---------------------------------------------------------------------------------- signer keys


class TestSignerKeys:
    def test_add_signer(self, parties: Parties) -> None:
        signer = parties.signer.address
        assert not parties.holder.signer_key(signer).registered

        receipt = parties.holder.add_signer(signer)

        now = block_time(parties.holder, receipt)
        key = parties.holder.signer_key(signer)
        assert key.signer == signer
        assert key.holder == parties.chain.holder.address
        assert (key.added_at, key.revoked_at) == (now, 0)
        assert key.registered and key.active
        assert events(parties.holder, receipt, "SignerAdded") == [
            {"holder": parties.chain.holder.address, "signer": signer, "addedAt": now}
        ]

    def test_holder_may_have_several_keys(self, parties: Parties) -> None:
        keys = [TagSigner(dev_private_key(i), parties.chain.domain).address for i in (5, 6, 7)]
        for key in keys:
            parties.holder.add_signer(key)
        assert all(parties.holder.signer_key(k).active for k in keys)

    @pytest.mark.parametrize("caller", ["stranger", "admin", "agency"])
    def test_add_by_non_holder(self, parties: Parties, caller: str) -> None:
        if caller == "agency":
            parties.admin.accredit_customs_agency(parties.chain.agency.address, "Border Force")
        client: RegistryClient = getattr(parties, caller)
        account = getattr(parties.chain, caller).address
        expect_revert(
            lambda: client.add_signer(parties.signer.address),
            "AccessControlUnauthorizedAccount",
            account=account,
            neededRole=RIGHTS_HOLDER_ROLE,
        )
        assert not client.signer_key(parties.signer.address).registered

    def test_add_zero(self, parties: Parties) -> None:
        expect_revert(lambda: parties.holder.add_signer(ZERO_ADDRESS), "ZeroAddress")
        assert not parties.holder.signer_key(ZERO_ADDRESS).registered

    @pytest.mark.parametrize("second", ["holder", "other"])
    def test_add_already_registered(self, parties: Parties, second: str) -> None:
        signer = parties.signer.address
        parties.holder.add_signer(signer)
        before = parties.holder.signer_key(signer)
        client: RegistryClient = getattr(parties, second)
        expect_revert(
            lambda: client.add_signer(signer),
            "SignerAlreadyRegistered",
            signer=signer,
            holder=parties.chain.holder.address,
        )
        assert parties.holder.signer_key(signer) == before

    def test_revoked_key_is_never_reused(self, parties: Parties) -> None:
        signer = parties.signer.address
        parties.holder.add_signer(signer)
        parties.holder.revoke_signer(signer)
        for client in (parties.holder, parties.other):
            expect_revert(
                lambda c=client: c.add_signer(signer),
                "SignerAlreadyRegistered",
                signer=signer,
                holder=parties.chain.holder.address,
            )

    def test_revoke_by_holder(self, parties: Parties) -> None:
        signer = parties.signer.address
        added = parties.holder.add_signer(signer)
        advance_time(parties.chain)
        receipt = parties.holder.revoke_signer(signer)

        now = block_time(parties.holder, receipt)
        key = parties.holder.signer_key(signer)
        assert key.added_at == block_time(parties.holder, added) < now
        assert key.revoked_at == now
        assert key.registered and not key.active
        assert events(parties.holder, receipt, "SignerRevoked") == [
            {"holder": parties.chain.holder.address, "signer": signer, "revokedAt": now}
        ]

    def test_admin_may_revoke(self, parties: Parties) -> None:
        signer = parties.signer.address
        parties.holder.add_signer(signer)
        receipt = parties.admin.revoke_signer(signer)
        now = block_time(parties.admin, receipt)
        assert parties.admin.signer_key(signer).revoked_at == now
        # the event names the key's holder, not the admin who revoked it
        assert events(parties.admin, receipt, "SignerRevoked") == [
            {"holder": parties.chain.holder.address, "signer": signer, "revokedAt": now}
        ]

    def test_revoke_unknown(self, parties: Parties) -> None:
        signer = parties.signer.address
        for client in (parties.holder, parties.admin):
            expect_revert(lambda c=client: c.revoke_signer(signer), "UnknownSigner", signer=signer)
        expect_revert(
            lambda: parties.admin.revoke_signer(ZERO_ADDRESS), "UnknownSigner", signer=ZERO_ADDRESS
        )

    @pytest.mark.parametrize("caller", ["stranger", "other"])
    def test_revoke_by_non_owner(self, parties: Parties, caller: str) -> None:
        signer = parties.signer.address
        parties.holder.add_signer(signer)
        client: RegistryClient = getattr(parties, caller)
        caller_address = client.sender.address  # type: ignore[union-attr]
        expect_revert(
            lambda: client.revoke_signer(signer),
            "NotSignerHolder",
            caller=caller_address,
            signer=signer,
            holder=parties.chain.holder.address,
        )
        assert parties.holder.signer_key(signer).active

    @pytest.mark.parametrize("second", ["holder", "admin"])
    def test_revoke_twice(self, parties: Parties, second: str) -> None:
        signer = parties.signer.address
        parties.holder.add_signer(signer)
        receipt = parties.holder.revoke_signer(signer)
        revoked_at = block_time(parties.holder, receipt)
        advance_time(parties.chain)
        client: RegistryClient = getattr(parties, second)
        expect_revert(
            lambda: client.revoke_signer(signer),
            "SignerAlreadyRevoked",
            signer=signer,
            revokedAt=revoked_at,
        )
        assert parties.holder.signer_key(signer).revoked_at == revoked_at


# ---------------------------------------------------------------------------------- batches


class TestBatchRegistration:
    def test_register(self, parties: Parties) -> None:
        holder = parties.chain.holder.address
        assert parties.holder.gtin_holder(GTIN) == holder  # bound by the admin beforehand

        b = register(parties.holder)

        assert isinstance(b.receipt, Receipt)
        assert b.receipt.block_number > 0
        assert b.receipt.tx_hash.startswith("0x")
        record = parties.holder.get_batch(b.batch_id)
        assert record.batch_id == b.hex_id
        assert record.root == "0x" + b.root.hex()
        assert record.holder == holder
        assert record.item_count == len(SERIALS)
        assert record.registered_at == block_time(parties.holder, b.receipt)
        assert record.status == Status.ACTIVE
        assert record.registered
        assert parties.holder.get_batch(b.hex_id) == record  # hex ids are accepted too
        assert parties.holder.gtin_holder(GTIN) == holder
        assert events(parties.holder, b.receipt, "BatchRegistered") == [
            {
                "batchId": b.batch_id,
                "holder": holder,
                "gtin": GTIN,
                "lot": LOT,
                "root": b.root,
                "itemCount": len(SERIALS),
                "metadataHash": METADATA,
            }
        ]

    def test_batch_registration_event(self, parties: Parties) -> None:
        b = register(parties.holder)
        # another batch afterwards must not be mistaken for this one
        register(parties.holder, lot="LOT-2025-B", serials=("X1",))
        found = parties.stranger.batch_registration(b.batch_id)
        assert found == {
            "tx_hash": b.receipt.tx_hash,
            "block_number": b.receipt.block_number,
            "root": "0x" + b.root.hex(),
            "item_count": len(SERIALS),
            "metadata_hash": "0x" + METADATA.hex(),
            "gtin": GTIN,
            "lot": LOT,
            "holder": parties.chain.holder.address,
        }
        assert parties.stranger.batch_registration(b.hex_id) == found
        assert parties.stranger.batch_registration(b.batch_id, b.receipt.block_number) == found
        assert parties.stranger.batch_registration(b.batch_id, b.receipt.block_number + 1) is None
        assert parties.stranger.batch_registration(batch_id_py(GTIN, "NOPE")) is None

    @pytest.mark.parametrize(
        ("gtin", "lot"),
        [(GTIN, LOT), (OTHER_GTIN, "1"), (GTIN, "ÄÖÜ-lot"), ("", ""), ("not a gtin", "x" * 40)],
    )
    def test_batch_id_of(self, chain: Any, gtin: str, lot: str) -> None:
        expected = keccak256(abi_encode(["string", "string"], [gtin, lot]))
        assert chain.registry.batch_id_of(gtin, lot) == "0x" + expected.hex()

    def test_batch_id_binds_gtin_and_lot(self, chain: Any) -> None:
        # abi.encode (not encodePacked): moving characters between gtin and lot changes the id
        assert chain.registry.batch_id_of("0950600013435", "2A") != chain.registry.batch_id_of(
            "09506000134352", "A"
        )

    def test_same_holder_registers_more_lots(self, parties: Parties) -> None:
        first = register(parties.holder)
        second = register(parties.holder, lot="LOT-2025-B")
        assert first.batch_id != second.batch_id
        assert parties.holder.get_batch(second.batch_id).registered
        assert parties.holder.get_batch(first.batch_id).root == "0x" + first.root.hex()

    @pytest.mark.parametrize("gtin", [GTIN_CHECK_ZERO, gtin_with_check_digit("0" * 13)])
    def test_gtin_with_check_digit_zero(self, parties: Parties, gtin: str) -> None:
        assert gtin.endswith("0")
        parties.admin.bind_gtin(gtin, parties.chain.holder.address)
        b = register(parties.holder, gtin=gtin)
        assert parties.holder.get_batch(b.batch_id).registered

    @pytest.mark.parametrize(
        "gtin",
        [
            GTIN[:-1] + "3",  # wrong check digit
            GTIN[:-1] + "0",  # wrong check digit
            GTIN_CHECK_ZERO[:-1] + "9",  # wrong check digit
            GTIN[1:],  # 13 characters (a GTIN-13 is not padded on chain)
            "0" + GTIN,  # 15 characters
            "",
            "0950600013435A",  # letter
            "O9506000134352",  # letter O for zero
            "0950600013435 ",  # trailing space
            "09506000134/52",  # '/' is just below '0'
            "09506000134:52",  # ':' is just above '9'
            "٠٩٥٠٦٠٠٠١٣٤٣٥٢",  # Arabic-Indic digits
        ],
    )
    def test_invalid_gtin(self, parties: Parties, gtin: str) -> None:
        root, items = build_items(GTIN, SERIALS)
        expect_revert(
            lambda: parties.holder.register_batch(gtin, LOT, root, len(items), METADATA),
            "InvalidGtin",
            gtin=gtin,
        )
        assert not parties.holder.get_batch(batch_id_py(gtin, LOT)).registered
        assert parties.holder.gtin_holder(gtin) == ZERO_ADDRESS

    @pytest.mark.parametrize("lot", ["", "L" * 21, "é" * 11])
    def test_invalid_lot(self, parties: Parties, lot: str) -> None:
        root, _ = build_items(GTIN, SERIALS)
        expect_revert(
            lambda: parties.holder.register_batch(GTIN, lot, root, 5, METADATA),
            "InvalidLot",
            lot=lot,
        )
        assert not parties.holder.get_batch(batch_id_py(GTIN, lot)).registered
        assert parties.holder.gtin_holder(GTIN) == parties.chain.holder.address

    @pytest.mark.parametrize("lot", ["1", "L" * 20, "é" * 10])
    def test_lot_length_limits(self, parties: Parties, lot: str) -> None:
        # the limit is 20 bytes (UTF-8), not 20 characters
        b = register(parties.holder, lot=lot)
        assert parties.holder.get_batch(b.batch_id).registered

    def test_zero_root(self, parties: Parties) -> None:
        expect_revert(
            lambda: parties.holder.register_batch(GTIN, LOT, ZERO32, 5, METADATA),
            "InvalidRoot",
            root=ZERO32,
        )
        assert not parties.holder.get_batch(batch_id_py(GTIN, LOT)).registered

    @pytest.mark.parametrize("count", [0, 2**48, 2**256 - 1])
    def test_invalid_item_count(self, parties: Parties, count: int) -> None:
        root, _ = build_items(GTIN, SERIALS)
        expect_revert(
            lambda: parties.holder.register_batch(GTIN, LOT, root, count, METADATA),
            "InvalidItemCount",
            itemCount=count,
        )
        assert not parties.holder.get_batch(batch_id_py(GTIN, LOT)).registered
        assert parties.holder.gtin_holder(GTIN) == parties.chain.holder.address

    @pytest.mark.parametrize("count", [1, 2**48 - 1])
    def test_item_count_limits(self, parties: Parties, count: int) -> None:
        root, _ = build_items(GTIN, SERIALS)
        parties.holder.register_batch(GTIN, LOT, root, count, ZERO32)
        assert parties.holder.get_batch(batch_id_py(GTIN, LOT)).item_count == count

    @pytest.mark.parametrize("second", ["holder", "other"])
    def test_duplicate(self, parties: Parties, second: str) -> None:
        b = register(parties.holder)
        before = parties.holder.get_batch(b.batch_id)
        other_root, _ = build_items(GTIN, ("Z1", "Z2"))
        client: RegistryClient = getattr(parties, second)
        # the duplicate is reported before the GTIN's ownership is checked
        expect_revert(
            lambda: client.register_batch(GTIN, LOT, other_root, 2, METADATA),
            "BatchAlreadyRegistered",
            batchId=b.batch_id,
            holder=parties.chain.holder.address,
        )
        assert parties.holder.get_batch(b.batch_id) == before

    def test_gtin_owned_by_another_holder(self, parties: Parties) -> None:
        register(parties.holder)
        root, _ = build_items(GTIN, SERIALS)
        expect_revert(
            lambda: parties.other.register_batch(GTIN, "OTHER-LOT", root, 5, METADATA),
            "GtinOwnedByAnotherHolder",
            gtin=GTIN,
            owner=parties.chain.holder.address,
            caller=parties.chain.other_holder.address,
        )
        assert not parties.other.get_batch(batch_id_py(GTIN, "OTHER-LOT")).registered
        assert parties.other.gtin_holder(GTIN) == parties.chain.holder.address
        # the other holder's own GTINs are unaffected
        register(parties.other, gtin=OTHER_GTIN, lot="OTHER-LOT")
        assert parties.other.gtin_holder(OTHER_GTIN) == parties.chain.other_holder.address

    @pytest.mark.parametrize("caller", ["stranger", "admin"])
    def test_by_non_holder(self, parties: Parties, caller: str) -> None:
        client: RegistryClient = getattr(parties, caller)
        account = getattr(parties.chain, caller).address
        # the role is checked first, even before the (invalid) GTIN
        for gtin in (GTIN, "bad"):
            root, _ = build_items(GTIN, SERIALS)
            expect_revert(
                lambda g=gtin, r=root: client.register_batch(g, LOT, r, 5, METADATA),
                "AccessControlUnauthorizedAccount",
                account=account,
                neededRole=RIGHTS_HOLDER_ROLE,
            )
        assert not client.get_batch(batch_id_py(GTIN, LOT)).registered
        assert client.gtin_holder(GTIN) == parties.chain.holder.address

    def test_reverted_registration_sends_nothing(self, parties: Parties) -> None:
        w3 = parties.holder.w3
        holder = parties.chain.holder.address
        block, nonce = w3.eth.block_number, w3.eth.get_transaction_count(holder)
        with pytest.raises(ContractReverted):
            parties.holder.register_batch(GTIN, LOT, ZERO32, 5, METADATA)
        assert (w3.eth.block_number, w3.eth.get_transaction_count(holder)) == (block, nonce)


# ---------------------------------------------------------------------------------- statuses


class TestBatchStatus:
    @pytest.mark.parametrize("caller", ["holder"])
    def test_allowed(self, parties: Parties, batch: Batch, caller: str) -> None:
        client: RegistryClient = getattr(parties, caller)
        receipt = client.set_batch_status(batch.batch_id, Status.RECALLED)
        assert client.get_batch(batch.batch_id).status == Status.RECALLED
        assert events(client, receipt, "BatchStatusChanged") == [
            {
                "batchId": batch.batch_id,
                "previous": Status.ACTIVE,
                "status": Status.RECALLED,
                "by": getattr(parties.chain, caller).address,
            }
        ]
        # item statuses are separate from the batch's
        assert client.item_status(batch.batch_id, batch.items[0].key) == Status.ACTIVE

    # the registry admin changes no brand's statuses (issue 12)
    @pytest.mark.parametrize("caller", ["stranger", "other", "agency", "admin"])
    def test_refused(self, parties: Parties, batch: Batch, caller: str) -> None:
        if caller == "agency":  # customs may verify, not change statuses
            parties.admin.accredit_customs_agency(parties.chain.agency.address, "Border Force")
        client: RegistryClient = getattr(parties, caller)
        expect_revert(
            lambda: client.set_batch_status(batch.batch_id, Status.STOLEN),
            "NotBatchHolder",
            batchId=batch.batch_id,
            caller=client.sender.address,  # type: ignore[union-attr]
            holder=parties.chain.holder.address,
        )
        assert client.get_batch(batch.batch_id).status == Status.ACTIVE

    @pytest.mark.parametrize("caller", ["holder", "stranger"])
    def test_unknown_batch(self, parties: Parties, caller: str) -> None:
        unknown = batch_id_py(GTIN, "NEVER")
        client: RegistryClient = getattr(parties, caller)
        expect_revert(
            lambda: client.set_batch_status(unknown, Status.RECALLED),
            "UnknownBatch",
            batchId=unknown,
        )

    def test_unchanged(self, parties: Parties, batch: Batch) -> None:
        expect_revert(
            lambda: parties.holder.set_batch_status(batch.batch_id, Status.ACTIVE),
            "StatusUnchanged",
            batchId=batch.batch_id,
            itemKey=ZERO32,
            status=Status.ACTIVE,
        )
        parties.holder.set_batch_status(batch.batch_id, Status.STOLEN)
        expect_revert(
            lambda: parties.holder.set_batch_status(batch.batch_id, Status.STOLEN),
            "StatusUnchanged",
            batchId=batch.batch_id,
            itemKey=ZERO32,
            status=Status.STOLEN,
        )

    def test_destroyed_is_final(self, parties: Parties, batch: Batch) -> None:
        parties.holder.set_batch_status(batch.batch_id, Status.DESTROYED)
        for status in Status:  # DESTROYED itself: final is reported before unchanged
            for client in (parties.holder,):
                expect_revert(
                    lambda c=client, s=status: c.set_batch_status(batch.batch_id, s),
                    "StatusIsFinal",
                    batchId=batch.batch_id,
                    itemKey=ZERO32,
                    status=Status.DESTROYED,
                )
        assert parties.holder.get_batch(batch.batch_id).status == Status.DESTROYED

    def test_every_other_transition_allowed(self, parties: Parties, batch: Batch) -> None:
        path = [
            Status.STOLEN,
            Status.ACTIVE,  # a stolen batch found again
            Status.RECALLED,
            Status.DECOMMISSIONED,
            Status.ACTIVE,
            Status.DECOMMISSIONED,
            Status.STOLEN,
            Status.RECALLED,
            Status.DESTROYED,
        ]
        previous = Status.ACTIVE
        for status in path:
            receipt = parties.holder.set_batch_status(batch.batch_id, status)
            (event,) = events(parties.holder, receipt, "BatchStatusChanged")
            assert (event["previous"], event["status"]) == (previous, status)
            assert parties.holder.get_batch(batch.batch_id).status == status
            previous = status

    def test_status_out_of_enum_range(self, parties: Parties, batch: Batch) -> None:
        # the ABI decoder rejects an enum value past Decommissioned, with no error data
        with pytest.raises(ContractReverted) as caught:
            parties.holder.set_batch_status(batch.batch_id, 5)  # type: ignore[arg-type]
        assert caught.value.name == ""
        assert parties.holder.get_batch(batch.batch_id).status == Status.ACTIVE


class TestItemStatus:
    @pytest.mark.parametrize("caller", ["holder"])
    def test_allowed(self, parties: Parties, batch: Batch, caller: str) -> None:
        client: RegistryClient = getattr(parties, caller)
        item = batch.items[2]
        receipt = set_item(client, batch, item, Status.STOLEN)
        assert client.item_status(batch.batch_id, item.key) == Status.STOLEN
        assert events(client, receipt, "ItemStatusChanged") == [
            {
                "batchId": batch.batch_id,
                "itemKey": item.key,
                "leaf": item.leaf,
                "previous": Status.ACTIVE,
                "status": Status.STOLEN,
                "by": getattr(parties.chain, caller).address,
            }
        ]
        # only that item changed, and not the batch
        for other in batch.items:
            if other is not item:
                assert client.item_status(batch.batch_id, other.key) == Status.ACTIVE
        assert client.get_batch(batch.batch_id).status == Status.ACTIVE
        # the status is kept under the item key, not under the (salted) leaf
        assert client.item_status(batch.batch_id, item.leaf) == Status.ACTIVE

    def test_item_status_view_defaults(self, parties: Parties, batch: Batch) -> None:
        assert parties.stranger.item_status(batch.batch_id, batch.items[0].key) == Status.ACTIVE
        assert parties.stranger.item_status(ZERO32, ZERO32) == Status.ACTIVE
        assert parties.stranger.item_status(b"\x01" * 32, b"\x02" * 32) == Status.ACTIVE

    def test_single_item_batch_with_empty_proof(self, parties: Parties) -> None:
        b = register(parties.holder, lot="SINGLE", serials=("ONLY1",))
        (item,) = b.items
        assert item.proof == [] and item.leaf == b.root
        set_item(parties.holder, b, item, Status.RECALLED)
        assert parties.holder.item_status(b.batch_id, item.key) == Status.RECALLED

    @pytest.mark.parametrize("caller", ["stranger", "other"])
    def test_refused(self, parties: Parties, batch: Batch, caller: str) -> None:
        client: RegistryClient = getattr(parties, caller)
        item = batch.items[0]
        for proof in (item.proof, []):  # authority is checked before the proof
            expect_revert(
                lambda p=proof: set_item(client, batch, item, Status.STOLEN, proof=p),
                "NotBatchHolder",
                batchId=batch.batch_id,
                caller=client.sender.address,  # type: ignore[union-attr]
                holder=parties.chain.holder.address,
            )
        assert client.item_status(batch.batch_id, item.key) == Status.ACTIVE

    @pytest.mark.parametrize("caller", ["holder", "stranger"])
    def test_unknown_batch(self, parties: Parties, batch: Batch, caller: str) -> None:
        client: RegistryClient = getattr(parties, caller)
        item = batch.items[0]
        expect_revert(
            lambda: client.set_item_status(
                GTIN, "NEVER", item.serial, item.salt, item.proof, Status.STOLEN
            ),
            "UnknownBatch",
            batchId=batch_id_py(GTIN, "NEVER"),
        )

    def test_bad_proof(self, parties: Parties, batch: Batch) -> None:
        item, neighbour = batch.items[0], batch.items[1]
        cases = [
            (item.serial, item.salt, neighbour.proof),  # another item's proof
            (item.serial, item.salt, []),  # no proof in a five-item tree
            (item.serial, item.salt, item.proof[:-1]),  # truncated proof
            (item.serial, b"\x01" * 32, item.proof),  # wrong salt
            (item.serial, ZERO32, item.proof),  # no salt
            ("SN9999", item.salt, item.proof),  # a serial that is not in the batch
        ]
        for serial, salt, proof in cases:
            leaf = merkle.leaf_hash(GTIN, serial, salt)
            expect_revert(
                lambda sr=serial, sl=salt, p=proof: parties.holder.set_item_status(
                    GTIN, LOT, sr, sl, p, Status.STOLEN
                ),
                "ItemNotInBatch",
                batchId=batch.batch_id,
                leaf=leaf,
            )
            key = item_key_py(GTIN, serial)
            assert parties.holder.item_status(batch.batch_id, key) == Status.ACTIVE

    def test_proof_of_another_lot(self, parties: Parties, batch: Batch) -> None:
        # a genuine item of one lot cannot be given a status in another lot of the same GTIN
        second = register(parties.holder, lot="LOT-2025-B", serials=("B1", "B2", "B3"))
        item = batch.items[0]
        expect_revert(
            lambda: parties.holder.set_item_status(
                GTIN, second.lot, item.serial, item.salt, item.proof, Status.STOLEN
            ),
            "ItemNotInBatch",
            batchId=second.batch_id,
            leaf=item.leaf,
        )

    def test_unchanged(self, parties: Parties, batch: Batch) -> None:
        item = batch.items[1]
        expect_revert(
            lambda: set_item(parties.holder, batch, item, Status.ACTIVE),
            "StatusUnchanged",
            batchId=batch.batch_id,
            itemKey=item.key,
            status=Status.ACTIVE,
        )
        set_item(parties.holder, batch, item, Status.RECALLED)
        expect_revert(
            lambda: set_item(parties.holder, batch, item, Status.RECALLED),
            "StatusUnchanged",
            batchId=batch.batch_id,
            itemKey=item.key,
            status=Status.RECALLED,
        )

    def test_destroyed_is_final(self, parties: Parties, batch: Batch) -> None:
        item = batch.items[3]
        set_item(parties.holder, batch, item, Status.DESTROYED)
        for status in Status:  # DESTROYED itself: final is reported before unchanged
            for client in (parties.holder,):
                expect_revert(
                    lambda c=client, s=status: set_item(c, batch, item, s),
                    "StatusIsFinal",
                    batchId=batch.batch_id,
                    itemKey=item.key,
                    status=Status.DESTROYED,
                )
        assert parties.holder.item_status(batch.batch_id, item.key) == Status.DESTROYED
        # other items of the batch are unaffected
        set_item(parties.holder, batch, batch.items[4], Status.RECALLED)

    def test_stolen_then_reinstated(self, parties: Parties, batch: Batch) -> None:
        item = batch.items[0]
        set_item(parties.holder, batch, item, Status.STOLEN)
        receipt = set_item(parties.holder, batch, item, Status.ACTIVE)
        assert parties.holder.item_status(batch.batch_id, item.key) == Status.ACTIVE
        (event,) = events(parties.holder, receipt, "ItemStatusChanged")
        assert (event["previous"], event["status"]) == (Status.STOLEN, Status.ACTIVE)

    def test_same_item_in_another_batch_is_separate(self, parties: Parties, batch: Batch) -> None:
        # the same (gtin, serial) registered in a second lot has its own status there
        second = register(parties.holder, lot="LOT-2025-B")
        item = batch.items[0]
        assert second.items[0].key == item.key
        set_item(parties.holder, batch, item, Status.STOLEN)
        assert parties.holder.item_status(second.batch_id, item.key) == Status.ACTIVE
        assert parties.holder.item_status(batch.batch_id, item.key) == Status.STOLEN


# ---------------------------------------------------------------------------------- views


class TestViews:
    @pytest.mark.parametrize(
        ("gtin", "serial"),
        [(GTIN, "SN0001"), (GTIN, ""), (OTHER_GTIN, "ÄÖÜ/ß-ünïcode"), ("x", "y" * 100)],
    )
    def test_leaf_hash(self, chain: Any, gtin: str, serial: str) -> None:
        for salt in (ZERO32, b"\xff" * 32, merkle.item_salt(BATCH_SECRET, gtin, serial)):
            assert chain.registry.leaf_hash(gtin, serial, salt) == merkle.leaf_hash(
                gtin, serial, salt
            )

    @pytest.mark.parametrize(
        ("gtin", "serial", "lot"),
        [(GTIN, "SN0001", LOT), ("", "", ""), (OTHER_GTIN, "ÄÖÜ", "lot/ß")],
    )
    def test_tag_digest(self, chain: Any, gtin: str, serial: str, lot: str) -> None:
        expected = tags.tag_digest(chain.domain.separator, gtin, serial, lot)
        assert chain.registry.tag_digest(gtin, serial, lot) == expected

    def test_domain_separator(self, chain: Any) -> None:
        assert chain.registry.domain_separator() == chain.domain.separator
        assert chain.domain.chain_id == chain.registry.w3.eth.chain_id

    def test_domain_differs_per_deployment(self, chain: Any) -> None:
        sender = TransactionSender(
            chain.registry.w3, chain.admin, chain.registry.decode_revert, backoff=0.05
        )
        second = RegistryClient.deploy(sender)
        assert second.address != chain.registry.address
        assert second.domain_separator() != chain.registry.domain_separator()
        assert second.tag_digest(GTIN, "S", LOT) != chain.registry.tag_digest(GTIN, "S", LOT)

    def test_eip712_domain(self, chain: Any) -> None:
        fields, name, version, chain_id, contract, salt, extensions = (
            chain.registry.contract.functions.eip712Domain().call()
        )
        assert fields == b"\x0f"  # name, version, chainId, verifyingContract
        assert (name, version) == (tags.DOMAIN_NAME, tags.DOMAIN_VERSION) == ("BorderLedger", "1")
        assert chain_id == chain.registry.chain_id == chain.domain.chain_id
        assert contract == chain.registry.address
        assert bytes(salt) == ZERO32
        assert extensions == []
        assert chain.domain.as_json() == {
            "name": name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": contract,
        }

    def test_gtin_holder(self, parties: Parties) -> None:
        assert parties.stranger.gtin_holder(GTIN_CHECK_ZERO) == ZERO_ADDRESS  # never bound
        register(parties.holder)
        register(parties.other, gtin=OTHER_GTIN)
        assert parties.stranger.gtin_holder(GTIN) == parties.chain.holder.address
        assert parties.stranger.gtin_holder(OTHER_GTIN) == parties.chain.other_holder.address
        assert parties.stranger.gtin_holder(GTIN[1:]) == ZERO_ADDRESS

    def test_unknown_records(self, chain: Any) -> None:
        registry = chain.registry
        batch = registry.get_batch(ZERO32)
        assert not batch.registered
        assert (batch.root, batch.holder, batch.item_count, batch.registered_at) == (
            "0x" + ZERO32.hex(),
            ZERO_ADDRESS,
            0,
            0,
        )
        assert batch.status == Status.ACTIVE
        key = registry.signer_key(chain.stranger.address)
        assert (key.holder, key.added_at, key.revoked_at) == (ZERO_ADDRESS, 0, 0)
        assert not key.registered and not key.active
        assert registry.rights_holder(chain.stranger.address).accredited is False
        assert registry.customs_agency(chain.stranger.address) == ""

    @pytest.mark.parametrize(
        ("gtin", "serial"), [(GTIN, "SN0001"), ("", ""), (OTHER_GTIN, "ÄÖÜ/ß"), ("x", "y" * 100)]
    )
    def test_item_key_of(self, chain: Any, gtin: str, serial: str) -> None:
        expected = item_key_py(gtin, serial)
        assert chain.registry.item_key_of(gtin, serial) == expected
        assert ledger_batch.item_key_of(gtin, serial) == expected

    def test_is_item_in_batch(self, parties: Parties, batch: Batch) -> None:
        client = parties.stranger
        g, lot = batch.gtin, batch.lot
        for item in batch.items:
            assert client.is_item_in_batch(g, lot, item.serial, item.salt, item.proof)
        first, second = batch.items[0], batch.items[1]
        assert not client.is_item_in_batch(g, lot, first.serial, first.salt, second.proof)
        assert not client.is_item_in_batch(g, lot, first.serial, first.salt, [])
        assert not client.is_item_in_batch(g, lot, first.serial, second.salt, first.proof)
        assert not client.is_item_in_batch(g, lot, second.serial, first.salt, first.proof)
        assert not client.is_item_in_batch(g, "NEVER", first.serial, first.salt, first.proof)
        # an unregistered batch has a zero root: nothing may match it
        assert not client.is_item_in_batch(g, "NEVER", "", ZERO32, [])

    def test_is_item_in_batch_refuses_inner_nodes(self, parties: Parties, batch: Batch) -> None:
        """The leaf is computed from the values on chain, so neither the root nor an inner
        node (with the rest of a proof) can be passed off as an item."""
        client = parties.stranger
        item = batch.items[0]
        inner = merkle.node_hash(item.leaf, item.proof[0])
        assert merkle.verify_proof(batch.root, inner, item.proof[1:])  # as a raw leaf it would pass
        assert not client.is_item_in_batch(
            batch.gtin, batch.lot, item.serial, inner, item.proof[1:]
        )
        assert not client.is_item_in_batch(batch.gtin, batch.lot, item.serial, batch.root, [])

    def test_is_signer_valid_for(self, parties: Parties) -> None:
        holder, other = parties.chain.holder.address, parties.chain.other_holder.address
        signer = parties.signer.address
        client = parties.stranger
        assert not client.is_signer_valid_for(signer, holder, 0)  # unknown key
        # an unknown key "belongs" to the zero address, which must not count
        assert not client.is_signer_valid_for(signer, ZERO_ADDRESS, 10**9)

        added = block_time(client, parties.holder.add_signer(signer))
        for t in (0, added - 1, added, added + 10**6, 2**40 - 1):
            assert client.is_signer_valid_for(signer, holder, t)  # active: every time
        assert not client.is_signer_valid_for(signer, other, added)
        assert not client.is_signer_valid_for(holder, holder, added)  # the holder's own account

        advance_time(parties.chain)
        revoked = block_time(client, parties.holder.revoke_signer(signer))
        assert added < revoked
        assert not client.is_signer_valid_for(signer, holder, added - 1)
        assert client.is_signer_valid_for(signer, holder, added)
        assert client.is_signer_valid_for(signer, holder, revoked - 1)
        assert not client.is_signer_valid_for(signer, holder, revoked)
        assert not client.is_signer_valid_for(signer, holder, 2**40 - 1)
        assert not client.is_signer_valid_for(signer, other, added)


class TestCheckTag:
    def sign(self, parties: Parties, batch: Batch, item: Item, key: bytes | None = None) -> bytes:
        return parties.chain.tag_signer(key).sign(batch.gtin, item.serial, batch.lot)

    def check(
        self,
        client: RegistryClient,
        batch: Batch,
        item: Item,
        signature: bytes | None,
        *,
        proof: bool = True,
        lot: str | None = None,
    ) -> Any:
        return client.check_tag(
            batch.gtin,
            item.serial,
            lot or batch.lot,
            signature,
            item.salt if proof else None,
            item.proof if proof else (),
        )

    def test_genuine(self, parties: Parties, batch: Batch) -> None:
        for item in batch.items:
            check = self.check(parties.stranger, batch, item, self.sign(parties, batch, item))
            assert check.batch_id == batch.hex_id
            assert check.batch_registered
            assert check.holder == parties.chain.holder.address
            assert check.signer == parties.signer.address
            assert check.signature_valid
            assert check.in_batch
            assert check.batch_status == check.item_status == Status.ACTIVE
            assert check.effective_status == Status.ACTIVE

    def test_unsigned(self, parties: Parties, batch: Batch) -> None:
        item = batch.items[0]
        for signature in (None, b""):
            check = self.check(parties.stranger, batch, item, signature)
            assert check.signer == ZERO_ADDRESS
            assert not check.signature_valid
            assert check.batch_registered
            assert check.in_batch

    def test_signed_without_membership_check(self, parties: Parties, batch: Batch) -> None:
        item = batch.items[0]
        check = self.check(
            parties.stranger, batch, item, self.sign(parties, batch, item), proof=False
        )
        assert check.signature_valid
        assert not check.in_batch

    def test_membership_failures(self, parties: Parties, batch: Batch) -> None:
        item, other = batch.items[0], batch.items[1]
        client = parties.stranger
        cases = [
            (item.serial, b"\x01" * 32, item.proof),  # wrong salt
            (item.serial, item.salt, other.proof),  # wrong proof
            (item.serial, item.salt, []),  # salt without proof
            ("SN9999", item.salt, item.proof),  # serial not in the batch
        ]
        for serial, salt, proof in cases:
            check = client.check_tag(GTIN, serial, LOT, None, salt, proof)
            assert check.batch_registered
            assert not check.in_batch
            assert check.item_status == Status.ACTIVE

    def test_wrong_lot(self, parties: Parties, batch: Batch) -> None:
        item = batch.items[0]
        # a tag of an unregistered lot, even correctly signed by the holder's active key
        signature = parties.signer.sign(GTIN, item.serial, "FORGED-LOT")
        check = self.check(parties.stranger, batch, item, signature, lot="FORGED-LOT")
        assert check.batch_id == "0x" + batch_id_py(GTIN, "FORGED-LOT").hex()
        assert not check.batch_registered
        assert check.holder == ZERO_ADDRESS
        assert check.signer == parties.signer.address
        assert not check.signature_valid
        assert not check.in_batch
        # a genuine signature of the real lot presented with another lot recovers garbage
        genuine = self.sign(parties, batch, item)
        check = self.check(parties.stranger, batch, item, genuine, lot="FORGED-LOT")
        assert check.signer not in (ZERO_ADDRESS, parties.signer.address)
        assert not check.signature_valid

    def test_signature_of_another_serial(self, parties: Parties, batch: Batch) -> None:
        item, other = batch.items[0], batch.items[1]
        check = self.check(parties.stranger, batch, item, self.sign(parties, batch, other))
        assert check.signer != parties.signer.address
        assert not check.signature_valid
        assert check.in_batch

    def test_unknown_key(self, parties: Parties, batch: Batch) -> None:
        item = batch.items[0]
        key = dev_private_key(8)
        check = self.check(parties.stranger, batch, item, self.sign(parties, batch, item, key))
        assert check.signer == parties.chain.tag_signer(key).address
        assert not check.signature_valid
        assert check.in_batch

    def test_holder_account_key_is_not_a_signer(self, parties: Parties, batch: Batch) -> None:
        item = batch.items[0]
        key = bytes(parties.chain.holder.key)
        check = self.check(parties.stranger, batch, item, self.sign(parties, batch, item, key))
        assert check.signer == parties.chain.holder.address
        assert not check.signature_valid

    def test_another_holders_key(self, parties: Parties, batch: Batch) -> None:
        key = dev_private_key(9)
        other_signer = parties.chain.tag_signer(key)
        parties.other.add_signer(other_signer.address)
        assert parties.other.signer_key(other_signer.address).holder == (
            parties.chain.other_holder.address
        )
        item = batch.items[0]
        check = self.check(parties.stranger, batch, item, self.sign(parties, batch, item, key))
        assert check.signer == other_signer.address
        assert not check.signature_valid
        assert check.holder == parties.chain.holder.address

    def test_malleable_high_s(self, parties: Parties, batch: Batch) -> None:
        item = batch.items[0]
        signature = self.sign(parties, batch, item)
        assert int.from_bytes(signature[32:64], "big") <= tags.SECP256K1_HALF_N
        twin = high_s(signature)
        assert twin != signature and twin[64] in (27, 28)
        check = self.check(parties.stranger, batch, item, twin)
        assert check.signer == ZERO_ADDRESS
        assert not check.signature_valid
        assert check.in_batch
        assert self.check(parties.stranger, batch, item, signature).signature_valid

    def test_malformed_signatures_never_revert(self, parties: Parties, batch: Batch) -> None:
        item = batch.items[0]
        signature = self.sign(parties, batch, item)
        r, s, v = signature[:32], signature[32:64], signature[64]
        malformed = [
            signature[:64],  # 64 bytes (EIP-2098 compact is not accepted)
            signature + b"\x00",  # 66 bytes
            b"\x1b",  # 1 byte
            b"\x00" * 65,  # all zero
            r + s + bytes([v - 27]),  # v as 0/1
            r + s + bytes([v + 2]),  # v of 29/30
            ZERO32 + s + bytes([v]),  # r = 0
            r + ZERO32 + bytes([v]),  # s = 0
        ]
        for bad in malformed:
            check = self.check(parties.stranger, batch, item, bad)
            assert check.signer == ZERO_ADDRESS, bad.hex()
            assert not check.signature_valid
            assert check.in_batch and check.batch_registered

    def test_key_revoked_after_batch_registration(self, parties: Parties, batch: Batch) -> None:
        advance_time(parties.chain)
        parties.holder.revoke_signer(parties.signer.address)
        item = batch.items[0]
        check = self.check(parties.stranger, batch, item, self.sign(parties, batch, item))
        assert check.signature_valid
        assert check.signer == parties.signer.address
        record = parties.stranger.get_batch(batch.batch_id)
        assert parties.stranger.is_signer_valid_for(
            parties.signer.address, record.holder, record.registered_at
        )

    def test_batch_registered_after_key_revoked(self, parties: Parties, batch: Batch) -> None:
        advance_time(parties.chain)
        parties.holder.revoke_signer(parties.signer.address)
        advance_time(parties.chain)
        later = register(parties.holder, lot="LOT-LATER")
        item = later.items[0]
        check = self.check(parties.stranger, later, item, self.sign(parties, later, item))
        assert check.signer == parties.signer.address
        assert not check.signature_valid
        assert check.in_batch
        # the earlier batch still verifies
        old = batch.items[0]
        assert self.check(parties.stranger, batch, old, self.sign(parties, batch, old)).in_batch
        assert self.check(
            parties.stranger, batch, old, self.sign(parties, batch, old)
        ).signature_valid

    def test_key_added_after_batch_registration(self, parties: Parties) -> None:
        b = register(parties.holder)
        advance_time(parties.chain)
        key = dev_private_key(7)
        late = parties.chain.tag_signer(key)
        parties.holder.add_signer(late.address)
        item = b.items[0]
        check = self.check(parties.stranger, b, item, self.sign(parties, b, item, key))
        assert check.signer == late.address
        assert check.signature_valid  # an active key may sign tags of earlier batches
        # once revoked, it was never active when the batch was registered
        advance_time(parties.chain)
        parties.holder.revoke_signer(late.address)
        check = self.check(parties.stranger, b, item, self.sign(parties, b, item, key))
        assert not check.signature_valid

    def test_statuses(self, parties: Parties, batch: Batch) -> None:
        client = parties.stranger
        stolen, plain = batch.items[0], batch.items[1]
        set_item(parties.holder, batch, stolen, Status.STOLEN)

        check = self.check(client, batch, stolen, self.sign(parties, batch, stolen))
        assert (check.batch_status, check.item_status) == (Status.ACTIVE, Status.STOLEN)
        assert check.effective_status == Status.STOLEN
        assert check.signature_valid and check.in_batch
        # the item status needs no salt: a verifier holding only the tag sees it
        for signature in (None, self.sign(parties, batch, stolen)):
            check = self.check(client, batch, stolen, signature, proof=False)
            assert not check.in_batch
            assert check.item_status == Status.STOLEN
        check = client.check_tag(GTIN, stolen.serial, LOT, None, b"\x01" * 32, stolen.proof)
        assert (check.in_batch, check.item_status) == (False, Status.STOLEN)
        # the status belongs to the (gtin, serial) of that lot only
        assert client.check_tag(GTIN, stolen.serial, "OTHER").item_status == Status.ACTIVE
        assert self.check(client, batch, plain, None).item_status == Status.ACTIVE

        parties.holder.set_batch_status(batch.batch_id, Status.RECALLED)
        check = self.check(client, batch, plain, None)
        assert (check.batch_status, check.item_status) == (Status.RECALLED, Status.ACTIVE)
        assert check.effective_status == Status.RECALLED
        check = self.check(client, batch, stolen, None)
        assert (check.batch_status, check.item_status) == (Status.RECALLED, Status.STOLEN)
        assert check.effective_status == Status.STOLEN
        assert client.item_status(batch.batch_id, stolen.key) == Status.STOLEN
        assert client.get_batch(batch.batch_id).status == Status.RECALLED

        set_item(parties.holder, batch, stolen, Status.ACTIVE)
        parties.holder.set_batch_status(batch.batch_id, Status.DESTROYED)
        check = self.check(client, batch, stolen, self.sign(parties, batch, stolen))
        assert (check.batch_status, check.item_status) == (Status.DESTROYED, Status.ACTIVE)
        assert check.effective_status == Status.DESTROYED
        assert check.signature_valid  # a destroyed batch's tags are still genuine

    def test_unregistered_batch_with_proof(self, parties: Parties) -> None:
        _, items = build_items(GTIN, SERIALS)
        item = items[0]
        check = parties.stranger.check_tag(GTIN, item.serial, LOT, None, item.salt, item.proof)
        assert not check.batch_registered and not check.in_batch
        assert check.batch_status == check.item_status == Status.ACTIVE

    def test_matches_offline_verification(self, parties: Parties, batch: Batch) -> None:
        # the on-chain signer is the one `ledger.tags.recover_signer` finds off-chain
        item = batch.items[0]
        signature = self.sign(parties, batch, item)
        digest = parties.stranger.tag_digest(GTIN, item.serial, LOT)
        assert tags.recover_signer(digest, signature) == parties.signer.address
        for bad in (high_s(signature), signature[:64]):
            with pytest.raises(tags.InvalidSignature):
                tags.recover_signer(digest, bad)
            assert self.check(parties.stranger, batch, item, bad).signer == ZERO_ADDRESS
