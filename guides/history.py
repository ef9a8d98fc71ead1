"""What changed between two versions of a guide, for its edit history."""

from __future__ import annotations

from typing import Any

from guides.model import GuideContent


def changes(before: GuideContent | None, after: GuideContent) -> list[dict[str, Any]]:
    """Each field (camelCase) whose value differs, with its value before and after; every
    non-empty field of a first version."""
    old = before.api() if before is not None else {}
    new = after.api()
    out = []
    for field, value in new.items():
        previous = old.get(field)
        if previous != value and not (before is None and value in (None, [], "")):
            out.append({"field": field, "before": previous, "after": value})
    return out
