"""Errors of the case domain, in the one hierarchy of `ledger.errors` (so the gateway maps
them in `api.errors` and the CLI in `borderledger.cli` without knowing this package)."""

from __future__ import annotations

from ledger.errors import Conflict, InvalidInput, PermissionDenied


class ActionNotAllowed(Conflict):
    """The action exists in the profile but not in the case's current state (409)."""

    def __init__(self, action: str, state: str, allowed: list[str]) -> None:
        self.action, self.state, self.allowed = action, state, allowed
        shown = ", ".join(allowed) or "none"
        super().__init__(
            f"action {action!r} is not allowed in state {state!r}; allowed here: {shown}"
        )


class UnknownAction(InvalidInput):
    pass


class InvalidProfile(InvalidInput):
    """A profile file that contradicts itself (a state, stage, clock or field it names but
    does not define)."""


class SecondOfficerRequired(PermissionDenied):
    """Seizure and destruction are applied only when a second officer approves them."""
