"""Errors the detector raises: a data error or a contention report, never a verdict.

They join the one error tree rooted at `ledger.errors.BorderLedgerError` (the detector sits
above the core and may import it), so the gateway maps them in one place like every other
domain error. Bad input is also an `InvalidInput` (422); contention that outlasted the retries
is a `Conflict` (409: the same request may succeed when sent again).
"""

from __future__ import annotations

from ledger.errors import BorderLedgerError, Conflict, InvalidInput


class DetectorError(BorderLedgerError, ValueError):
    """Root of the detector's errors: the message says what is wrong and where."""


class UnknownLocationError(DetectorError, InvalidInput):
    """A UN/LOCODE that is not in the location registry."""


class InvalidLocationError(DetectorError, InvalidInput):
    """A location that cannot be registered (bad code, name, coordinates, or taken)."""


class InvalidScanError(DetectorError, InvalidInput):
    """A scan or status report that cannot be judged (future timestamp, unknown batch...)."""


class PolicyError(DetectorError, InvalidInput):
    """A route policy with one or more problems; `problems` lists each of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid route policy: " + "; ".join(self.problems))


class ContentionError(DetectorError, Conflict):
    """Other writers kept changing the same state; sending the same input again may succeed."""
