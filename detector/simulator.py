"""Supply-chain simulator with injected diversions and clones, and ground truth.

Legitimate flow per batch: factory (inland, origin country) -> export port or airport ->
[transshipment hub, sea only] -> import port or airport -> distribution centre (destination
market, authorized consignee) -> sold (decommissioned). Sea legs move at ~28 km/h over 1.3x the
great-circle distance plus port time; air legs at ~800 km/h plus handling. Every read happens
with probability `read_rate`. Deterministic for a seed.

Injected anomalies (per item, ground truth in `SimResult.truth`):
  diversion: market (goes on to a distribution centre in an unauthorized country),
             port (imported through a port of an unauthorized country),
             consignee (delivered to an unauthorized consignee in the right market);
  clone:     after_sale (copies of a sold item's code read later),
             parallel (a copy read far away while the genuine item is being read elsewhere),
             many_places (copies read at many places);
  return:    (legitimate, or a diversion when the batch's policy allows no returns) an item that
             reached its distribution centre goes back to its origin country weeks later (a
             repair, a recall) the way it came, and half of them are exported again to the
             same market;
  volume (per batch, ground truth in `SimResult.volume`): part of a batch is held back at the
             factory and not released to the market (`BatchProfile.released` says so); in a volume
             diversion some of the held items are shipped into the market anyway, each on a
             perfectly ordinary route, so only the count of distinct items seen there shows it.
             Batches that hold stock back without leaking it are the legitimate counterpart.
An anomaly is *detectable* when the emitted scans make it visible: a diverted leg was read; a
copy was read after the sale, or a (genuine, copy) pair of reads is farther apart than
`max_speed_kmh` allows, or a copy was read in the destination before the genuine item was last
read in its origin country, or the reads span more places than the route allows; a forbidden
return when the item was read back in its origin country, within the policy's window, after a
read in its market that itself followed a read at the export node or abroad (it was seen
leaving); a volume diversion when more distinct items of the batch were read in the market
than were released.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from detector.events import BatchProfile, Scan, StatusReport
from detector.locations import LocationRegistry, haversine_km
from detector.policy import RoutePolicy

DAY = 86_400.0
HOUR = 3_600.0

# origin country -> (sea export ports, export airports)
ORIGINS = {
    "CN": (["CNSHA", "CNNGB", "CNYTN", "CNTAO"], ["CNPVG", "CNCAN"]),
    "VN": (["VNSGN", "VNHPH"], ["VNSGN", "VNHAN"]),
    "IN": (["INNSA"], ["INBOM"]),
    "TR": (["TRMER"], ["TRIST"]),
    "BD": (["BDCGP"], ["BDDAC"]),
}
# destination market -> (sea import ports, import airports)
MARKETS = {
    "NL": (["NLRTM"], ["NLAMS"]),
    "DE": (["DEHAM", "DEBRV"], ["DEFRA"]),
    "US": (["USLAX", "USNYC", "USSAV"], ["USJFK", "USORD"]),
    "GB": (["GBFXT", "GBSOU"], ["GBLHR"]),
    "FR": (["FRLEH"], ["FRCDG"]),
    "JP": (["JPTYO", "JPYOK"], ["JPNRT"]),
    "AU": (["AUSYD", "AUMEL"], ["AUSYD"]),
    "BR": (["BRSSZ"], ["BRGRU"]),
}
# markets goods get diverted to (never authorized in the simulation)
GREY = {
    "PL": (["PLGDN"], ["PLWAW"]),
    "RU": (["RULED"], ["RUSVO"]),
    "MX": (["MXZLO"], ["MXMEX"]),
    "AE": (["AEJEA"], ["AEDXB"]),
    "NG": (["NGAPP"], ["NGLOS"]),
}
HUBS = ["SGSIN", "LKCMB", "MYPKG"]
SEA_KMH, SEA_DETOUR, AIR_KMH = 28.0, 1.3, 800.0


@dataclass(frozen=True)
class SimConfig:
    seed: int = 7
    batches: int = 120
    items_per_batch: tuple[int, int] = (20, 60)
    read_rate: float = 0.8
    diversion_rate: float = 0.02  # share of items
    clone_rate: float = 0.02
    air_share: float = 0.25
    late_share: float = 0.03  # scans delivered up to 12 h after later ones
    volume_rate: float = 0.05  # share of batches with a volume diversion
    held_rate: float = 0.15  # share of batches holding stock back legitimately
    return_rate: float = 0.05  # share of delivered items that go back to the origin country
    no_returns_rate: float = 0.25  # share of batches whose policy allows no returns
    probes: int = 3  # probing attacks (20-40 unknown serials at one port within an hour)
    start: float = 1_700_000_000.0
    max_speed_kmh: float = 900.0
    extra_places: int = 4


@dataclass
class Truth:
    kind: str  # "legit", "diversion", "clone"
    #: "" (plain legitimate flow), the diversion or clone scenario, or "return" (legit or not)
    scenario: str = ""
    detectable: bool = False


@dataclass
class VolumeTruth:
    """One batch's release to its market: `leaked` held-back items shipped there anyway."""

    market: str
    released: int
    held: int
    leaked: int
    seen: int = 0  # distinct items of the batch read in the market
    detectable: bool = False


@dataclass
class SimResult:
    registry: LocationRegistry
    batches: list[BatchProfile]
    events: list[Scan | StatusReport]  # in delivery order
    truth: dict[str, Truth]  # item key -> truth
    probes: list[tuple[str, str]] = field(default_factory=list)  # (gtin, locode) attacked
    end: float = 0.0
    volume: dict[str, VolumeTruth] = field(default_factory=dict)  # batch id -> release truth


def _gtin(n: int) -> str:
    body = f"0{1_000_000_000_000 + n:013d}"[:13]
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


class _World:
    def __init__(self, rng: random.Random, registry: LocationRegistry) -> None:
        self.rng = rng
        self.reg = registry
        self._sites: dict[tuple[str, str], list[str]] = {}

    def site(self, near: str, kind: str) -> str:
        """An agency-registered inland site (factory F / distribution centre D) near a port."""
        sites = self._sites.setdefault((near, kind), [])
        if len(sites) < 3:
            loc = self.reg.get(near)
            digits = "23456789"
            n = 0
            code = ""
            while not code or code in self.reg:
                code = f"{loc.country}{kind}{digits[n % 8]}{digits[(n // 8) % 8]}"
                n += 1
            lat = loc.lat + self.rng.uniform(-0.8, 0.8)
            lon = loc.lon + self.rng.uniform(-0.8, 0.8)
            self.reg.add(
                code, f"{kind} site near {loc.name}", loc.country, max(-89, min(89, lat)), lon
            )
            sites.append(code)
            return code
        return self.rng.choice(sites)

    def leg(self, a: str, b: str, air: bool) -> float:
        d = self.reg.distance_km(a, b)
        if air:
            return (d / AIR_KMH + self.rng.uniform(8, 30)) * HOUR
        return (d * SEA_DETOUR / SEA_KMH + self.rng.uniform(36, 96)) * HOUR


def simulate(cfg: SimConfig, registry: LocationRegistry | None = None) -> SimResult:
    rng = random.Random(cfg.seed)
    reg = registry or LocationRegistry.default()
    world = _World(rng, reg)
    batches: list[BatchProfile] = []
    emitted: list[tuple[float, int, Scan | StatusReport]] = []
    truth: dict[str, Truth] = {}
    volume: dict[str, VolumeTruth] = {}
    seq = 0

    def emit(ev: Scan | StatusReport, deliver_at: float) -> None:
        nonlocal seq
        seq += 1
        emitted.append((deliver_at, seq, ev))

    def read(
        gtin: str, serial: str, batch_id: str, loc: str, t: float, cons: str | None
    ) -> Scan | None:
        nonlocal seq
        if rng.random() >= cfg.read_rate:
            return None
        s = Scan(f"s{seq + 1}", gtin, serial, loc, t, batch_id, cons)
        late = rng.uniform(0, 12 * HOUR) if rng.random() < cfg.late_share else 0.0
        emit(s, t + late)
        return s

    for b in range(cfg.batches):
        origin = rng.choice(list(ORIGINS))
        market = rng.choice(list(MARKETS))
        air = rng.random() < cfg.air_share
        exp = rng.choice(ORIGINS[origin][1 if air else 0])
        imp = rng.choice(MARKETS[market][1 if air else 0])
        hub = None if air or rng.random() < 0.5 else rng.choice(HUBS)
        nodes = [exp] + ([hub] if hub else []) + [imp]
        factory = world.site(exp, "F")
        t0 = cfg.start + rng.uniform(0, 60 * DAY)
        gtin = _gtin(b)
        batch_id = f"B{b:05d}"
        consignee = f"IMP-{market}-{b}"
        n_items = rng.randint(*cfg.items_per_batch)
        vroll = rng.random()
        held = leaked = 0
        if vroll < cfg.volume_rate + cfg.held_rate:
            held = rng.randint(max(2, n_items // 10), max(3, n_items // 4))
            if vroll < cfg.volume_rate:
                leaked = rng.randint(1, held)
        volume[batch_id] = VolumeTruth(market, n_items - held, held, leaked)
        returns = rng.random() >= cfg.no_returns_rate
        policy = RoutePolicy.create(
            reg, markets=[market], nodes=nodes, consignees=[consignee],
            valid_from=t0 - DAY, valid_until=t0 + 200 * DAY, returns=returns,
        )  # fmt: skip
        batch = BatchProfile(batch_id, gtin, policy, {market: n_items - held}, t0 + 730 * DAY)
        batches.append(batch)
        # the batch moves together; items get a few hours of jitter each
        t_exp = t0 + rng.uniform(1, 3) * DAY
        legs = [t_exp]
        for a, c in itertools.pairwise(nodes):
            legs.append(legs[-1] + world.leg(a, c, air))
        dc = world.site(imp, "D")
        t_dc = legs[-1] + rng.uniform(1, 4) * DAY
        for i in range(n_items):
            serial = f"{b:05d}{i:05d}"
            key = f"{gtin}/{serial}"
            roll = rng.random()
            kind = "diversion" if roll < cfg.diversion_rate else (
                "clone" if roll < cfg.diversion_rate + cfg.clone_rate else "legit"
            )  # fmt: skip
            stays = i >= n_items - held + leaked  # held back and not leaked: stays at the factory
            if i >= n_items - held:
                kind = "legit"  # held-back items (leaked or not) carry no item-level anomaly
            tr = Truth(kind)
            truth[key] = tr
            genuine: list[Scan] = []
            diverted: list[Scan] = []

            def g(
                loc: str,
                t: float,
                cons: str | None = None,
                out: list[Scan] = genuine,
                item: tuple[str, str, str] = (gtin, serial, batch_id),
            ) -> None:
                s = read(item[0], item[1], item[2], loc, t, cons)
                if s is not None:
                    out.append(s)

            g(factory, t0 + rng.uniform(0, 6 * HOUR))
            if stays:
                continue
            scenario = rng.choice(["market", "port", "consignee"]) if kind == "diversion" else ""
            route = list(zip(nodes, legs, strict=True))
            if scenario == "port":
                grey = rng.choice(list(GREY))
                alt = rng.choice(GREY[grey][1 if air else 0])
                route = route[:-1]
                for loc, t in route:
                    g(loc, t + rng.uniform(0, 6 * HOUR))
                t_alt = route[-1][1] + world.leg(route[-1][0], alt, air)
                g(alt, t_alt + rng.uniform(0, 6 * HOUR), None, diverted)
                g(world.site(alt, "D"), t_alt + rng.uniform(1, 4) * DAY, None, diverted)
                t_end = t_alt + 10 * DAY
            else:
                for loc, t in route:
                    g(loc, t + rng.uniform(0, 6 * HOUR))
                if scenario == "market":
                    grey = rng.choice(list(GREY))
                    far = rng.choice(GREY[grey][0])
                    g(dc, t_dc + rng.uniform(0, 6 * HOUR), consignee)
                    t_far = t_dc + world.leg(dc, far, False)
                    g(far, t_far, None, diverted)
                    g(world.site(far, "D"), t_far + 2 * DAY, None, diverted)
                    t_end = t_far + 5 * DAY
                elif scenario == "consignee":
                    g(dc, t_dc + rng.uniform(0, 6 * HOUR), f"BROKER-{rng.randint(1, 99)}", diverted)
                    t_end = t_dc + DAY
                else:
                    g(dc, t_dc + rng.uniform(0, 6 * HOUR), consignee)
                    t_end = t_dc + DAY
            if kind == "legit" and scenario == "" and rng.random() < cfg.return_rate:
                scenario = "return"
                if not returns:
                    kind = tr.kind = "diversion"
                back = [loc for loc in reversed(nodes) if reg.get(loc).country != origin]
                home = rng.choice(ORIGINS[origin][1 if air else 0])
                t_back = t_end + rng.uniform(5, 60) * DAY
                for a, c in itertools.pairwise([dc, *back, home]):
                    t_back += world.leg(a, c, air)
                    g(c, t_back + rng.uniform(0, 6 * HOUR))
                t_end = t_back + rng.uniform(1, 4) * DAY
                if rng.random() < 0.3:  # repaired at the factory
                    g(factory, t_end)
                if rng.random() < 0.5:  # exported again, the declared way
                    t_out = t_end + rng.uniform(5, 20) * DAY
                    g(home, t_out)
                    for a, c in itertools.pairwise([home, *nodes]):
                        t_out += world.leg(a, c, air)
                        g(c, t_out + rng.uniform(0, 6 * HOUR))
                    g(dc, t_out + rng.uniform(1, 4) * DAY, consignee)
                    t_end = t_out + 5 * DAY
                else:
                    t_end = -1.0  # stays in the origin country: never sold in the market
            sold = None
            if t_end < 0:
                pass
            elif scenario in ("", "return") and (kind == "clone" or rng.random() < 0.6):
                sold = t_end + rng.uniform(2, 40) * DAY
                emit(StatusReport(gtin, serial, "decommissioned", sold, f"dec-{key}"), sold)
            if scenario == "return":
                tr.scenario = scenario
                tr.detectable = kind == "diversion" and _return_visible(reg, policy, genuine)
            elif kind == "diversion":
                tr.scenario = scenario
                tr.detectable = bool(diverted)
            elif kind == "clone":
                copies: list[Scan] = []
                tr.scenario = rng.choice(["after_sale", "parallel", "many_places"])
                dest_places = MARKETS[market][0] + MARKETS[market][1] + [dc]
                origin_places = ORIGINS[origin][0] + ORIGINS[origin][1]
                if tr.scenario == "after_sale":
                    assert sold is not None
                    for _ in range(rng.randint(1, 4)):
                        g(rng.choice(dest_places), sold + rng.uniform(1, 90) * DAY, None, copies)
                elif tr.scenario == "parallel":
                    if (
                        rng.random() < 0.5
                    ):  # copy in the destination while the genuine is at the factory
                        g(rng.choice(dest_places), t0 + rng.uniform(-12, 12) * HOUR, None, copies)
                    else:  # copy at an origin port while the genuine is at the distribution centre
                        g(rng.choice(origin_places), t_dc + rng.uniform(-6, 6) * HOUR, None, copies)
                else:
                    for k in range(6):
                        g(
                            rng.choice(dest_places + origin_places),
                            t0 + (5 + 12 * k) * DAY,
                            None,
                            copies,
                        )
                tr.detectable = _clone_visible(reg, cfg, policy, genuine, copies, sold)

    # probing: someone guessing serials of a real GTIN at one port
    probes = []
    for p in range(cfg.probes):
        target = rng.choice(batches)
        port = rng.choice([n for ports in MARKETS.values() for n in ports[0]])
        t = cfg.start + rng.uniform(10, 80) * DAY
        for k in range(rng.randint(25, 40)):
            s = Scan(f"p{p}-{k}", target.gtin, f"X{rng.randrange(10**9)}", port, t + k * 60.0)
            emit(s, s.at)
        probes.append((target.gtin, port))
    # typing errors: a few unknown serials spread out (must not look like probing)
    for k in range(cfg.batches):
        target = rng.choice(batches)
        port = rng.choice([n for ports in MARKETS.values() for n in ports[0]])
        s = Scan(f"u{k}", target.gtin, f"T{k}", port, cfg.start + rng.uniform(0, 150) * DAY)
        emit(s, s.at)

    emitted.sort(key=lambda e: (e[0], e[1]))
    events = [e[2] for e in emitted]
    end = max(e[0] for e in emitted)
    in_market: dict[str, set[str]] = {}
    for ev in events:
        if (
            isinstance(ev, Scan)
            and ev.batch_id is not None
            and reg.get(ev.location).country == volume[ev.batch_id].market
        ):
            in_market.setdefault(ev.batch_id, set()).add(ev.serial)
    for batch_id, vt in volume.items():
        vt.seen = len(in_market.get(batch_id, ()))
        vt.detectable = vt.seen > vt.released
    return SimResult(reg, batches, events, truth, probes, end, volume)


def _return_visible(reg: LocationRegistry, policy: RoutePolicy, reads: list[Scan]) -> bool:
    """A read back in the origin country (inside the policy window) after a read in the market
    that came after the item was seen leaving: at the export node or anywhere abroad."""
    origin = policy.origin_country
    reads = sorted(reads, key=lambda s: s.at)

    def away(s: Scan) -> bool:
        return s.location == policy.nodes[0] or reg.get(s.location).country != origin

    for i, seen in enumerate(reads):
        if reg.get(seen.location).country not in policy.markets:
            continue
        if not any(away(r) for r in reads[:i] if r.at < seen.at):
            continue
        if any(
            reg.get(r.location).country == origin and r.at > seen.at and policy.applies(r.at)
            for r in reads[i + 1 :]
        ):
            return True
    return False


def _clone_visible(
    reg: LocationRegistry,
    cfg: SimConfig,
    policy: RoutePolicy,
    genuine: list[Scan],
    copies: list[Scan],
    sold: float | None,
) -> bool:
    if not copies:
        return False
    if sold is not None and any(c.at >= sold for c in copies):
        return True
    places = {s.location for s in genuine + copies}
    if len(places) > len(policy.nodes) + cfg.extra_places:
        return True
    origin = policy.origin_country
    for c in copies:
        lc = reg.get(c.location)
        for gs in genuine:
            lg = reg.get(gs.location)
            d = haversine_km(lc.lat, lc.lon, lg.lat, lg.lon)
            if d > 50 and d - 50 > cfg.max_speed_kmh * abs(c.at - gs.at) / HOUR:
                return True
            if lc.country in policy.markets and lg.country == origin and c.at < gs.at:
                return True
    return False
