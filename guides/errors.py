"""Errors of the guides domain, in the one hierarchy of `ledger.errors` (mapped to HTTP in
`api.errors` without knowing this package)."""

from __future__ import annotations

from ledger.errors import Conflict, InvalidInput


class InvalidGuide(InvalidInput):
    """A guide or an import file that breaks the rules; `problems` lists each one (an import
    file's prefixed by its line or item number)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        super().__init__(message)


class InvalidImage(InvalidInput):
    """An upload that is not a JPEG, PNG or WebP image (judged from its bytes), or too big."""


class TransitionNotAllowed(Conflict):
    """A workflow step the guide's current state does not allow (409 naming the state)."""

    def __init__(self, step: str, state: str) -> None:
        self.step, self.state = step, state
        super().__init__(f"cannot {step} a guide that is {state}")
