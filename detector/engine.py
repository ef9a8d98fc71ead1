"""The detector: `ingest(scan) -> list[Alert]`, `report_status(report) -> list[Alert]`.

Per item it keeps the last `history` sightings sorted by time. A scan is judged against the
item's policy on its own (market, route, consignee, expiry, statuses) and pairwise against
every remembered sighting (impossible travel, destination-before-origin, route order). Because
pairwise rules look at both sightings' own times, not at arrival order, a scan that arrives
late is inserted where it belongs and judged against its neighbours: any arrival order of the
same scans gives the same pairwise alerts. A status that arrives late (decommissioned at T,
reported after scans later than T were ingested) re-judges the remembered sightings after T.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from detector.errors import InvalidScanError
from detector.events import STATUS_KINDS, Batch, Scan, StatusReport, item_key
from detector.locations import LocationRegistry
from detector.policy import RoutePolicy
from detector.rules import Alert, Reason
from detector.store import ItemState, MemoryStore, ProbeWindow, StateStore

STATUS_REASON = {
    "decommissioned": Reason.CLONE_AFTER_DECOMMISSION,
    "destroyed": Reason.CLONE_AFTER_DESTRUCTION,
    "stolen": Reason.STOLEN_SEEN,
    "recalled": Reason.RECALLED_SEEN,
}
MIN_TIME = 946_684_800.0  # 2000-01-01T00:00:00Z: anything earlier is a clock or data error


@dataclass(frozen=True)
class DetectorConfig:
    max_speed_kmh: float = 900.0  # above this, two sightings cannot be the same physical item
    slack_km: float = 50.0  # same metropolitan area / coordinate imprecision
    history: int = 16  # sightings remembered per item
    extra_places: int = 4  # places allowed beyond the declared nodes (factory, depot, retail...)
    default_max_places: int = 8  # when the batch has no route policy
    probe_window_s: float = 3600.0
    probe_threshold: int = 20  # distinct unknown serials of one GTIN at one location per window
    future_skew_s: float = 300.0  # scans later than now + skew are refused

    def __post_init__(self) -> None:
        if self.max_speed_kmh <= 0 or self.history < 2 or self.probe_threshold < 2:
            raise ValueError("max_speed_kmh must be positive, history and probe_threshold >= 2")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Detector:
    def __init__(
        self,
        registry: LocationRegistry,
        store: StateStore | None = None,
        config: DetectorConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.store: StateStore = store if store is not None else MemoryStore()
        self.config = config or DetectorConfig()
        self.clock = clock
        self._batches: dict[str, Batch] = {}
        self._batch_status: dict[str, dict[str, tuple[float, str]]] = {}
        self._locs = registry._by_code  # hot path: plain dict lookups

    # -- batches and policies -------------------------------------------------------------

    def register_batch(self, batch: Batch) -> None:
        self._batches[batch.batch_id] = batch

    def batch(self, batch_id: str) -> Batch:
        try:
            return self._batches[batch_id]
        except KeyError:
            raise InvalidScanError(f"unknown batch {batch_id!r}") from None

    def set_policy(self, batch_id: str, policy: RoutePolicy | None) -> None:
        """The rights holder changes (or removes) a batch's route policy; judges later scans."""
        b = self.batch(batch_id)
        self._batches[batch_id] = Batch(b.batch_id, b.gtin, policy, b.released, b.expiry)

    def report_batch_status(self, batch_id: str, kind: str, at: float, report_id: str = "") -> None:
        """A whole batch recalled / destroyed / stolen / decommissioned from `at` on. Judges scans
        ingested from now on (including late ones); see docs/detector.md for the limit."""
        self.batch(batch_id)
        if kind not in STATUS_KINDS or not math.isfinite(at):
            raise InvalidScanError(f"bad batch status {kind!r} at {at!r}")
        statuses = self._batch_status.setdefault(batch_id, {})
        if kind not in statuses or at < statuses[kind][0]:
            statuses[kind] = (at, report_id or f"batch:{batch_id}:{kind}")

    # -- input checks ---------------------------------------------------------------------

    def _check_time(self, what: str, at: float) -> None:
        if not isinstance(at, int | float) or not math.isfinite(at) or at < MIN_TIME:
            raise InvalidScanError(f"{what}: timestamp {at!r} is not a time after 2000-01-01")
        now = self.clock()
        if at > now + self.config.future_skew_s:
            raise InvalidScanError(
                f"{what}: timestamp {_iso(at)} is in the future (now {_iso(now)})"
            )

    # -- status ---------------------------------------------------------------------------

    def report_status(self, report: StatusReport) -> list[Alert]:
        """Record an item status; returns alerts for remembered sightings after it."""
        self._check_time(f"status {report.report_id or report.kind}", report.at)
        key = item_key(report.gtin, report.serial)
        st = self.store.get_item(key) or ItemState(None)
        rid = report.report_id or f"status:{report.kind}:{key}"
        old = st.status.get(report.kind)
        if old is not None and old[0] <= report.at:
            return []
        st.status[report.kind] = (report.at, rid)
        reason = STATUS_REASON[report.kind]
        alerts = []
        for t, loc, sid in st.sightings:
            if t >= report.at and (old is None or t < old[0]):
                alerts.append(
                    Alert(
                        reason,
                        report.gtin,
                        report.serial,
                        st.batch_id,
                        loc,
                        t,
                        tuple(sorted((sid, rid))),
                        f"seen at {loc} on {_iso(t)}, {report.kind} since {_iso(report.at)}",
                    )
                )
        self.store.put_item(key, st)
        return alerts

    # -- scans ----------------------------------------------------------------------------

    def ingest_many(self, scans: Iterable[Scan]) -> list[Alert]:
        out: list[Alert] = []
        for s in scans:
            out.extend(self.ingest(s))
        return out

    def ingest(self, scan: Scan) -> list[Alert]:
        loc = self._locs.get(scan.location)
        if loc is None:
            self.registry.get(scan.location)  # raises UnknownLocationError with the message
        assert loc is not None
        t = scan.at
        if not (MIN_TIME <= t <= self.clock() + self.config.future_skew_s):
            self._check_time(f"scan {scan.scan_id}", t)
        if scan.batch_id is None:
            return self._probe(scan)
        batch = self._batches.get(scan.batch_id)
        if batch is None:
            raise InvalidScanError(f"scan {scan.scan_id}: unknown batch {scan.batch_id!r}")
        key = scan.gtin + "/" + scan.serial
        store = self.store
        st = store.get_item(key)
        if st is None:
            st = ItemState(scan.batch_id)
        elif st.batch_id is None:
            st.batch_id = scan.batch_id
        sid = scan.scan_id
        sightings = st.sightings
        for s in sightings:
            if s[2] == sid:
                return []  # the same scan delivered twice
        alerts: list[Alert] = []
        here = scan.location
        country = loc.country
        policy = batch.policy
        gtin, serial, batch_id = scan.gtin, scan.serial, scan.batch_id

        def alert(reason: Reason, evidence: tuple[str, ...], detail: str) -> None:
            alerts.append(Alert(reason, gtin, serial, batch_id, here, t, evidence, detail))

        # rules on the scan alone
        if policy is not None and policy.applies(t):
            if (
                here not in policy.node_set
                and country not in policy.markets
                and country != policy.origin_country
            ):
                if country in policy.node_country_set:
                    alert(
                        Reason.DIVERSION_ROUTE,
                        (sid,),
                        f"seen at {here}, not a declared node ({' > '.join(policy.nodes)})",
                    )
                else:
                    alert(
                        Reason.DIVERSION_MARKET,
                        (sid,),
                        f"seen in {country} at {here}; authorized markets "
                        f"{', '.join(sorted(policy.markets))}",
                    )
            if (
                policy.consignees
                and scan.consignee is not None
                and scan.consignee not in policy.consignees
            ):
                alert(
                    Reason.DIVERSION_CONSIGNEE,
                    (sid,),
                    f"consignee {scan.consignee!r} is not authorized for this batch",
                )
        if batch.expiry is not None and t > batch.expiry:
            alert(Reason.EXPIRED_SEEN, (sid,), f"seen {_iso(t)}, expired {_iso(batch.expiry)}")
        for statuses in (st.status, self._batch_status.get(batch_id)):
            if statuses:
                for kind, (since, rid) in statuses.items():
                    if t >= since:
                        alert(
                            STATUS_REASON[kind],
                            tuple(sorted((sid, rid))),
                            f"seen at {here} on {_iso(t)}, {kind} since {_iso(since)}",
                        )

        # pairwise rules against the remembered sightings
        if sightings:
            cfg = self.config
            dist = self.registry.distance_km
            speed, slack = cfg.max_speed_kmh, cfg.slack_km
            locs = self._locs
            origin = policy.origin_country if policy is not None else None
            markets = policy.markets if policy is not None else frozenset()
            node_index = policy.node_index if policy is not None else {}
            for t2, here2, sid2 in sightings:
                if here2 == here:
                    continue
                d = dist(here, here2)
                dt = t - t2 if t >= t2 else t2 - t
                if d > slack and d - slack > speed * dt / 3600.0:
                    alert(
                        Reason.CLONE_IMPOSSIBLE_TRAVEL,
                        tuple(sorted((sid, sid2))),
                        f"{here2} {_iso(t2)} and {here} {_iso(t)}: {d:.0f} km in {dt / 3600:.1f} h",
                    )
                if policy is None or t2 == t:
                    continue
                if t2 < t:
                    (ta, la, ia), (tb, lb, ib) = (t2, here2, sid2), (t, here, sid)
                else:
                    (ta, la, ia), (tb, lb, ib) = (t, here, sid), (t2, here2, sid2)
                ca, cb = locs[la].country, locs[lb].country
                if origin is not None and ca in markets and ca != origin and cb == origin:
                    alert(
                        Reason.SEQUENCE_BEFORE_ORIGIN,
                        tuple(sorted((ia, ib))),
                        f"in {ca} at {la} on {_iso(ta)}, then still in origin {cb} at {lb} "
                        f"on {_iso(tb)}",
                    )
                na, nb = node_index.get(la), node_index.get(lb)
                if na is not None and nb is not None and na > nb:
                    alert(
                        Reason.SEQUENCE_ROUTE_ORDER,
                        tuple(sorted((ia, ib))),
                        f"at {la} on {_iso(ta)} before {lb} on {_iso(tb)}",
                    )

        # remember the sighting (sorted by time, last `history` kept)
        bisect.insort(sightings, (t, here, sid))
        if len(sightings) > self.config.history:
            del sightings[0]

        # distinct places
        if not st.fired_places and here not in st.places:
            st.places[here] = sid
            limit = (
                len(policy.nodes) + self.config.extra_places
                if policy is not None
                else self.config.default_max_places
            )
            if len(st.places) > limit:
                st.fired_places = True
                alert(
                    Reason.CLONE_TOO_MANY_PLACES,
                    tuple(sorted(st.places.values())),
                    f"seen at {len(st.places)} distinct places, the route allows {limit}",
                )

        # volume per (batch, market)
        released = batch.released
        if released and country in released and country not in st.markets:
            st.markets.append(country)
            n = store.incr_volume(batch_id, country)
            if n > released[country]:
                alerts.append(
                    Alert(
                        Reason.VOLUME_EXCEEDED,
                        gtin,
                        None,
                        batch_id,
                        here,
                        t,
                        (sid,),
                        f"{n} distinct items of batch {batch_id} seen in {country}, "
                        f"{released[country]} released there (this one: serial {serial})",
                    )
                )
        store.put_item(key, st)
        return alerts

    def _probe(self, scan: Scan) -> list[Alert]:
        cfg = self.config
        key = scan.gtin + "@" + scan.location
        window = self.store.get_probe(key) or ProbeWindow()
        entries = window.entries
        bisect.insort(entries, (scan.at, scan.serial, scan.scan_id))
        newest = entries[-1][0]
        cut = bisect.bisect_left(entries, (newest - cfg.probe_window_s,))
        if cut:
            del entries[:cut]
        if len(entries) > 4 * cfg.probe_threshold:
            del entries[: len(entries) - 4 * cfg.probe_threshold]
        alerts = []
        serials = {e[1] for e in entries}
        if len(serials) >= cfg.probe_threshold and scan.at >= window.quiet_until:
            window.quiet_until = newest + cfg.probe_window_s
            alerts.append(
                Alert(
                    Reason.PROBING_UNKNOWN_SERIALS,
                    scan.gtin,
                    None,
                    None,
                    scan.location,
                    scan.at,
                    tuple(sorted(e[2] for e in entries)),
                    f"{len(serials)} unknown serials of GTIN {scan.gtin} at {scan.location} "
                    f"within {cfg.probe_window_s / 60:.0f} min",
                )
            )
        self.store.put_probe(key, window)
        return alerts

    def flush(self) -> None:
        self.store.flush()

    def close(self) -> None:
        self.store.close()
