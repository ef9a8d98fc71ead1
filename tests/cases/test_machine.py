"""The state machine driven by the profiles."""

from __future__ import annotations

import pytest

from cases.errors import ActionNotAllowed, InvalidProfile, SecondOfficerRequired, UnknownAction
from cases.machine import Facts, check_approver, expire, plan
from cases.profiles import all_profiles, get_profile, parse_profile
from ledger.errors import Conflict, InvalidInput, PermissionDenied


def test_every_profile_loads_and_names_its_documents() -> None:
    profiles = all_profiles()
    assert set(profiles) == {
        "us-trademark",
        "us-copyright",
        "us-gray-market",
        "eu-standard",
        "eu-small-consignments",
    }
    assert profiles["us-copyright"].right == "copyright"
    assert profiles["us-copyright"].clocks == profiles["us-trademark"].clocks
    assert "notice_of_detention" in profiles["us-trademark"].documents()
    assert "consent_form" in profiles["eu-standard"].documents()


def test_us_trademark_path() -> None:
    p = get_profile("us-trademark")
    step = plan(
        p,
        Facts("presented", "none", running=frozenset({"decide", "determination"})),
        "detain",
        "officer",
        {},
    )
    assert step.state_after == "detained"
    assert step.stop == ("decide",)
    assert [c.name for c in step.start] == ["notice"]
    step = plan(
        p,
        Facts("detained", "none", running=frozenset({"notice", "determination"})),
        "send_notice",
        "officer",
        {},
    )
    assert step.state_after == "notice_sent" and step.stage_after == "limited"
    assert [c.name for c in step.start] == ["importer_answer"]
    assert "notice_of_detention" in step.documents
    seize = plan(
        p,
        Facts("answer_closed", "unredacted", running=frozenset({"determination"})),
        "seize",
        "officer",
        {},
    )
    assert seize.needs_approval and seize.state_after == "seized"
    assert seize.stop == ("determination",)
    assert [c.name for c in seize.start] == ["post_seizure_disclosure"]


def test_not_allowed_names_the_state() -> None:
    p = get_profile("us-trademark")
    with pytest.raises(ActionNotAllowed, match="'released'") as caught:
        plan(p, Facts("released", "none"), "seize", "officer", {})
    assert isinstance(caught.value, Conflict)
    with pytest.raises(UnknownAction, match="fly"):
        plan(p, Facts("presented", "none"), "fly", "officer", {})


def test_stage_never_goes_back_and_notes_work_everywhere() -> None:
    p = get_profile("us-trademark")
    step = plan(p, Facts("answered", "unredacted"), "note", "holder", {})
    assert step.stage_after == "unredacted" and step.state_after == "answered"
    assert (
        plan(p, Facts("destroyed", "post_seizure"), "note", "officer", {}).state_after
        == "destroyed"
    )


def test_parties_and_requirements() -> None:
    p = get_profile("us-trademark")
    with pytest.raises(PermissionDenied):
        plan(p, Facts("detained", "none"), "seize", "importer", {})
    assert (
        plan(p, Facts("notice_sent", "limited"), "answer", "importer", {}).state_after == "answered"
    )
    with pytest.raises(InvalidInput, match="bond"):
        plan(p, Facts("answered", "limited"), "send_sample", "officer", {})


def test_eu_extension_once_and_never_perishable() -> None:
    p = get_profile("eu-standard")
    running = frozenset({"confirmation"})
    step = plan(
        p, Facts("notified", "notified", running=running), "extend", "officer", {"days": 10}
    )
    assert step.extend == ("confirmation", 10)
    with pytest.raises(Conflict, match="already extended"):
        plan(
            p,
            Facts("notified", "notified", extensions={"confirmation": 1}, running=running),
            "extend",
            "officer",
            {"days": 5},
        )
    with pytest.raises(Conflict, match="perishable"):
        plan(
            p,
            Facts("notified", "notified", perishable=True, running=running),
            "extend",
            "officer",
            {"days": 5},
        )
    with pytest.raises(InvalidInput, match="days"):
        plan(p, Facts("notified", "notified", running=running), "extend", "officer", {"days": 11})


def test_eu_deemed_consent_and_release() -> None:
    p = get_profile("eu-standard")
    assert expire(p, "confirmation", "holder_confirmed") == "consented"  # silence is consent
    assert expire(p, "confirmation", "notified") == "release_due"  # holder did not confirm
    assert expire(p, "application", "ex_officio_detained") == "release_due"
    step = plan(p, Facts("holder_confirmed", "notified"), "consent", "importer", {})
    assert step.state_after == "consented"
    small = get_profile("eu-small-consignments")
    assert expire(small, "declarant_answer", "notified") == "consented"
    step = plan(
        small,
        Facts("notified", "none", running=frozenset({"declarant_answer"})),
        "object",
        "importer",
        {},
    )
    assert step.stage_after == "objected" and [c.name for c in step.start] == ["holder_sue"]
    assert step.stop == ("declarant_answer",)


def test_second_officer() -> None:
    check_approver("api_key:1", "user:7")
    with pytest.raises(SecondOfficerRequired):
        check_approver("api_key:1", "api_key:1")


def test_inconsistent_profiles_are_refused() -> None:
    base = {
        "id": "x",
        "title": "x",
        "jurisdiction": "US",
        "calendar": "US",
        "right": "trademark",
        "procedure": "standard",
        "initial": "a",
        "states": ["a", "b"],
        "stages": ["none"],
    }
    parse_profile(base)
    with pytest.raises(InvalidProfile, match="unknown states"):
        parse_profile({**base, "actions": {"go": {"from": ["a"], "to": "c"}}})
    with pytest.raises(InvalidProfile, match="unknown case fields"):
        parse_profile({**base, "reveals": {"none": ["shoe_size"]}})
    with pytest.raises(InvalidProfile, match="unknown action"):
        parse_profile({**base, "clocks": {"c": {"starts": "go", "days": 1}}})
