"""The detector: `ingest(scan) -> list[Alert]`, `report_status(report) -> list[Alert]`.

Per item it keeps the last `history` sightings sorted by time. A scan is judged against the
item's policy on its own (market, route, consignee, expiry, statuses) and pairwise against
every remembered sighting (impossible travel, destination-before-origin, route order). A pair
whose later sighting lies behind the earlier one (back in the origin country, or at an earlier
node of the route) is a copy only when no third sighting, before the later one, shows the
item at that place or beyond it; otherwise the item came back (a repair, a recall, a
re-export): lawful, or a diversion when its route policy allows no returns. Because
pairwise rules look at both sightings' own times, not at arrival order, a scan that arrives
late is inserted where it belongs and judged against its neighbours: any arrival order of the
same scans gives the same pairwise alerts. A status that arrives late (decommissioned at T,
reported after scans later than T were ingested) re-judges the remembered sightings after T;
so does a batch status, for every item of the batch seen at or after T (below).

All state goes through `store.apply` (detector.store): one transaction per chunk of scans, so
the same code serves one scan at a time (`ingest`) and bulk feeds (`ingest_many`), on a store in
memory or in a database shared by several processes.

Batch statuses and exactly-once alerts. Each item remembers, per batch status kind, the
effective time its sightings were last judged against (`ItemState.applied`). Whenever the item
is written (a scan, or a re-judge), its sightings are first brought up to date with the batch's
current statuses: the sightings the newly known (or earlier) status covers are alerted once,
and `applied` moves, in the same transaction. A batch status is recorded first and then every
item of the batch seen since is re-judged; a scan's transaction reads the statuses, commits,
then reads them again and re-judges its items if they changed. Either way the one that comes
second sees the other's work, and the version check of the store makes each alert happen once.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from detector.errors import InvalidScanError
from detector.events import STATUS_KINDS, BatchProfile, Scan, StatusReport, item_key
from detector.locations import Location, LocationRegistry
from detector.policy import RoutePolicy
from detector.rules import Alert, AlertReason
from detector.store import ItemState, Lru, MemoryStore, ProbeWindow, StateStore, Statuses

STATUS_REASON = {
    "decommissioned": AlertReason.CLONE_AFTER_DECOMMISSION,
    "destroyed": AlertReason.CLONE_AFTER_DESTRUCTION,
    "stolen": AlertReason.STOLEN_SEEN,
    "recalled": AlertReason.RECALLED_SEEN,
}
MIN_TIME = 946_684_800.0
#: `_ingest_items`' result inside its transaction: all alerts, the positions of the items
#: counted for volume, the alerts per item
_ItemsResult = tuple[
    list[Alert], list[int], list[list[Alert]]
]  # 2000-01-01T00:00:00Z: anything earlier is a clock or data error


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
    chunk: int = 2_000  # scans judged per store transaction by `ingest_many`
    batch_cache: int = 100_000  # batches kept in memory when a batch loader is given

    def __post_init__(self) -> None:
        if self.max_speed_kmh <= 0 or self.history < 2 or self.probe_threshold < 2:
            raise ValueError("max_speed_kmh must be positive, history and probe_threshold >= 2")
        if self.chunk < 1 or self.batch_cache < 1:
            raise ValueError("chunk and batch_cache must be positive")


def _passed(
    sightings: list[tuple[float, str, str]],
    before: float,
    position: int,
    pair: tuple[str, str],
    policy: RoutePolicy,
    locs: dict[str, Location],
) -> bool:
    """Whether the item was seen at route position `position` or beyond it before `before`,
    by a sighting other than the two of the `pair` being judged.

    Positions: a declared node is its index in the route; any other place in the origin
    country is -1 (the factory, a depot: not yet on the way out); any other place abroad is
    past the whole route. A sighting at the export node or abroad shows the item left its
    origin, so a later sighting back there is a return, not a copy of a code that is still
    at home."""
    origin = policy.origin_country
    last = len(policy.nodes)
    for t, here, sid in sightings:
        if t >= before:
            break
        if sid in pair:
            continue
        node = policy.node_index.get(here)
        if node is None:
            node = -1 if locs[here].country == origin else last
        if node >= position:
            return True
    return False


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Detector:
    def __init__(
        self,
        registry: LocationRegistry,
        store: StateStore | None = None,
        config: DetectorConfig | None = None,
        clock: Callable[[], float] = time.time,
        batch_loader: Callable[[str], BatchProfile | None] | None = None,
        sink: Callable[[Any, list[Alert]], None] | None = None,
    ) -> None:
        """`batch_loader` (optional) finds a batch the detector has not been told about; with
        it, batches are kept in a bounded LRU (`config.batch_cache`) and reloaded on demand.

        `sink` (optional) is called with the store's transaction handle (a SQLAlchemy
        `Connection` for `DbStore`, None in memory) and the alerts a store transaction raised,
        inside that transaction before it commits: the gateway stores its alert rows and
        webhook deliveries there, so state and alerts are committed together (one durable
        commit) and a crash in between cannot judge a scan without keeping its alerts. A
        transaction that raised no alert may be committed without waiting for the flush (see
        `DbStore`): what it wrote can be recomputed, and no alert depends on it being durable."""
        self.registry = registry
        self.sink = sink
        self.store: StateStore = store if store is not None else MemoryStore()
        self.config = config or DetectorConfig()
        self.clock = clock
        self._loader = batch_loader
        self._batches: dict[str, BatchProfile] = {}
        self._cached = Lru(self.config.batch_cache)
        self._locs = registry._by_code  # hot path: plain dict lookups

    # -- batches and policies -------------------------------------------------------------

    def register_batch(self, batch: BatchProfile) -> None:
        if self._loader is None:
            self._batches[batch.batch_id] = batch
        else:
            self._cached.put(batch.batch_id, batch)

    def forget_batch(self, batch_id: str) -> None:
        """Drop a cached batch (its policy changed elsewhere): reloaded on next use."""
        self._batches.pop(batch_id, None)
        self._cached.pop(batch_id)

    def _emit(self, alerts: list[Alert], tx: Any) -> bool:
        """Inside a store transaction: hand its alerts to the sink; True (commit durably) when
        there are any."""
        if alerts and self.sink is not None:
            self.sink(tx, alerts)
        return bool(alerts)

    def _finish(self, result: list[Alert], _totals: dict[tuple[str, str], int], tx: Any) -> bool:
        return self._emit(result, tx)

    def find_batch(self, batch_id: str) -> BatchProfile | None:
        batch = self._batches.get(batch_id)
        if batch is None and self._loader is not None:
            batch = self._cached.get(batch_id)
            if batch is None:
                batch = self._loader(batch_id)
                if batch is not None:
                    self._cached.put(batch_id, batch)
        return batch

    def batch(self, batch_id: str) -> BatchProfile:
        found = self.find_batch(batch_id)
        if found is None:
            raise InvalidScanError(f"unknown batch {batch_id!r}")
        return found

    def set_policy(self, batch_id: str, policy: RoutePolicy | None) -> None:
        """The rights holder changes (or removes) a batch's route policy; judges later scans."""
        b = self.batch(batch_id)
        self.register_batch(BatchProfile(b.batch_id, b.gtin, policy, b.released, b.expiry))

    def report_batch_status(
        self, batch_id: str, kind: str, at: float, report_id: str = ""
    ) -> list[Alert]:
        """A whole batch recalled / destroyed / stolen / decommissioned from `at` on.

        Recorded in the store (the earliest time wins); when that changed what was known, every
        item of the batch already seen at or after `at` is re-judged and alerted (once: see the
        module docstring). Scans ingested later are judged against it as they come."""
        self.batch(batch_id)
        if kind not in STATUS_KINDS or not isinstance(at, int | float) or not math.isfinite(at):
            raise InvalidScanError(f"bad batch status {kind!r} at {at!r}")
        if not self.store.set_batch_status(
            batch_id, kind, float(at), report_id or f"batch:{batch_id}:{kind}"
        ):
            return []
        alerts: list[Alert] = []
        for keys in self.store.items_of_batch(batch_id, float(at), self.config.chunk):
            alerts += self._rejudge(keys, [batch_id])
        return alerts

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
        rid = report.report_id or f"status:{report.kind}:{key}"
        reason = STATUS_REASON[report.kind]

        def fn(
            states: dict[str, ItemState], statuses: dict[str, Statuses]
        ) -> tuple[list[Alert], list[tuple[str, str]]]:
            st = states.get(key)
            if st is None:
                st = states[key] = ItemState(None)
            old = st.status.get(report.kind)
            if old is not None and old[0] <= report.at:
                return [], []
            st.status[report.kind] = (report.at, rid)
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
            return alerts, []

        def finish(result: list[Alert], _totals: dict[tuple[str, str], int], tx: Any) -> bool:
            self._emit(result, tx)
            return True  # a status is not derived from scans: always commit it durably

        alerts, _, _, _ = self.store.apply([key], [], fn, finish)
        return alerts

    def _sync_batch(self, st: ItemState, key: str, statuses: Statuses | None) -> list[Alert]:
        """Bring an item's sightings up to date with its batch's statuses (see the module
        docstring): alerts for the sightings a status learnt since the last judgement covers."""
        if not statuses:
            return []
        alerts: list[Alert] = []
        for kind, (since, rid) in statuses.items():
            prev = st.applied.get(kind)
            if prev is not None and prev <= since:
                continue
            gtin, _, serial = key.partition("/")
            for t, loc, sid in st.sightings:
                if t >= since and (prev is None or t < prev):
                    alerts.append(
                        Alert(
                            STATUS_REASON[kind],
                            gtin,
                            serial,
                            st.batch_id,
                            loc,
                            t,
                            tuple(sorted((sid, rid))),
                            f"seen at {loc} on {_iso(t)}, batch {kind} since {_iso(since)}",
                        )
                    )
            st.applied[kind] = since
        return alerts

    def _rejudge(self, keys: list[str], batch_ids: list[str]) -> list[Alert]:
        """Re-judge stored items against their batches' current statuses (one transaction)."""

        def fn(
            states: dict[str, ItemState], statuses: dict[str, Statuses]
        ) -> tuple[list[Alert], list[tuple[str, str]]]:
            alerts: list[Alert] = []
            for key, st in states.items():
                if st.batch_id is not None:
                    alerts += self._sync_batch(st, key, statuses.get(st.batch_id))
            return alerts, []

        alerts, _, _, _ = self.store.apply(keys, batch_ids, fn, self._finish)
        return alerts

    # -- scans ----------------------------------------------------------------------------

    def ingest(self, scan: Scan) -> list[Alert]:
        """Judge one scan (one store transaction)."""
        return self._ingest_chunk([scan])

    def ingest_many(self, scans: Iterable[Scan]) -> list[Alert]:
        """Judge many scans in order, `config.chunk` per store transaction (bulk feeds: EPCIS
        capture, replays, the benchmark). Same alerts as `ingest` one by one. A bad scan raises
        before anything of its chunk is stored; earlier chunks stay stored."""
        out: list[Alert] = []
        buf: list[Scan] = []
        size = self.config.chunk
        for s in scans:
            buf.append(s)
            if len(buf) >= size:
                out += self._ingest_chunk(buf)
                buf = []
        if buf:
            out += self._ingest_chunk(buf)
        return out

    def ingest_each(self, scans: list[Scan]) -> list[list[Alert]]:
        """Judge `scans` in order in one store transaction and return the alerts each one
        raised (same alerts, stored the same way, as `ingest` one by one). The gateway groups
        the scans of concurrent requests this way (group commit, `api.detection`): one
        transaction for a group instead of one per scan. A bad scan raises before anything of
        the group is stored."""
        out: list[list[Alert]] = [[] for _ in scans]
        items, at, probes = self._sort_scans(scans)
        if items:
            _, per = self._ingest_items(items)
            for position, alerts in zip(at, per, strict=True):
                out[position] = alerts
        for position in probes:
            out[position] = self._probe(scans[position])
        return out

    def _sort_scans(
        self, scans: list[Scan]
    ) -> tuple[list[tuple[Scan, Location, BatchProfile]], list[int], list[int]]:
        """Check every scan (raises on the first bad one) and split them into items of known
        batches (with their positions in `scans`) and positions of unknown serials (probes)."""
        items: list[tuple[Scan, Location, BatchProfile]] = []
        at: list[int] = []
        probes: list[int] = []
        horizon = self.clock() + self.config.future_skew_s
        locs = self._locs
        for position, scan in enumerate(scans):
            loc = locs.get(scan.location)
            if loc is None:
                self.registry.get(scan.location)  # raises UnknownLocationError with the message
            assert loc is not None
            if not (MIN_TIME <= scan.at <= horizon):
                self._check_time(f"scan {scan.scan_id}", scan.at)
            if scan.batch_id is None:
                probes.append(position)
                continue
            batch = self.find_batch(scan.batch_id)
            if batch is None:
                raise InvalidScanError(f"scan {scan.scan_id}: unknown batch {scan.batch_id!r}")
            items.append((scan, loc, batch))
            at.append(position)
        return items, at, probes

    def _ingest_chunk(self, scans: list[Scan]) -> list[Alert]:
        items, _, probes = self._sort_scans(scans)
        alerts: list[Alert] = []
        if items:
            alerts += self._ingest_items(items)[0]
        for position in probes:
            alerts += self._probe(scans[position])
        return alerts

    def _ingest_items(
        self, items: list[tuple[Scan, Location, BatchProfile]]
    ) -> tuple[list[Alert], list[list[Alert]]]:
        """One store transaction for `items`: all their alerts, and the same alerts per item
        (those its own judgement, its volume count and a re-judge of its item raised)."""
        keys = sorted({s.gtin + "/" + s.serial for s, _, _ in items})
        batch_ids = sorted({b.batch_id for _, _, b in items})
        judge = self._judge

        def fn(
            states: dict[str, ItemState], statuses: dict[str, Statuses]
        ) -> tuple[_ItemsResult, list[tuple[str, str]]]:
            alerts: list[Alert] = []
            per: list[list[Alert]] = []
            counted: list[int] = []  # positions in `items` counted for volume
            increments: list[tuple[str, str]] = []
            for position, (scan, loc, batch) in enumerate(items):
                start = len(alerts)
                key = scan.gtin + "/" + scan.serial
                st = states.get(key)
                if st is None:
                    st = states[key] = ItemState(batch.batch_id)
                elif st.batch_id is None:
                    st.batch_id = batch.batch_id
                bstat = statuses.get(batch.batch_id)
                if bstat:
                    alerts += self._sync_batch(st, key, bstat)
                if judge(st, scan, loc, batch, bstat, alerts):
                    counted.append(position)
                    increments.append((batch.batch_id, loc.country))
                per.append(alerts[start:])
            return (alerts, counted, per), increments

        def finish(result: _ItemsResult, totals: dict[tuple[str, str], int], tx: Any) -> bool:
            alerts, counted, per = result
            if counted:  # the volume totals are known inside the transaction
                for position, alert in self._volume_pairs([items[p] for p in counted], totals):
                    alerts.append(alert)
                    per[counted[position]].append(alert)
            return self._emit(alerts, tx)

        (alerts, _, per), _, seen, now = self.store.apply(keys, batch_ids, fn, finish)
        # a batch status recorded while this chunk was judged: re-judge (see module docstring).
        # `_rejudge` brings each item up to the statuses current in its own transaction.
        changed = [b for b in batch_ids if now.get(b, {}) != seen.get(b, {})]
        if changed:
            subset = sorted({s.gtin + "/" + s.serial for s, _, b in items if b.batch_id in changed})
            late = self._rejudge(subset, changed)
            alerts += late
            last = {s.gtin + "/" + s.serial: p for p, (s, _, _) in enumerate(items)}
            for alert in late:  # to the last scan of the item in this chunk
                position = last.get(f"{alert.gtin}/{alert.serial}")
                if position is not None:
                    per[position].append(alert)
        return alerts, per

    def _volume_pairs(
        self, counted: list[tuple[Scan, Location, BatchProfile]], totals: dict[tuple[str, str], int]
    ) -> list[tuple[int, Alert]]:
        """The store numbered this chunk's distinct items per (batch, market) consecutively,
        ending at `totals`: each one beyond the released quantity is an alert (with the
        position in `counted` of the scan that raised it)."""
        per: Counter[tuple[str, str]] = Counter((b.batch_id, loc.country) for _, loc, b in counted)
        done: Counter[tuple[str, str]] = Counter()
        alerts = []
        for position, (scan, loc, batch) in enumerate(counted):
            k = (batch.batch_id, loc.country)
            n = totals[k] - per[k] + 1 + done[k]
            done[k] += 1
            released = batch.released[loc.country]
            if n > released:
                alerts.append(
                    (
                        position,
                        Alert(
                            AlertReason.VOLUME_EXCEEDED,
                            scan.gtin,
                            None,
                            batch.batch_id,
                            scan.location,
                            scan.at,
                            (scan.scan_id,),
                            f"{n} distinct items of batch {batch.batch_id} seen in {loc.country}, "
                            f"{released} released there (this one: serial {scan.serial})",
                        ),
                    )
                )
        return alerts

    def _judge(
        self,
        st: ItemState,
        scan: Scan,
        loc: Location,
        batch: BatchProfile,
        batch_statuses: Statuses | None,
        alerts: list[Alert],
    ) -> bool:
        """Judge one scan against the item's state and remember it; appends to `alerts`.
        Returns True when the item counts for the volume of its (batch, market)."""
        sid = scan.scan_id
        sightings = st.sightings
        for s in sightings:
            if s[2] == sid:
                return False  # the same scan delivered twice
        t = scan.at
        here = scan.location
        country = loc.country
        policy = batch.policy
        gtin, serial, batch_id = scan.gtin, scan.serial, batch.batch_id

        def alert(
            reason: AlertReason,
            evidence: tuple[str, ...],
            detail: str,
            other: tuple[str, float] | None = None,
        ) -> None:
            where, when = other if other is not None else (None, None)
            markets = tuple(sorted(policy.markets)) if policy is not None else ()
            alerts.append(
                Alert(
                    reason, gtin, serial, batch_id, here, t, evidence, detail, where, when, markets
                )
            )

        # rules on the scan alone
        if policy is not None and policy.applies(t):
            if (
                here not in policy.node_set
                and country not in policy.markets
                and country != policy.origin_country
            ):
                if country in policy.node_country_set:
                    alert(
                        AlertReason.DIVERSION_ROUTE,
                        (sid,),
                        f"seen at {here}, not a declared node ({' > '.join(policy.nodes)})",
                    )
                else:
                    alert(
                        AlertReason.DIVERSION_MARKET,
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
                    AlertReason.DIVERSION_CONSIGNEE,
                    (sid,),
                    f"consignee {scan.consignee!r} is not authorized for this batch",
                )
        if batch.expiry is not None and t > batch.expiry:
            alert(AlertReason.EXPIRED_SEEN, (sid,), f"seen {_iso(t)}, expired {_iso(batch.expiry)}")
        for statuses, scope in ((st.status, ""), (batch_statuses, "batch ")):
            if statuses:
                for kind, (since, rid) in statuses.items():
                    if t >= since:
                        alert(
                            STATUS_REASON[kind],
                            tuple(sorted((sid, rid))),
                            f"seen at {here} on {_iso(t)}, {scope}{kind} since {_iso(since)}",
                        )

        # pairwise rules against the remembered sightings
        if sightings:
            cfg = self.config
            dist = self.registry.distance_km
            speed, slack = cfg.max_speed_kmh, cfg.slack_km
            locs = self._locs
            origin = policy.origin_country if policy is not None else None
            market_set = policy.markets if policy is not None else frozenset()
            node_index = policy.node_index if policy is not None else {}
            for t2, here2, sid2 in sightings:
                if here2 == here:
                    continue
                d = dist(here, here2)
                dt = t - t2 if t >= t2 else t2 - t
                if d > slack and d - slack > speed * dt / 3600.0:
                    alert(
                        AlertReason.CLONE_IMPOSSIBLE_TRAVEL,
                        tuple(sorted((sid, sid2))),
                        f"{here2} {_iso(t2)} and {here} {_iso(t)}: {d:.0f} km in {dt / 3600:.1f} h",
                        (here2, t2),
                    )
                if policy is None or t2 == t:
                    continue
                if t2 < t:
                    (ta, la, ia), (tb, lb, ib) = (t2, here2, sid2), (t, here, sid)
                else:
                    (ta, la, ia), (tb, lb, ib) = (t, here, sid), (t2, here2, sid2)
                ca, cb = locs[la].country, locs[lb].country
                na, nb = node_index.get(la), node_index.get(lb)
                back_home = (
                    origin is not None and ca in market_set and ca != origin and cb == origin
                )
                back_route = na is not None and nb is not None and na > nb
                if not (back_home or back_route):
                    continue
                # Later at a place behind the earlier one: a copy only if nothing else shows
                # the item passed that place before coming back (another sighting there or
                # beyond it, before the later one); otherwise it came back.
                assert policy is not None
                position = max(-1 if nb is None else nb, 0)
                if _passed(sightings, tb, position, (ia, ib), policy, locs):
                    if back_home and not policy.returns and policy.applies(tb):
                        alert(
                            AlertReason.DIVERSION_RETURN,
                            tuple(sorted((ia, ib))),
                            f"in {ca} at {la} on {_iso(ta)}, back in origin {cb} at {lb} on "
                            f"{_iso(tb)}; the route policy allows no returns",
                            (here2, t2),
                        )
                    continue
                if back_home:
                    alert(
                        AlertReason.SEQUENCE_BEFORE_ORIGIN,
                        tuple(sorted((ia, ib))),
                        f"in {ca} at {la} on {_iso(ta)}, then still in origin {cb} at {lb} "
                        f"on {_iso(tb)}, not seen leaving it before",
                        (here2, t2),
                    )
                if back_route:
                    alert(
                        AlertReason.SEQUENCE_ROUTE_ORDER,
                        tuple(sorted((ia, ib))),
                        f"at {la} on {_iso(ta)} before {lb} on {_iso(tb)}",
                        (here2, t2),
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
                    AlertReason.CLONE_TOO_MANY_PLACES,
                    tuple(sorted(st.places.values())),
                    f"seen at {len(st.places)} distinct places, the route allows {limit}",
                )

        # volume per (batch, market): counted once per item and market, numbered by the store
        released = batch.released
        if released and country in released and country not in st.markets:
            st.markets.append(country)
            return True
        return False

    def _probe(self, scan: Scan) -> list[Alert]:
        cfg = self.config

        def fn(window: ProbeWindow) -> list[Alert]:
            entries = window.entries
            for e in entries:
                if e[2] == scan.scan_id:
                    return []  # the same scan delivered twice
            bisect.insort(entries, (scan.at, scan.serial, scan.scan_id))
            newest = entries[-1][0]
            cut = bisect.bisect_left(entries, (newest - cfg.probe_window_s,))
            if cut:
                del entries[:cut]
            if len(entries) > 4 * cfg.probe_threshold:
                del entries[: len(entries) - 4 * cfg.probe_threshold]
            serials = {e[1] for e in entries}
            if len(serials) < cfg.probe_threshold or scan.at < window.quiet_until:
                return []
            window.quiet_until = newest + cfg.probe_window_s
            return [
                Alert(
                    AlertReason.PROBING_UNKNOWN_SERIALS,
                    scan.gtin,
                    None,
                    None,
                    scan.location,
                    scan.at,
                    tuple(sorted(e[2] for e in entries)),
                    f"{len(serials)} unknown serials of GTIN {scan.gtin} at {scan.location} "
                    f"within {cfg.probe_window_s / 60:.0f} min",
                )
            ]

        return self.store.apply_probe(
            "probe:" + scan.gtin + "@" + scan.location,
            fn,
            lambda alerts, tx: self._emit(alerts, tx),
        )

    def flush(self) -> None:
        self.store.flush()

    def close(self) -> None:
        self.store.close()
