"""Customs cases through the gateway: open, staged disclosure per viewer, actions once per key,
409 naming the state, a second officer for seizures, the parties' single-use links, the custody
log without personal data, and clocks raising each reminder and alert once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from api import case_clocks
from api.case_models import Case, CaseAction, CaseClock, CaseNotice
from api.models import Alert, Job, LogEntry, LogLink
from custody import entries
from tests.api.cases_kit import NAME, case_world
from tests.api.cases_kit import act as _act
from tests.api.cases_kit import get_case as _get
from tests.api.cases_kit import open_case as _open
from tests.stack import Stack, api_error

world = pytest.fixture(case_world, name="world")


def test_a_us_case_discloses_by_stage_and_acts_once(stack: Stack, world: Any) -> None:
    case = _open(stack, world["officer"], rightsHolders=[world["holder_id"]])
    cid = case["id"]
    assert case["state"] == "presented" and case["quantity"] == 50
    assert case["msrp"] == {"currency": "USD", "cents": 40 * 25_000 + 10 * 90_000}
    assert case["importer"]["name"] == NAME
    assert {c["name"] for c in case["clocks"]} == {"decide", "determination"}
    assert "detain" in case["actionsAllowed"]

    holder = _get(stack, world["holder"], cid).json()
    assert holder["state"] == "presented" and "quantity" not in holder and "importer" not in holder
    api_error(_get(stack, world["other"], cid), 404, "not_found")
    # another agency's case is not its to know of; an auditor reads it through its grant of
    # the case's holder, without personal data
    api_error(_get(stack, world["agency"], cid), 404, "not_found")
    auditor = stack.org("Auditor", "auditor")
    api_error(_get(stack, auditor["apiKey"], cid), 404, "not_found")
    stack.grant(auditor, [world["holder_id"]])
    audited = _get(stack, auditor["apiKey"], cid).json()
    assert audited["quantity"] == 50 and "importer" not in audited
    assert "actionsAllowed" not in audited
    listed = stack.client.get("/v1/cases", headers=stack.headers(auditor["apiKey"])).json()
    assert [c["id"] for c in listed] == [cid]

    r = _act(stack, world["officer"], cid, "detain", "k1")
    assert r.status_code == 201 and r.json()["stateAfter"] == "detained"
    replay = _act(stack, world["officer"], cid, "detain", "k1")
    assert replay.status_code == 200 and replay.json()["replayed"] is True
    assert replay.json()["actionId"] == r.json()["actionId"]
    api_error(_act(stack, world["officer"], cid, "release", "k1"), 409, "conflict", "k1")
    api_error(_act(stack, world["officer"], cid, "detain", "k2"), 409, "conflict", "'detained'")
    api_error(_act(stack, world["officer"], cid, "fly", "k3"), 422, "invalid_input", "fly")
    api_error(_act(stack, world["agency"], cid, "note", "k4", text="x"), 404, "not_found")

    notice = _act(stack, world["officer"], cid, "send_notice", "k5")
    assert notice.status_code == 201, notice.text
    link = notice.json()["partyLink"]
    assert link
    holder = _get(stack, world["holder"], cid).json()
    assert holder["quantity"] == 50 and holder["port"] == "USLAX" and holder["origin"] == "CN"
    assert "importer" not in holder and "imagesUnredacted" not in holder

    seen = stack.client.get(f"/v1/case-links/{link}").json()
    assert seen["importer"]["name"] == NAME and "answer" in seen["actionsAllowed"]
    assert "notes" not in seen and "timeline" not in seen
    answered = stack.client.post(
        f"/v1/case-links/{link}/answer", json={"action": "answer", "text": "genuine"}
    )
    assert answered.status_code == 201 and answered.json()["stateAfter"] == "answered"
    again = stack.client.post(f"/v1/case-links/{link}/answer", json={"action": "answer"})
    api_error(again, 409, "conflict", "already used")
    api_error(stack.client.get("/v1/case-links/" + "x" * 43), 404, "not_found")

    after = _get(stack, world["officer"], cid).json()
    assert [h["action"] for h in after["history"]] == ["open", "detain", "send_notice", "answer"]
    assert [d["name"] for d in after["documents"]] == [
        "notice_of_detention",
        "limited_information_letter",
    ]


def test_seizure_needs_a_second_officer(stack: Stack, world: Any) -> None:
    cid = _open(stack, world["officer"], rightsHolders=[world["holder_id"]])["id"]
    assert _act(stack, world["officer"], cid, "detain", "d").status_code == 201
    asked = _act(stack, world["officer"], cid, "seize", "s")
    assert asked.status_code == 202 and asked.json()["status"] == "pending_approval"
    assert _get(stack, world["officer"], cid).json()["state"] == "detained"
    url = f"/v1/cases/{cid}/actions/{asked.json()['actionId']}/approve"
    same = stack.client.post(
        url, json={"idempotencyKey": "a"}, headers=stack.headers(world["officer"])
    )
    api_error(same, 403, "forbidden", "second officer")
    api_error(
        stack.client.post(
            url, json={"idempotencyKey": "a"}, headers=stack.headers(world["holder"])
        ),
        403,
        "forbidden",
    )
    ok = stack.client.post(
        url, json={"idempotencyKey": "a"}, headers=stack.headers(world["second"])
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["status"] == "approved" and ok.json()["stateAfter"] == "seized"
    replay = stack.client.post(
        url, json={"idempotencyKey": "a"}, headers=stack.headers(world["second"])
    )
    assert replay.status_code == 200 and replay.json()["replayed"]
    case = _get(stack, world["officer"], cid).json()
    assert case["state"] == "seized" and case["outcome"] == "seized"
    assert "post_seizure_disclosure" in {
        c["name"] for c in case["clocks"] if c["status"] == "running"
    }
    # released goods cannot be seized: 409 naming the state
    cid2 = _open(stack, world["officer"])["id"]
    assert _act(stack, world["officer"], cid2, "release", "r").status_code == 201
    api_error(_act(stack, world["officer"], cid2, "seize", "s"), 409, "conflict", "'released'")


def test_the_log_holds_commitments_not_personal_data(stack: Stack, world: Any) -> None:
    cid = _open(stack, world["officer"], rightsHolders=[world["holder_id"]])["id"]
    _act(stack, world["officer"], cid, "detain", "d")
    _act(stack, world["officer"], cid, "note", "n", text="importer is " + NAME)
    r = stack.client.delete(
        f"/v1/cases/{cid}/parties/importer", headers=stack.headers(world["officer"])
    )
    assert r.status_code == 204
    assert _get(stack, world["officer"], cid).json()["importer"]["erased"] is True
    key = entries.case_key(cid)
    with Session(stack.gateway.engine) as session:
        case = session.exec(select(Case).where(Case.case_id == cid)).one()
        rows = session.exec(
            select(CaseAction).where(CaseAction.case_pk == case.id).order_by(col(CaseAction.id))
        ).all()
        assert [r.action for r in rows] == ["open", "detain", "note"]
        for row in rows:
            assert row.record is not None and NAME not in str(row.record)
            leaf = session.exec(select(LogEntry).where(LogEntry.idx == row.log_index)).one()
            link = session.exec(
                select(LogLink).where(LogLink.idx == row.log_index, LogLink.key == key)
            ).one()
            recomputed = entries.entry_leaf(entries.CASE, row.record, {key: link.prev})
            assert "0x" + recomputed.hex() == leaf.leaf  # proofs survive the erasure
        assert rows[0].record is not None
        assert rows[0].record["opened"]["parties"]["importer"].startswith("0x")


def test_clocks_remind_and_expire_once(stack: Stack, world: Any) -> None:
    engine = stack.gateway.engine
    cid = _open(stack, world["officer"], rightsHolders=[world["holder_id"]])["id"]
    with Session(engine) as session:
        case = session.exec(select(Case).where(Case.case_id == cid)).one()
        decide = session.exec(
            select(CaseClock).where(CaseClock.case_pk == case.id, CaseClock.name == "decide")
        ).one()
    remind = decide.remind_at.replace(tzinfo=UTC) + timedelta(minutes=1)
    assert case_clocks.process_due(engine, now=remind).reminders == 1
    assert case_clocks.process_due(engine, now=remind).reminders == 0
    # the gateway was down for 40 days: one run catches up on both expiries
    late = datetime.now(UTC) + timedelta(days=40)
    done = case_clocks.process_due(engine, now=late)
    assert done.expiries == 2 and done.reminders == 0
    assert case_clocks.process_due(engine, now=late).expiries == 0
    with Session(engine) as session:
        case = session.exec(select(Case).where(Case.case_id == cid)).one()
        assert case.state == "excluded" and case.outcome == "excluded"
        assert set(case.flags) == {"decide_expired", "determination_expired"}
        notices = session.exec(select(CaseNotice).where(CaseNotice.case_pk == case.id)).all()
        assert sorted(n.kind for n in notices) == ["expired", "expired", "reminder"]
        alerts = session.exec(select(Alert).where(Alert.rule == "case_clock")).all()
        assert len([a for a in alerts if cid in a.evidence]) == 2
    inbox = stack.client.get("/v1/case-notices", headers=stack.headers(world["officer"])).json()
    assert sorted((n["kind"], n["clock"]) for n in inbox if n["caseId"] == cid) == [
        ("expired", "decide"),
        ("expired", "determination"),
        ("reminder", "decide"),
    ]
    assert stack.client.get("/v1/case-notices", headers=stack.headers(world["agency"])).json() == []
    listed = stack.client.get("/v1/cases", headers=stack.headers(world["officer"])).json()
    assert any(c["id"] == cid and "decide_expired" in c["flags"] for c in listed)


def test_clock_jobs_run_from_the_job_table(stack: Stack, world: Any) -> None:
    old = (datetime.now(UTC) - timedelta(days=45)).isoformat()
    cid = _open(stack, world["officer"], presentedAt=old)["id"]
    engine = stack.gateway.engine
    submitted = case_clocks.schedule(engine)
    assert len(submitted) == 1
    assert case_clocks.schedule(engine) == []  # one job per agency at a time
    while stack.gateway.jobs.run_once():
        pass
    with Session(engine) as session:
        job = session.get(Job, submitted[0])
        assert job is not None and job.status == "done", job
        assert job.result == {"reminders": 0, "expiries": 2}
        case = session.exec(select(Case).where(Case.case_id == cid)).one()
        assert case.state == "excluded"


def test_list_puts_the_next_deadline_first(stack: Stack, world: Any) -> None:
    now = datetime.now(UTC)
    late = _open(stack, world["officer"], presentedAt=(now - timedelta(days=10)).isoformat())["id"]
    fresh = _open(stack, world["officer"])["id"]
    done = _open(stack, world["officer"])["id"]
    _act(stack, world["officer"], done, "release", "r")
    ids = [
        c["id"]
        for c in stack.client.get("/v1/cases", headers=stack.headers(world["officer"])).json()
    ]
    assert ids.index(late) < ids.index(fresh) < ids.index(done)
    pages = [
        c["id"]
        for offset in range(len(ids))
        for c in stack.client.get(
            "/v1/cases",
            params={"limit": 1, "offset": offset},
            headers=stack.headers(world["officer"]),
        ).json()
    ]
    assert pages == ids  # paging crosses from the cases with a deadline to those without
    overdue = next(
        c for c in _get(stack, world["officer"], late).json()["clocks"] if c["name"] == "decide"
    )
    assert overdue["overdue"] is True and overdue["daysLeft"] < 0
    assert stack.client.get("/v1/cases", headers=stack.headers(world["agency"])).json() == []
    held = stack.client.get("/v1/cases", headers=stack.headers(world["holder"])).json()
    assert held == []


def test_eu_ex_officio_and_one_extension(stack: Stack, world: Any) -> None:
    key = world["officer"]
    cid = _open(stack, key, profile="eu-standard", memberState="DE", port="DEHAM", currency="EUR")[
        "id"
    ]
    assert _act(stack, key, cid, "detain_ex_officio", "1").status_code == 201
    clocks = {c["name"]: c for c in _get(stack, key, cid).json()["clocks"]}
    assert clocks["application"]["days"] == 4 and clocks["application"]["unit"] == "business"
    assert _act(stack, key, cid, "file_application", "2").status_code == 201
    assert _act(stack, key, cid, "notify", "3").status_code == 201
    before = next(c for c in _get(stack, key, cid).json()["clocks"] if c["name"] == "confirmation")
    assert _act(stack, key, cid, "extend", "4", days=10).status_code == 201
    after = next(c for c in _get(stack, key, cid).json()["clocks"] if c["name"] == "confirmation")
    assert after["days"] == 20 and after["dueDay"] > before["dueDay"]
    api_error(_act(stack, key, cid, "extend", "5", days=2), 409, "conflict", "already extended")
    fresh = _open(
        stack, key, profile="eu-standard", memberState="DE", port="DEHAM", perishable=True
    )
    pid = fresh["id"]
    _act(stack, key, pid, "detain", "1")
    _act(stack, key, pid, "notify", "2")
    clock = next(c for c in _get(stack, key, pid).json()["clocks"] if c["name"] == "confirmation")
    assert clock["days"] == 3
    api_error(_act(stack, key, pid, "extend", "3", days=2), 409, "conflict", "perishable")


def test_bad_case_input(stack: Stack, world: Any) -> None:
    key = world["officer"]
    r = stack.client.post(
        "/v1/cases",
        json={
            "profile": "mars",
            "mode": "mail",
            "port": "USLAX",
            "presentedAt": "2024-01-01T00:00:00Z",
        },
        headers=stack.headers(key),
    )
    api_error(r, 422, "invalid_input", "mars")
    r = stack.client.post(
        "/v1/cases",
        json={
            "profile": "eu-standard",
            "mode": "mail",
            "port": "DEHAM",
            "presentedAt": "2024-01-01T00:00:00Z",
        },
        headers=stack.headers(key),
    )
    api_error(r, 422, "invalid_input", "memberState")
    r = stack.client.post(
        "/v1/cases",
        json={
            "profile": "us-trademark",
            "mode": "mail",
            "port": "USLAX",
            "presentedAt": "2024-01-01T00:00:00",
        },
        headers=stack.headers(key),
    )
    api_error(r, 422, "invalid_input", "time zone")
    r = stack.client.post(
        "/v1/cases",
        json={
            "profile": "us-trademark",
            "mode": "mail",
            "port": "USLAX",
            "presentedAt": "2024-01-01T00:00:00Z",
            "rightsHolders": [99999],
        },
        headers=stack.headers(key),
    )
    api_error(r, 422, "invalid_input", "99999")
    for when, word in (("0001-01-02T00:00:00Z", "ten years"), ("2999-01-01T00:00:00Z", "future")):
        r = stack.client.post(
            "/v1/cases",
            json={"profile": "us-trademark", "mode": "mail", "port": "USLAX", "presentedAt": when},
            headers=stack.headers(key),
        )
        api_error(r, 422, "invalid_input", word)
    cid = _open(stack, key)["id"]
    r = stack.client.post(
        f"/v1/cases/{cid}/actions",
        content=b'{"action": "note", "idempotencyKey": "n", "params": {"text": NaN}}',
        headers={**stack.headers(key), "content-type": "application/json"},
    )
    api_error(r, 422, "invalid_input", "params")
    api_error(_act(stack, key, cid, "custody", "c"), 422, "invalid_input", "storage")
    r = stack.client.post(
        "/v1/cases",
        json={
            "profile": "us-trademark",
            "mode": "mail",
            "port": "USLAX",
            "presentedAt": "2024-01-01T00:00:00Z",
        },
        headers=stack.headers(world["holder"]),
    )
    api_error(r, 403, "forbidden")


def test_clock_webhooks_carry_nothing_the_stage_hides(stack: Stack, world: Any) -> None:
    from api.models import WebhookDelivery

    r = stack.client.put(
        f"/v1/organizations/{world['holder_id']}/webhook",
        json={"url": "https://hooks.watchmaker.example/bl"},
        headers=stack.headers(world["holder"]),
    )
    assert r.status_code in (200, 201), r.text
    cid = _open(stack, world["officer"], rightsHolders=[world["holder_id"]])["id"]
    case_clocks.process_due(stack.gateway.engine, now=datetime.now(UTC) + timedelta(days=40))
    with Session(stack.gateway.engine) as session:
        rows = session.exec(
            select(WebhookDelivery).where(WebhookDelivery.organization_id == world["holder_id"])
        ).all()
    sent: list[dict[str, Any]] = [
        dict(r.payload) for r in rows if r.event == case_clocks.EVENT_EXPIRED
    ]
    assert sorted(p["data"]["clock"] for p in sent) == ["decide", "determination"]
    assert all(p["data"]["caseId"] == cid for p in sent)
    assert NAME not in str(sent) and "quantity" not in str(sent)


def test_a_case_opens_from_a_scan_with_the_batch_holder(stack: Stack, world: Any) -> None:
    from tests.stack import GTIN

    stack.enroll(world["holder"])
    stack.sync()
    scan = stack.verify(
        world["officer"], gtin=GTIN, serial="SN0003", location={"unlocode": "USLAX"}
    )
    stack.sync()
    r = stack.client.post(
        "/v1/cases",
        json={
            "profile": "us-trademark",
            "source": "scan",
            "scanId": scan["scanId"],
            "mode": "cargo",
            "presentedAt": datetime.now(UTC).isoformat(),
        },
        headers=stack.headers(world["officer"]),
    )
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["port"] == "USLAX" and case["rightsHolders"] == [world["holder_id"]]
    assert _get(stack, world["holder"], case["id"]).json()["state"] == "presented"
    # another agency's scan is not its to open a case from (nor to learn whose item it was)
    theirs = {
        "profile": "us-trademark",
        "source": "scan",
        "scanId": scan["scanId"],
        "mode": "cargo",
        "presentedAt": datetime.now(UTC).isoformat(),
    }
    r = stack.client.post("/v1/cases", json=theirs, headers=stack.headers(world["agency"]))
    api_error(r, 404, "not_found", "scan")
    missing = {
        "profile": "us-trademark",
        "source": "scan",
        "scanId": "00000000-0000-0000-0000-000000000000",
        "mode": "cargo",
        "presentedAt": datetime.now(UTC).isoformat(),
    }
    api_error(
        stack.client.post("/v1/cases", json=missing, headers=stack.headers(world["officer"])),
        404,
        "not_found",
        "scan",
    )
