"""Staged disclosure: which fields of a case a viewer may read at the case's stage.

Enforced by the gateway wherever case data leaves it (case answers, lists, custody entries
and alerts), always through `readable` / `redact`:

- an officer of the case's own agency reads everything;
- the case's rights holder reads the core fields plus what the profile's stages have revealed
  up to the current one (`reveals`, cumulative);
- the importer / declarant, through its link, and an officer of another agency read what the
  profile's `viewers` lists for them;
- another rights holder reads nothing: the case does not exist for it (404, never 403, so
  its existence does not leak either).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from cases.disclosure_fields import CORE, FIELDS
from cases.profiles import Profile

__all__ = ["CORE", "FIELDS", "Viewer", "readable", "redact"]


class Viewer(StrEnum):
    """Who reads a case. `OTHER_AGENCY` is the no-personal-data view (`viewers.other_agency`
    of a profile): the gateway gives it to auditors granted the case's holder; officers of
    another agency do not see the case at all (`OTHER_HOLDER`: 404; docs/cases.md)."""

    OWN_AGENCY = "own_agency"
    OTHER_AGENCY = "other_agency"
    RIGHTS_HOLDER = "rights_holder"
    OTHER_HOLDER = "other_holder"
    IMPORTER = "importer"


def readable(profile: Profile, stage: str, viewer: Viewer) -> frozenset[str] | None:
    """The fields `viewer` may read at `stage`; None when the case is not theirs to see."""
    if viewer is Viewer.OWN_AGENCY:
        return frozenset(CORE) | frozenset(FIELDS)
    if viewer is Viewer.OTHER_HOLDER:
        return None
    if viewer is Viewer.RIGHTS_HOLDER:
        upto = profile.stage_index(stage)
        revealed = {f for s in profile.stages[: upto + 1] for f in profile.reveals.get(s, ())}
        return frozenset(CORE) | frozenset(revealed)
    key = "importer" if viewer is Viewer.IMPORTER else "other_agency"
    return frozenset(CORE) | frozenset(profile.viewers.get(key, ()))


def redact(
    document: Mapping[str, Any], profile: Profile, stage: str, viewer: Viewer
) -> dict[str, Any] | None:
    """`document` (a case with every field) cut to what `viewer` may read; a field the viewer
    may not read is absent, not null, so a client cannot confuse "hidden" with "empty"."""
    fields = readable(profile, stage, viewer)
    if fields is None:
        return None
    return {k: v for k, v in document.items() if k in fields}
