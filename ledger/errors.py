"""Domain errors of BorderLedger.

Every failure a user can cause maps to one class here, so the CLI and the gateway can turn it
into a clear message (or an HTTP status) in one place instead of leaking a traceback::

    BorderLedgerError
    ├── InvalidInput (ValueError)           bad data from a user: 422 / CLI exit 2
    │   ├── InvalidGtin, InvalidSerial, InvalidLot, InvalidCompanyPrefix
    │   ├── InvalidDigitalLink, InvalidSignature
    │   ├── DuplicateSerial, InvalidBatchFile
    │   ├── InvalidEpcisDocument, InvalidEpcIdentifier   EPCIS 2.0 capture (epcis/)
    │   └── CanonicalJsonError              a value canonical JSON (RFC 8785) cannot hold
    ├── NotFound (LookupError)              404
    │   └── BatchNotFound
    ├── Conflict                            409
    │   └── BatchConflict
    ├── PermissionDenied (PermissionError)  403
    ├── KeystoreError                       key file missing, unreadable or wrong password;
    │                                       in the gateway its own key unavailable: 503
    ├── DetectorError (ValueError)          detector/errors.py: bad input also InvalidInput,
    │                                       contention also Conflict
    └── ChainError                          the ledger could not do what was asked
        ├── RpcUnavailable (ConnectionError)
        ├── ReceiptTimeout (TimeoutError)
        └── ContractReverted                a custom error decoded with its arguments

Classes that also inherit a builtin let callers catch either, as web3.py does.
"""

from __future__ import annotations

from typing import Any


class BorderLedgerError(Exception):
    """Root of every error BorderLedger raises on purpose."""


class InvalidInput(BorderLedgerError, ValueError):
    """Input that can never succeed as given; the message names the offending value."""


class InvalidGtin(InvalidInput):
    pass


class InvalidCompanyPrefix(InvalidInput):
    pass


class InvalidSerial(InvalidInput):
    pass


class InvalidLot(InvalidInput):
    pass


class InvalidDigitalLink(InvalidInput):
    pass


class InvalidSignature(InvalidInput):
    pass


class DuplicateSerial(InvalidInput):
    pass


class InvalidBatchFile(InvalidInput):
    pass


class InvalidEpcisDocument(InvalidInput):
    """An EPCIS document that breaks the EPCIS 2.0 JSON schema or cannot be read as events.

    `problems` lists what is wrong, each prefixed by the JSON path of the offending value
    (``$.epcisBody.eventList[0].eventTime``), at most a bounded number of them.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        super().__init__(message)


class InvalidEpcIdentifier(InvalidInput):
    """A GS1 identifier (EPC URN or Digital Link) that claims a GS1 scheme but is malformed."""


class CanonicalJsonError(InvalidInput):
    """A value with no RFC 8785 form (NaN, an integer beyond ±2^53, a lone surrogate, ...)."""


class NotFound(BorderLedgerError, LookupError):
    pass


class BatchNotFound(NotFound):
    pass


class Conflict(BorderLedgerError):
    pass


class BatchConflict(Conflict):
    """The batch is registered on chain with other contents than the ones given."""


class PermissionDenied(BorderLedgerError, PermissionError):
    pass


class KeystoreError(BorderLedgerError):
    pass


class ChainError(BorderLedgerError):
    pass


class RpcUnavailable(ChainError, ConnectionError):
    pass


class ReceiptTimeout(ChainError, TimeoutError):
    pass


class ContractReverted(ChainError):
    """A call or transaction reverted; `name` and `args` are the decoded custom error."""

    def __init__(self, name: str, args: dict[str, Any] | None = None, raw: str = "") -> None:
        self.name = name
        self.error_args = args or {}
        self.raw = raw
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self.error_args.items())
        super().__init__(
            f"contract reverted: {name}({shown})" if name else f"contract reverted {raw}"
        )


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
