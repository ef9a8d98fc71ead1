from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.dbstore import DbStore
from detector.engine import Detector
from detector.errors import InvalidScanError, UnknownLocationError
from detector.events import BatchProfile, Scan, StatusReport
from detector.locations import LocationRegistry
from detector.policy import RoutePolicy
from detector.rules import RULES, AlertReason
from detector.store import MemoryStore

H = 3600.0
D = 86_400.0
T0 = 1_700_000_000.0
GTIN = "09506000134352"
_REG = LocationRegistry.default()


def make(store: object = None, released: dict[str, int] | None = None) -> Detector:
    det = Detector(_REG, store or MemoryStore(), clock=lambda: T0 + 400 * D)  # type: ignore[arg-type]
    policy = RoutePolicy.create(
        _REG,
        markets=["NL"],
        nodes=["CNSHA", "SGSIN", "NLRTM"],
        consignees=["IMP-NL"],
        valid_from=T0 - D,
        valid_until=T0 + 300 * D,
    )
    det.register_batch(BatchProfile("B1", GTIN, policy, released or {"NL": 3}, T0 + 365 * D))
    return det


def scan(sid: str, loc: str, t: float, serial: str = "S1", cons: str | None = None) -> Scan:
    return Scan(sid, GTIN, serial, loc, T0 + t, "B1", cons)


LEGIT = [
    scan("f", "CNPVG", 0),  # near the factory
    scan("e", "CNSHA", 2 * D),
    scan("h", "SGSIN", 8 * D),
    scan("i", "NLRTM", 30 * D),
    scan("d", "NLAMS", 33 * D, cons="IMP-NL"),
]


def reasons(alerts: list) -> set[AlertReason]:  # type: ignore[type-arg]
    return {a.reason for a in alerts}


def test_legitimate_flow_raises_nothing() -> None:
    det = make()
    assert det.ingest_many(LEGIT) == []
    assert det.report_status(StatusReport(GTIN, "S1", "decommissioned", T0 + 40 * D)) == []


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (scan("x", "PLGDN", 35 * D), AlertReason.DIVERSION_MARKET),
        (scan("x", "CNNGB", 3 * D), None),  # origin country: allowed
        (scan("x", "SGSIN", 9 * D), None),
        (scan("x", "MYPKG", 9 * D), AlertReason.DIVERSION_MARKET),
        (scan("x", "NLAMS", 34 * D, cons="BROKER"), AlertReason.DIVERSION_CONSIGNEE),
        (scan("x", "NLRTM", 1 * D), AlertReason.SEQUENCE_BEFORE_ORIGIN),  # before the export
        (scan("x", "USLAX", 30 * D + 2 * H), AlertReason.CLONE_IMPOSSIBLE_TRAVEL),
        (scan("x", "NLRTM", 400 * D), AlertReason.EXPIRED_SEEN),
    ],
)
def test_single_rules(extra: Scan, reason: AlertReason | None) -> None:
    det = make()
    got = reasons(det.ingest_many([*LEGIT, extra]))
    if reason is None:
        assert got == set()
    else:
        assert reason in got


def test_route_policy_off_route_port_in_transit_country() -> None:
    det = make()
    policy = RoutePolicy.create(_REG, markets=["DE"], nodes=["CNSHA", "NLRTM"])
    det.set_policy("B1", policy)
    alerts = det.ingest_many([scan("a", "CNSHA", 0), scan("b", "NLAMS", 30 * D)])
    assert [a.reason for a in alerts] == [AlertReason.DIVERSION_ROUTE]
    assert alerts[0].evidence == ("b",)


def test_evidence_names_both_scans() -> None:
    det = make()
    alerts = det.ingest_many([*LEGIT, scan("x", "USLAX", 30 * D + 2 * H)])
    travel = [a for a in alerts if a.reason is AlertReason.CLONE_IMPOSSIBLE_TRAVEL]
    assert {a.evidence for a in travel} >= {("i", "x")}
    a = travel[0]
    assert a.severity == RULES[a.reason].severity and a.to_dict()["class"] == "clone"


def test_after_decommission_and_destruction_and_stolen() -> None:
    det = make()
    det.ingest_many(LEGIT)
    det.report_status(StatusReport(GTIN, "S1", "decommissioned", T0 + 40 * D, "r1"))
    alerts = det.ingest(scan("x", "NLRTM", 60 * D))
    assert reasons(alerts) == {AlertReason.CLONE_AFTER_DECOMMISSION}
    assert alerts[0].evidence == ("r1", "x")
    det.report_status(StatusReport(GTIN, "S2", "stolen", T0, "r2"))
    assert AlertReason.STOLEN_SEEN in reasons(det.ingest(scan("y", "NLRTM", D, serial="S2")))
    det.report_batch_status("B1", "recalled", T0 + 50 * D)
    assert AlertReason.RECALLED_SEEN in reasons(det.ingest(scan("z", "NLAMS", 51 * D, serial="S3")))


def test_late_status_rejudges_earlier_scans() -> None:
    det = make()
    det.ingest_many([*LEGIT, scan("x", "NLRTM", 60 * D)])
    alerts = det.report_status(StatusReport(GTIN, "S1", "destroyed", T0 + 40 * D, "r"))
    assert [(a.reason, a.evidence) for a in alerts] == [
        (AlertReason.CLONE_AFTER_DESTRUCTION, ("r", "x"))
    ]


def test_too_many_places() -> None:
    det = make()
    places = ["CNSHA", "CNNGB", "CNYTN", "CNTAO", "CNCAN", "CNTSN", "CNXMN", "CNDLC"]
    alerts = det.ingest_many([scan(f"s{i}", p, i * 10 * D) for i, p in enumerate(places)])
    assert reasons(alerts) == {AlertReason.CLONE_TOO_MANY_PLACES}  # 8 places > 3 nodes + 4


def test_volume_exceeded() -> None:
    det = make(released={"NL": 2})
    alerts = []
    for n in range(3):
        alerts += det.ingest(scan(f"v{n}", "NLRTM", 30 * D + n, serial=f"S{n}"))
        alerts += det.ingest(scan(f"w{n}", "NLAMS", 31 * D + n, serial=f"S{n}"))
    vol = [a for a in alerts if a.reason is AlertReason.VOLUME_EXCEEDED]
    assert len(vol) == 1 and vol[0].evidence == ("v2",) and vol[0].serial is None


def test_probing_many_unknown_serials() -> None:
    det = make()
    out = []
    for k in range(25):
        out += det.ingest(Scan(f"p{k}", GTIN, f"G{k}", "NLRTM", T0 + k * 60.0))
    probe = [a for a in out if a.reason is AlertReason.PROBING_UNKNOWN_SERIALS]
    assert len(probe) == 1 and len(probe[0].evidence) == 20
    # a few typos spread over days are not probing
    det2 = make()
    assert not [
        a for k in range(25) for a in det2.ingest(Scan(f"t{k}", GTIN, f"G{k}", "NLRTM", T0 + k * D))
    ]


def test_bad_input_is_refused() -> None:
    det = make()
    with pytest.raises(UnknownLocationError, match="XXZZZ"):
        det.ingest(scan("a", "XXZZZ", 0))
    with pytest.raises(InvalidScanError, match="in the future"):
        det.ingest(scan("a", "NLRTM", 500 * D))
    with pytest.raises(InvalidScanError, match="unknown batch"):
        det.ingest(Scan("a", GTIN, "S1", "NLRTM", T0, "NOPE"))
    with pytest.raises(InvalidScanError, match="after 2000"):
        det.ingest(Scan("a", GTIN, "S1", "NLRTM", float("nan"), "B1"))


def test_duplicate_delivery_is_ignored() -> None:
    det = make()
    clone = scan("x", "USLAX", 30 * D + 2 * H)
    first = det.ingest_many([*LEGIT, clone])
    assert first and det.ingest(clone) == []


SEQUENCE = [
    *LEGIT,
    scan("x", "USLAX", 30 * D + 2 * H),  # impossible travel vs NLRTM
    scan("y", "NLRTM", 1 * D),  # destination before origin, route order
    scan("z", "PLGDN", 36 * D),  # diversion
]


def _final(alerts: list) -> set[tuple[str, tuple[str, ...]]]:  # type: ignore[type-arg]
    return {(a.reason.value, a.evidence) for a in alerts}


@settings(max_examples=40, deadline=None)
@given(st.permutations(SEQUENCE))
def test_any_arrival_order_gives_the_same_alerts(order: list[Scan]) -> None:
    expected = _final(make().ingest_many(sorted(SEQUENCE, key=lambda s: s.at)))
    assert {r for r, _ in expected} >= {
        "CLONE_IMPOSSIBLE_TRAVEL",
        "SEQUENCE_BEFORE_ORIGIN",
        "SEQUENCE_ROUTE_ORDER",
        "DIVERSION_MARKET",
    }
    assert _final(make().ingest_many(order)) == expected


def test_db_store_persists_state(db_store: DbStore) -> None:
    det = make(db_store)
    det.ingest_many(LEGIT)
    assert db_store.stored_items() == 1
    assert reasons(det.ingest(scan("x", "USLAX", 30 * D + 2 * H))) >= {
        AlertReason.CLONE_IMPOSSIBLE_TRAVEL
    }
    again = make(DbStore(db_store.engine, db_store.t))  # a restart: a new detector, same db
    assert reasons(again.ingest(scan("x2", "USLAX", 30 * D + 3 * H))) >= {
        AlertReason.CLONE_IMPOSSIBLE_TRAVEL
    }


RECALL_AT = T0 + 35 * D
WITH_RECALL: list[Scan | str] = [
    scan("a1", "NLRTM", 30 * D, serial="S1"),
    scan("a2", "NLAMS", 40 * D, serial="S1"),
    scan("b1", "NLRTM", 36 * D, serial="S2"),
    scan("c1", "NLRTM", 20 * D, serial="S3"),
    "recall",
]


@settings(max_examples=40, deadline=None)
@given(st.permutations(WITH_RECALL))
def test_batch_status_in_any_arrival_order_alerts_the_same_sightings_once(
    order: list[Scan | str],
) -> None:
    det = make(released={"NL": 10})
    alerts = []
    for ev in order:
        if isinstance(ev, str):
            alerts += det.report_batch_status("B1", "recalled", RECALL_AT, "R")
        else:
            alerts += det.ingest(ev)
    recalled = sorted(a.evidence for a in alerts if a.reason is AlertReason.RECALLED_SEEN)
    assert recalled == [("R", "a2"), ("R", "b1")]


# ------------------------------------------------------------------------------ returns

RETURN = scan("r", "CNCAN", 77 * D)  # back in the origin country 44 days after the market


def test_origin_sighting_before_the_item_left_is_normal() -> None:
    det = make()
    assert det.ingest_many([*LEGIT[:2], scan("o", "CNNGB", 3 * D), *LEGIT[2:]]) == []


def test_a_return_to_the_origin_after_the_market_is_not_a_clone() -> None:
    det = make()
    assert det.ingest_many([*LEGIT, RETURN]) == []


def test_a_return_along_the_route_then_a_re_export_is_not_a_clone() -> None:
    det = make()
    back = [scan("rb1", "SGSIN", 50 * D), scan("rb2", "CNSHA", 60 * D)]
    again = [scan("rx1", "SGSIN", 66 * D), scan("rx2", "NLRTM", 88 * D)]
    assert det.ingest_many([*LEGIT, *back, *again]) == []
    # the outbound read at the hub was missed: coming back through it is still a return
    no_hub = [s for s in LEGIT if s.scan_id != "h"]
    assert make().ingest_many([*no_hub, *back]) == []


def test_a_market_sighting_before_the_item_left_is_still_a_clone() -> None:
    """The destination sighting precedes the item's departure (only the factory read before
    it): the same code cannot be in the market and still on its way to the export port."""
    det = make()
    alerts = det.ingest_many([*LEGIT, scan("c", "NLRTM", 1 * D)])
    before = [a for a in alerts if a.reason is AlertReason.SEQUENCE_BEFORE_ORIGIN]
    assert {a.evidence for a in before} == {("c", "e")}
    assert all(a.alert_class.value == "clone" for a in before)


def test_a_return_that_cannot_be_true_in_time_is_still_a_clone() -> None:
    det = make()
    alerts = det.ingest_many([*LEGIT, scan("c", "CNCAN", 30 * D + 3 * H)])
    assert reasons(alerts) == {AlertReason.CLONE_IMPOSSIBLE_TRAVEL}


def test_a_return_the_policy_forbids_is_a_diversion_not_a_clone() -> None:
    det = make()
    policy = RoutePolicy.create(
        _REG, markets=["NL"], nodes=["CNSHA", "SGSIN", "NLRTM"], returns=False,
        valid_from=T0 - D, valid_until=T0 + 300 * D,
    )  # fmt: skip
    det.set_policy("B1", policy)
    alerts = det.ingest_many([*LEGIT, RETURN])
    assert reasons(alerts) == {AlertReason.DIVERSION_RETURN}
    assert {a.alert_class.value for a in alerts} == {"diversion"}
    assert {a.evidence for a in alerts} == {("i", "r"), ("d", "r")}
    # before the item left, a sighting in the origin is its normal route, whatever the policy
    assert make_with(policy).ingest_many([*LEGIT[:2], scan("o", "CNNGB", 3 * D)]) == []


def make_with(policy: RoutePolicy) -> Detector:
    det = make()
    det.set_policy("B1", policy)
    return det


@settings(max_examples=30, deadline=None)
@given(st.permutations([*LEGIT[2:], RETURN]))
def test_a_return_is_not_a_clone_whatever_the_arrival_order_after_departure(
    order: list[Scan],
) -> None:
    """Sightings of the journey arrive in any order once the departure (export) was seen."""
    det = make()
    assert det.ingest_many([*LEGIT[:2], *order]) == []
