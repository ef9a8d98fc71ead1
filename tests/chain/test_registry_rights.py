"""Rights on chain (issue 12), on Anvil and Hardhat: GTINs bound to a holder by the registry
admin, a revoked rights holder losing its powers and its keys, the admin kept away from a
brand's statuses, and the two-step admin transfer.

Each defect of the issue has a test here that failed on the registry before the fix:
`test_unbound_gtin_cannot_be_claimed` (first come, first served), `test_revoked_holder_*`
(a revoked holder kept valid signers and powers), `TestAdminAndStatuses` (the admin changed
any brand's statuses, `Destroyed` included).
"""

from __future__ import annotations

import pytest

from chain.contract import ADMIN_ROLE, RIGHTS_HOLDER_ROLE
from ledger.models import ZERO_ADDRESS, Status
from ledger.verdicts import Reason, signer_reason
from tests.chain.test_registry_contract import (
    GTIN,
    GTIN_CHECK_ZERO,
    LOT,
    METADATA,
    OTHER_GTIN,
    Batch,
    Parties,
    advance_time,
    block_time,
    build_items,
    events,
    expect_revert,
    register,
    set_item,
)

FREE_GTIN = GTIN_CHECK_ZERO  # bound to nobody by the fixtures
ADMIN_DELAY = 2 * 24 * 3600


class TestGtinBinding:
    def test_unbound_gtin_cannot_be_claimed(self, parties: Parties) -> None:
        """Before: the first holder to register a GTIN owned it. Now nobody registers a GTIN
        the admin has not bound, and the error names it."""
        root, _ = build_items(FREE_GTIN, ("A",))
        expect_revert(
            lambda: parties.other.register_batch(FREE_GTIN, LOT, root, 1, METADATA),
            "GtinNotBound",
            gtin=FREE_GTIN,
        )
        assert parties.other.gtin_holder(FREE_GTIN) == ZERO_ADDRESS

    def test_bind(self, parties: Parties) -> None:
        holder = parties.chain.holder.address
        receipt = parties.admin.bind_gtin(FREE_GTIN, holder)
        assert parties.stranger.gtin_holder(FREE_GTIN) == holder
        (event,) = events(parties.admin, receipt, "GtinBound")
        assert (event["gtin"], event["holder"]) == (FREE_GTIN, holder)
        register(parties.holder, gtin=FREE_GTIN)
        # another holder's batch of it names the owner and the caller
        root, _ = build_items(FREE_GTIN, ("A",))
        expect_revert(
            lambda: parties.other.register_batch(FREE_GTIN, "L2", root, 1, METADATA),
            "GtinOwnedByAnotherHolder",
            gtin=FREE_GTIN,
            owner=holder,
            caller=parties.chain.other_holder.address,
        )

    def test_bind_refusals(self, parties: Parties) -> None:
        holder, other = parties.chain.holder.address, parties.chain.other_holder.address
        for client in (parties.holder, parties.stranger):
            expect_revert(
                lambda c=client: c.bind_gtin(FREE_GTIN, c.sender.address),
                "AccessControlUnauthorizedAccount",
                account=client.sender.address,  # type: ignore[union-attr]
                neededRole=ADMIN_ROLE,
            )
        expect_revert(
            lambda: parties.admin.bind_gtin(GTIN, other),
            "GtinAlreadyBound",
            gtin=GTIN,
            owner=holder,
        )
        expect_revert(
            lambda: parties.admin.bind_gtin(FREE_GTIN[:-1] + "1", holder),
            "InvalidGtin",
            gtin=FREE_GTIN[:-1] + "1",
        )
        stranger = parties.chain.stranger.address
        expect_revert(
            lambda: parties.admin.bind_gtin(FREE_GTIN, stranger),
            "NotRightsHolder",
            account=stranger,
        )
        assert parties.admin.gtin_holder(GTIN) == holder
        assert parties.admin.gtin_holder(FREE_GTIN) == ZERO_ADDRESS

    def test_reassign(self, parties: Parties, batch: Batch) -> None:
        holder, other = parties.chain.holder.address, parties.chain.other_holder.address
        receipt = parties.admin.reassign_gtin(GTIN, other)
        (event,) = events(parties.admin, receipt, "GtinReassigned")
        assert (event["gtin"], event["previous"], event["holder"]) == (GTIN, holder, other)
        assert parties.stranger.gtin_holder(GTIN) == other
        # the earlier batch keeps its holder, who still manages its statuses...
        assert parties.stranger.get_batch(batch.batch_id).holder == holder
        parties.holder.set_batch_status(batch.batch_id, Status.RECALLED)
        # ...but new batches of the GTIN are the new owner's only
        root, _ = build_items(GTIN, ("N1",))
        expect_revert(
            lambda: parties.holder.register_batch(GTIN, "NEW", root, 1, METADATA),
            "GtinOwnedByAnotherHolder",
            gtin=GTIN,
            owner=other,
            caller=holder,
        )
        register(parties.other, lot="NEW")

    def test_reassign_refusals(self, parties: Parties) -> None:
        other = parties.chain.other_holder.address
        expect_revert(
            lambda: parties.holder.reassign_gtin(GTIN, parties.chain.holder.address),
            "AccessControlUnauthorizedAccount",
            account=parties.chain.holder.address,
            neededRole=ADMIN_ROLE,
        )
        expect_revert(
            lambda: parties.admin.reassign_gtin(FREE_GTIN, other), "GtinNotBound", gtin=FREE_GTIN
        )
        expect_revert(
            lambda: parties.admin.reassign_gtin(OTHER_GTIN, other),
            "GtinAlreadyBound",
            gtin=OTHER_GTIN,
            owner=other,
        )
        stranger = parties.chain.stranger.address
        expect_revert(
            lambda: parties.admin.reassign_gtin(GTIN, stranger), "NotRightsHolder", account=stranger
        )
        assert parties.admin.gtin_holder(GTIN) == parties.chain.holder.address


class TestHolderRevocation:
    def test_revoked_holder_keys_vouch_only_for_earlier_batches(
        self, parties: Parties, batch: Batch
    ) -> None:
        """Before: `isSignerValidFor` ignored the holder's revocation, so a revoked holder's
        key was valid for any batch time. Now it is revoked with its holder."""
        holder, signer = parties.chain.holder.address, parties.signer.address
        registered_at = parties.stranger.get_batch(batch.batch_id).registered_at
        advance_time(parties.chain)
        receipt = parties.admin.revoke_rights_holder(holder)
        revoked_at = block_time(parties.admin, receipt)
        (event,) = events(parties.admin, receipt, "RightsHolderRevoked")
        assert event == {
            "holder": holder,
            "revokedAt": revoked_at,
            "by": parties.chain.admin.address,
        }
        record = parties.stranger.rights_holder(holder)
        assert (record.accredited, record.revoked_at) == (False, revoked_at)
        # the earlier batch stays as it was; nothing registered from the revocation on is vouched
        assert parties.stranger.is_signer_valid_for(signer, holder, registered_at)
        assert not parties.stranger.is_signer_valid_for(signer, holder, revoked_at)
        assert not parties.stranger.is_signer_valid_for(signer, holder, revoked_at + 10**6)
        item = batch.items[0]
        tag = parties.signer.sign(GTIN, item.serial, LOT)
        check = parties.stranger.check_tag(GTIN, item.serial, LOT, tag, item.salt, item.proof)
        assert check.signature_valid and check.in_batch
        # the verdict engine's rule agrees with the contract on both sides of the revocation
        key = parties.stranger.signer_key(signer)
        for at in (registered_at, revoked_at, revoked_at + 1):
            engine = signer_reason(key, holder, at, revoked_at) == Reason.SIGNATURE_VALID
            assert engine == parties.stranger.is_signer_valid_for(signer, holder, at), at

    def test_revoked_holder_loses_every_power(self, parties: Parties, batch: Batch) -> None:
        holder = parties.chain.holder.address
        receipt = parties.admin.revoke_rights_holder(holder)
        revoked_at = block_time(parties.admin, receipt)
        root, _ = build_items(GTIN, ("X",))
        expect_revert(
            lambda: parties.holder.register_batch(GTIN, "AFTER", root, 1, METADATA),
            "AccessControlUnauthorizedAccount",
            account=holder,
            neededRole=RIGHTS_HOLDER_ROLE,
        )
        expect_revert(
            lambda: parties.holder.add_signer(parties.chain.stranger.address),
            "AccessControlUnauthorizedAccount",
            account=holder,
            neededRole=RIGHTS_HOLDER_ROLE,
        )
        for action in (
            lambda: parties.holder.set_batch_status(batch.batch_id, Status.DESTROYED),
            lambda: set_item(parties.holder, batch, batch.items[0], Status.STOLEN),
        ):
            expect_revert(action, "RightsHolderIsRevoked", holder=holder, revokedAt=revoked_at)
        assert parties.stranger.get_batch(batch.batch_id).status == Status.ACTIVE
        # revocation is final: no re-accreditation, no GTIN bound to it, no second revocation
        expect_revert(
            lambda: parties.admin.accredit_rights_holder(holder, "Acme again", "TMK"),
            "RightsHolderIsRevoked",
            holder=holder,
            revokedAt=revoked_at,
        )
        expect_revert(
            lambda: parties.admin.bind_gtin(FREE_GTIN, holder),
            "RightsHolderIsRevoked",
            holder=holder,
            revokedAt=revoked_at,
        )
        expect_revert(
            lambda: parties.admin.revoke_rights_holder(holder), "NotRightsHolder", account=holder
        )
        # its GTIN moves to another holder by the admin's reassignment
        parties.admin.reassign_gtin(GTIN, parties.chain.other_holder.address)
        register(parties.other, lot="SUCCESSOR")

    def test_revoke_needs_admin(self, parties: Parties) -> None:
        holder = parties.chain.holder.address
        expect_revert(
            lambda: parties.other.revoke_rights_holder(holder),
            "AccessControlUnauthorizedAccount",
            account=parties.chain.other_holder.address,
            neededRole=ADMIN_ROLE,
        )
        assert parties.stranger.rights_holder(holder).accredited

    @pytest.mark.parametrize("how", ["revokeRole", "renounceRole"])
    def test_role_loss_is_a_revocation(self, parties: Parties, how: str) -> None:
        """AccessControl's own ways out of the role record the revocation too."""
        holder = parties.chain.holder.address
        if how == "revokeRole":
            receipt = parties.admin.revoke_role(RIGHTS_HOLDER_ROLE, holder)
        else:
            fn = parties.holder.contract.functions.renounceRole(RIGHTS_HOLDER_ROLE, holder)
            receipt = parties.holder._transact(fn)
        (event,) = events(parties.admin, receipt, "RightsHolderRevoked")
        assert event["holder"] == holder
        assert parties.stranger.rights_holder(holder).revoked_at == block_time(
            parties.admin, receipt
        )


class TestAdminAndStatuses:
    def test_admin_cannot_destroy_a_brands_batch(self, parties: Parties, batch: Batch) -> None:
        """Before: `_requireBatchAuthority` let the admin set any status, `Destroyed` too."""
        admin = parties.chain.admin.address
        holder = parties.chain.holder.address
        expect_revert(
            lambda: parties.admin.set_batch_status(batch.batch_id, Status.DESTROYED),
            "NotBatchHolder",
            batchId=batch.batch_id,
            caller=admin,
            holder=holder,
        )
        expect_revert(
            lambda: set_item(parties.admin, batch, batch.items[0], Status.DESTROYED),
            "NotBatchHolder",
            batchId=batch.batch_id,
            caller=admin,
            holder=holder,
        )
        assert parties.stranger.get_batch(batch.batch_id).status == Status.ACTIVE

    def test_admin_moves_in_two_steps_with_a_delay(self, parties: Parties) -> None:
        fns = parties.admin.contract.functions
        admin, successor = parties.chain.admin.address, parties.chain.stranger.address
        assert fns.defaultAdmin().call() == admin
        assert fns.owner().call() == admin
        assert fns.defaultAdminDelay().call() == ADMIN_DELAY
        assert fns.ADMIN_TRANSFER_DELAY().call() == ADMIN_DELAY
        assert fns.defaultAdminDelayIncreaseWait().call() > 0
        # granting the admin role directly is refused
        expect_revert(
            lambda: parties.admin.grant_role(ADMIN_ROLE, successor),
            "AccessControlEnforcedDefaultAdminRules",
        )
        parties.admin._transact(fns.beginDefaultAdminTransfer(successor))
        pending, schedule = fns.pendingDefaultAdmin().call()
        assert pending == successor
        accept = parties.stranger.contract.functions.acceptDefaultAdminTransfer()
        expect_revert(
            lambda: parties.stranger._transact(accept),
            "AccessControlEnforcedDefaultAdminDelay",
            schedule=schedule,
        )
        # a transfer can be cancelled and begun again
        parties.admin._transact(fns.cancelDefaultAdminTransfer())
        assert fns.pendingDefaultAdmin().call()[0] == ZERO_ADDRESS
        parties.admin._transact(fns.beginDefaultAdminTransfer(successor))
        advance_time(parties.chain, ADMIN_DELAY + 1)
        parties.stranger._transact(accept)
        assert fns.defaultAdmin().call() == successor
        assert not parties.admin.has_role(ADMIN_ROLE, admin)
        expect_revert(
            lambda: parties.admin.bind_gtin(FREE_GTIN, parties.chain.holder.address),
            "AccessControlUnauthorizedAccount",
            account=admin,
            neededRole=ADMIN_ROLE,
        )
        parties.stranger.bind_gtin(FREE_GTIN, parties.chain.holder.address)

    def test_admin_delay_change_is_scheduled(self, parties: Parties) -> None:
        fns = parties.admin.contract.functions
        parties.admin._transact(fns.changeDefaultAdminDelay(3600))
        new_delay, _ = fns.pendingDefaultAdminDelay().call()
        assert new_delay == 3600
        assert fns.defaultAdminDelay().call() == ADMIN_DELAY  # not yet in force
        parties.admin._transact(fns.rollbackDefaultAdminDelay())
        assert fns.pendingDefaultAdminDelay().call()[0] == 0
        expect_revert(
            lambda: parties.other._transact(
                parties.other.contract.functions.changeDefaultAdminDelay(1)
            ),
            "AccessControlUnauthorizedAccount",
            account=parties.chain.other_holder.address,
            neededRole=ADMIN_ROLE,
        )
