"""Staged disclosure as a matrix: stage x field x viewer."""

from __future__ import annotations

import pytest

from cases.disclosure import CORE, FIELDS, Viewer, readable, redact
from cases.profiles import get_profile

US = get_profile("us-trademark")
PERSONAL = ("importer", "declarant", "exporter", "manufacturer", "consignee")

# (stage, field) -> does the case's rights holder read it? (US trademark, 19 CFR 133.21)
HOLDER_US = {
    "none": set(),
    "redacted": {"images_redacted"},
    "limited": {"images_redacted", "date_of_import", "port", "description", "quantity", "origin"},
    "unredacted": {
        "images_redacted",
        "date_of_import",
        "port",
        "description",
        "quantity",
        "origin",
        "images_unredacted",
        "identifying_marks",
        "items",
        "sample",
        "limited_use_notice",
    },
}
HOLDER_US["post_seizure"] = HOLDER_US["unredacted"] | {"manufacturer", "exporter", "importer"}


@pytest.mark.parametrize("stage", US.stages)
@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("viewer", list(Viewer))
def test_us_matrix(stage: str, field: str, viewer: Viewer) -> None:
    fields = readable(US, stage, viewer)
    if viewer is Viewer.OTHER_HOLDER:
        assert fields is None
        return
    assert fields is not None
    assert set(CORE) <= fields
    if viewer is Viewer.OWN_AGENCY:
        expected = True
    elif viewer is Viewer.RIGHTS_HOLDER:
        expected = field in HOLDER_US[stage]
    elif viewer is Viewer.IMPORTER:
        # unredacted images at any time after presentation; never the officers' notes
        expected = field in US.viewers["importer"]
        assert ("images_unredacted" in fields) and "notes" not in fields
    else:  # an officer of another agency: the shipment, never personal data or images
        expected = field in US.viewers["other_agency"]
        assert not set(PERSONAL) & fields and "images_unredacted" not in fields
    assert (field in fields) is expected


@pytest.mark.parametrize("profile_id", ["eu-standard", "eu-small-consignments", "us-gray-market"])
def test_holder_sees_more_only_as_stages_advance(profile_id: str) -> None:
    profile = get_profile(profile_id)
    seen: frozenset[str] = frozenset()
    for stage in profile.stages:
        now = readable(profile, stage, Viewer.RIGHTS_HOLDER)
        assert now is not None and seen <= now
        seen = now
    first = readable(profile, profile.stages[0], Viewer.RIGHTS_HOLDER)
    assert first is not None and not set(PERSONAL) & first


def test_redact_drops_fields_rather_than_nulling_them() -> None:
    document = {name: f"<{name}>" for name in (*CORE, *FIELDS)}
    out = redact(document, US, "limited", Viewer.RIGHTS_HOLDER)
    assert out is not None
    assert out["quantity"] == "<quantity>" and "importer" not in out and "notes" not in out
    assert redact(document, US, "post_seizure", Viewer.OTHER_HOLDER) is None
