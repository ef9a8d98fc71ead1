"""GS1 company prefix bindings (issue 15), on Anvil and Hardhat: the registry admin binds a
company prefix to a rights holder, a GTIN bound on its own wins over any prefix, the longest
bound prefix wins over shorter ones, and the rule a prefix must follow is the same on chain
as in `ledger.gs1.validate_company_prefix`."""

from __future__ import annotations

import pytest

from chain.contract import ADMIN_ROLE, RegistryClient, deploy
from chain.tx import TransactionSender
from ledger.errors import InvalidCompanyPrefix
from ledger.gs1 import company_prefixes_of, validate_company_prefix
from ledger.models import ZERO_ADDRESS
from tests.chain.test_registry_contract import (
    GTIN,
    GTIN_CHECK_ZERO,
    METADATA,
    OTHER_GTIN,
    Parties,
    build_items,
    events,
    expect_revert,
    gtin_with_check_digit,
    register,
)

FREE_GTIN = GTIN_CHECK_ZERO  # 04012345000030: bound to nobody by the fixtures
PREFIX = "4012345"  # covers FREE_GTIN and OTHER_GTIN (bound on its own to `other_holder`)
CASE_GTIN = gtin_with_check_digit("1401234500003")  # FREE_GTIN's item in a case (indicator 1)


def test_prefixes_of_a_gtin_skip_the_indicator_digit() -> None:
    assert company_prefixes_of(CASE_GTIN) == [
        "401234500003",
        "40123450000",
        "4012345000",
        "401234500",
        "40123450",
        "4012345",
        "401234",
    ]


class TestCompanyPrefix:
    def test_bind_covers_unbound_gtins_and_bound_gtins_win(self, parties: Parties) -> None:
        holder, other = parties.chain.holder.address, parties.chain.other_holder.address
        assert parties.stranger.resolve_gtin_holder(FREE_GTIN) == (ZERO_ADDRESS, None)

        receipt = parties.admin.bind_company_prefix(PREFIX, holder)

        (event,) = events(parties.admin, receipt, "CompanyPrefixBound")
        assert (event["prefix"], event["holder"]) == (PREFIX, holder)
        assert parties.stranger.company_prefix_holder(PREFIX) == holder
        assert parties.stranger.resolve_gtin_holder(FREE_GTIN) == (holder, PREFIX)
        assert parties.stranger.resolve_gtin_holder(CASE_GTIN) == (holder, PREFIX)
        assert parties.stranger.gtin_holder(FREE_GTIN) == ZERO_ADDRESS  # no binding of its own
        # the GTIN bound on its own to `other` stays `other`'s
        assert parties.stranger.resolve_gtin_holder(OTHER_GTIN) == (other, None)
        assert parties.stranger.resolve_gtin_holder(GTIN) == (holder, None)

        register(parties.holder, gtin=FREE_GTIN)
        register(parties.holder, gtin=CASE_GTIN)
        register(parties.other, gtin=OTHER_GTIN)
        root, _ = build_items(FREE_GTIN, ("B",))
        expect_revert(
            lambda: parties.other.register_batch(FREE_GTIN, "L2", root, 1, METADATA),
            "GtinOwnedByAnotherHolder",
            gtin=FREE_GTIN,
            owner=holder,
            caller=other,
        )
        root, _ = build_items(OTHER_GTIN, ("B",))
        expect_revert(
            lambda: parties.holder.register_batch(OTHER_GTIN, "L3", root, 1, METADATA),
            "GtinOwnedByAnotherHolder",
            gtin=OTHER_GTIN,
            owner=other,
            caller=holder,
        )

    def test_longest_prefix_wins_and_unbind(self, parties: Parties) -> None:
        holder, other = parties.chain.holder.address, parties.chain.other_holder.address
        parties.admin.bind_company_prefix("401234", other)
        parties.admin.bind_company_prefix("40123450", holder)
        assert parties.stranger.resolve_gtin_holder(FREE_GTIN) == (holder, "40123450")
        # a GTIN under the short prefix only
        outside = gtin_with_check_digit("0401234600001")
        assert parties.stranger.resolve_gtin_holder(outside) == (other, "401234")
        batch = register(parties.holder, gtin=FREE_GTIN)

        receipt = parties.admin.unbind_company_prefix("40123450")

        (event,) = events(parties.admin, receipt, "CompanyPrefixUnbound")
        assert (event["prefix"], event["previous"]) == ("40123450", holder)
        assert parties.stranger.company_prefix_holder("40123450") == ZERO_ADDRESS
        assert parties.stranger.resolve_gtin_holder(FREE_GTIN) == (other, "401234")
        # the batch registered under the prefix keeps its holder
        assert parties.stranger.get_batch(batch.batch_id).holder == holder
        parties.admin.unbind_company_prefix("401234")
        assert parties.stranger.resolve_gtin_holder(FREE_GTIN) == (ZERO_ADDRESS, None)
        root, _ = build_items(FREE_GTIN, ("C",))
        expect_revert(
            lambda: parties.holder.register_batch(FREE_GTIN, "L9", root, 1, METADATA),
            "GtinNotBound",
            gtin=FREE_GTIN,
        )

    def test_the_shortest_and_longest_prefixes(self, parties: Parties) -> None:
        holder, other = parties.chain.holder.address, parties.chain.other_holder.address
        parties.admin.bind_company_prefix(FREE_GTIN[1:13], other)  # 12 digits: one GTIN
        parties.admin.bind_company_prefix(FREE_GTIN[1:7], holder)  # 6 digits
        assert parties.stranger.resolve_gtin_holder(FREE_GTIN) == (other, FREE_GTIN[1:13])
        assert parties.stranger.resolve_gtin_holder(CASE_GTIN) == (other, FREE_GTIN[1:13])
        assert parties.stranger.resolve_gtin_holder(OTHER_GTIN) == (other, None)
        neighbour = gtin_with_check_digit("0401234999999")
        assert parties.stranger.resolve_gtin_holder(neighbour) == (holder, FREE_GTIN[1:7])
        # not a GTIN-14: no prefix applies (registerBatch refuses it anyway)
        assert parties.stranger.resolve_gtin_holder(FREE_GTIN[1:]) == (ZERO_ADDRESS, None)

    def test_refusals(self, parties: Parties) -> None:
        holder, other = parties.chain.holder.address, parties.chain.other_holder.address
        for client in (parties.holder, parties.stranger):
            expect_revert(
                lambda c=client: c.bind_company_prefix(PREFIX, c.sender.address),
                "AccessControlUnauthorizedAccount",
                account=client.sender.address,  # type: ignore[union-attr]
                neededRole=ADMIN_ROLE,
            )
        stranger = parties.chain.stranger.address
        expect_revert(
            lambda: parties.admin.bind_company_prefix(PREFIX, stranger),
            "NotRightsHolder",
            account=stranger,
        )
        expect_revert(
            lambda: parties.admin.unbind_company_prefix(PREFIX),
            "CompanyPrefixNotBound",
            prefix=PREFIX,
        )
        parties.admin.bind_company_prefix(PREFIX, holder)
        expect_revert(
            lambda: parties.admin.bind_company_prefix(PREFIX, other),
            "CompanyPrefixAlreadyBound",
            prefix=PREFIX,
            owner=holder,
        )
        expect_revert(
            lambda: parties.holder.unbind_company_prefix(PREFIX),
            "AccessControlUnauthorizedAccount",
            account=holder,
            neededRole=ADMIN_ROLE,
        )
        assert parties.stranger.company_prefix_holder(PREFIX) == holder

    def test_prefix_rule_is_the_same_on_chain_and_in_python(self, parties: Parties) -> None:
        """Refused alike: bad lengths and characters, and the GS1 Prefixes that number no
        company's products; the edges of each reserved range are accepted alike."""
        holder = parties.chain.holder.address
        for prefix in INVALID_PREFIXES:
            with pytest.raises(InvalidCompanyPrefix, match="company prefix"):
                validate_company_prefix(prefix)
            expect_revert(
                lambda p=prefix: parties.admin.bind_company_prefix(p, holder),
                "InvalidCompanyPrefix",
                prefix=prefix,
            )
        for prefix in VALID_PREFIXES:
            assert validate_company_prefix(prefix) == prefix
            parties.admin.bind_company_prefix(prefix, holder)
            assert parties.stranger.company_prefix_holder(prefix) == holder


INVALID_PREFIXES = (
    "12345",  # 5 digits
    "1234567890123",  # 13 digits
    "61a141",
    " 614141",
    "",
    "0000012",  # GTIN-8 range
    "0212345",  # restricted circulation
    "0412345",
    "2001234",
    "2991234",
    "0512345",  # coupons
    "0591234",
    "9801234",  # refund receipts
    "9811234",  # coupons
    "9912345",
)
VALID_PREFIXES = ("614141", "0012345", "0000123", "0191234", "0312345", "0612345", "300123")
VALID_PREFIXES += ("1991234", "9789999", "979123")


def test_a_registry_from_before_prefixes_resolves_by_its_gtin_bindings(parties: Parties) -> None:
    """A registry an upgrade replaced (contracts/legacy: no `resolveGtinHolder`) is still
    read: the GTIN's own binding (there, its first registrant) decides."""
    chain = parties.chain
    sender = TransactionSender(chain.registry.w3, chain.admin, chain.registry.decode_revert)
    old_address, _ = deploy(sender, "BorderLedgerRegistryV1", chain.admin.address)
    old_admin = RegistryClient(chain.registry.w3, old_address, sender)
    old_admin.accredit_rights_holder(chain.holder.address, "Acme", "TMK-1")
    old_holder = old_admin.with_sender(parties.holder.sender)  # type: ignore[arg-type]
    assert old_holder.resolve_gtin_holder(FREE_GTIN) == (ZERO_ADDRESS, None)
    register(old_holder, gtin=FREE_GTIN)  # V1: the first registrant claims the GTIN
    assert old_holder.resolve_gtin_holder(FREE_GTIN) == (chain.holder.address, None)
