"""What the auditor's timeline page renders and embeds (api/pages/audit.py), without a
browser: the embedded JSON holds what the check reads and no alerts; an entry names its
checkpoint and leaves the anchor transaction to the checkpoint's line; neighbouring alerts of
one rule are one step listing them, in time order."""

from __future__ import annotations

import json
from typing import Any

from api.pages.audit import CHECKED, _embedded, _rows


def _alert(minute: int, rule: str = "clone") -> dict[str, Any]:
    return {
        "alertId": f"a{minute}-{rule}",
        "rule": rule,
        "reasonCode": "CLONE_IMPOSSIBLE_TRAVEL",
        "severity": "critical",
        "location": "NLRTM",
        "evidence": ["s1", "s2"],
        "status": "open",
        "createdAt": f"2026-12-06T10:{minute:02d}:00+00:00",
    }


def _timeline() -> dict[str, Any]:
    entry = {
        "logIndex": 0,
        "kind": "scan",
        "time": "2026-12-06T10:05:00+00:00",
        "record": {"location": "CNSHA", "verdict": "GENUINE"},
        "leafHash": "0x" + "11" * 32,
        "anchoring": "anchored",
        "checkpointSize": 1,
    }
    return {
        "item": {"gtin": "09506000134352", "serial": "S1", "key": "k"},
        "log": {"chainId": 1},
        "enrollment": None,
        "entries": [entry],
        "statusChanges": [],
        "checkpoints": [{"size": 1, "txHash": "0x" + "ab" * 32, "blockNumber": 9}],
        "consistency": [],
        # three clone alerts before the scan, one after it, then another rule's
        "alerts": [_alert(1), _alert(2), _alert(3), _alert(7), _alert(8, "diversion")],
    }


def test_the_page_embeds_what_the_check_reads_and_no_alerts() -> None:
    timeline = _timeline()
    embedded = json.loads(str(_embedded(timeline)))
    assert set(embedded) == set(CHECKED) and "alerts" not in embedded
    assert embedded["entries"] == timeline["entries"]


def test_neighbouring_alerts_are_one_step_and_entries_name_their_checkpoint() -> None:
    rows = _rows(_timeline(), {})
    assert [(r["kind"], len(r.get("alerts") or [])) for r in rows] == [
        ("alerts", 3),  # 10:01-10:03, one rule: one step
        ("scan", 0),
        ("alert", 0),  # 10:07 alone after the scan
        ("alert", 0),  # another rule
    ]
    assert rows[0]["when_text"] == "2026-12-06 10:01:00 UTC \N{EN DASH} 2026-12-06 10:03:00 UTC"
    evidence = dict(rows[1]["evidence"])
    assert evidence["Checkpoint"] == 1
    assert "Anchor tx" not in evidence and "Block" not in evidence
