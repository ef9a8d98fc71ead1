"""Plain records the ledger returns; no web3 types leak out of `chain.contract`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Status(IntEnum):
    """Lifecycle status of a batch or item; values match the registry's `Status` enum."""

    ACTIVE = 0
    RECALLED = 1
    STOLEN = 2
    DESTROYED = 3
    DECOMMISSIONED = 4

    @classmethod
    def parse(cls, text: str) -> Status:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"status {text!r} is not one of: {choices}") from None


ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True, slots=True)
class BatchRecord:
    batch_id: str
    root: str
    holder: str
    item_count: int
    registered_at: int
    status: Status

    @property
    def registered(self) -> bool:
        return self.holder != ZERO_ADDRESS


@dataclass(frozen=True, slots=True)
class SignerKeyRecord:
    signer: str
    holder: str
    added_at: int
    revoked_at: int

    @property
    def registered(self) -> bool:
        return self.holder != ZERO_ADDRESS

    @property
    def active(self) -> bool:
        return self.registered and self.revoked_at == 0


@dataclass(frozen=True, slots=True)
class RightsHolderRecord:
    address: str
    name: str
    recordation: str
    accredited: bool
    #: when the accreditation was revoked (0: never); revocation is final
    revoked_at: int = 0


@dataclass(frozen=True, slots=True)
class TagCheck:
    """The registry's one-call judgement of a tag (see `checkTag` in the contract)."""

    batch_id: str
    batch_registered: bool
    holder: str
    signer: str
    signature_valid: bool
    in_batch: bool
    batch_status: Status
    item_status: Status

    @property
    def effective_status(self) -> Status:
        """The item's own status if it has one, else its batch's."""
        return self.item_status if self.item_status != Status.ACTIVE else self.batch_status


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A custody-log checkpoint anchored on chain by a customs agency: the RFC 6962 root of
    the agency's first `size` log entries (`size` 0 and a zero root: nothing anchored yet)."""

    agency: str
    size: int
    root: bytes

    @property
    def anchored(self) -> bool:
        return self.size > 0

    @property
    def root_hex(self) -> str:
        return "0x" + self.root.hex()
