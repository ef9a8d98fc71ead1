"""Errors the detector raises on bad input (a data error, never a verdict)."""

from __future__ import annotations


class DetectorError(ValueError):
    """Input the detector cannot judge: the message says what is wrong and where."""


class UnknownLocationError(DetectorError):
    """A UN/LOCODE that is not in the location registry."""


class InvalidScanError(DetectorError):
    """A scan or status report that cannot be judged (future timestamp, unknown batch...)."""


class PolicyError(DetectorError):
    """A route policy with one or more problems; `problems` lists each of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid route policy: " + "; ".join(self.problems))
