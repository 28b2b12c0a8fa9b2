"""Candidate links between surpluses and metered in-uses, and how much each can really carry.

Candidates are indexed by rule: for each rule only the surpluses of its supply resources meet
the in-meters of its demand resources that declare a use it may replace, as numpy index
arrays. Filters (other tenant, distance, quality gates, existing exchanges) are vectorised
masks. Sizing pivots both sides to the rule's coupling buckets (hour, day, week, month) and
takes the smaller side bucket by bucket: energy that is spare at night cannot serve a day
shift, a tank carries water within the day, a yard keeps pallets for a week.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from parkflow.model import Direction
from parkflow.registry.schema import Meter, Park, Tenant
from service.detect.panel import FloatArray, IntArray, Panel, bucket_sums
from service.detect.surplus import EPS, Streams, Surplus
from service.knowledge import Knowledge, Rule
from service.knowledge.entries import CATEGORICAL

COUPLINGS = ("hour", "day", "week", "month")
DAYS_PER_BUCKET = {"week": 7, "month": 30}
PAIR_CHUNK = 1_000_000  # candidate pairs built at once, to bound memory
SIZE_CHUNK_CELLS = 4_000_000  # candidate x bucket cells sized at once


@dataclass(frozen=True, eq=False)
class Sides:
    """Both sides of one park as aligned arrays: surpluses (supply) and demand in-meters."""

    park: Park
    panel: Panel
    streams: Streams
    surpluses: tuple[Surplus, ...]
    s_row: IntArray  # stream row of each surplus
    s_tenant: IntArray
    s_xy: FloatArray  # (n, 2), NaN when the tenant has no location
    s_meta: tuple[Meter, ...]
    d_tenants: tuple[Tenant, ...]
    d_meters: tuple[Meter, ...]
    d_row: IntArray  # panel row of each demand meter
    d_tenant: IntArray
    d_xy: FloatArray
    d_daily: FloatArray  # (n_d, n_days) daily intake on days with data, NaN otherwise
    tenants: Mapping[str, Tenant]
    # (n_d, n_hours) what each demand meter could take from outside: its intake, but nothing
    # in hours its own tenant generates more of the resource than it uses (``own_need``)
    d_values: FloatArray

    def tenant(self, tenant_id: str) -> Tenant:
        return self.tenants[tenant_id]


def build_sides(
    park: Park, panel: Panel, streams: Streams, surpluses: list[Surplus], knowledge: Knowledge
) -> Sides:
    tenant_code = {t.id: i for i, t in enumerate(park.tenants)}
    xy = {t.id: _xy(t) for t in park.tenants}
    mine = [s for s in surpluses if s.park == park.id and s.meter in streams.row]
    s_row = np.array([streams.row[s.meter] for s in mine], dtype=np.int64)
    wanted = {r for rule in knowledge.active_rules() for r in rule.demand}
    d_t: list[Tenant] = []
    d_m: list[Meter] = []
    for t in park.tenants:
        for m in t.meters:
            if m.direction is Direction.IN and m.resource in wanted:
                d_t.append(t)
                d_m.append(m)
    d_row = np.array([panel.row[m.id] for m in d_m], dtype=np.int64)
    sums, counts = panel.daily_sums(panel.values[d_row])  # what it uses, for the text
    day_len = np.diff(np.r_[panel.day_starts, panel.n_hours])
    valid = counts >= np.minimum(knowledge.detection.min_hours_per_day, day_len)
    return Sides(
        park=park,
        panel=panel,
        streams=streams,
        surpluses=tuple(mine),
        s_row=s_row,
        s_tenant=np.array([tenant_code[s.tenant] for s in mine], dtype=np.int64),
        s_xy=np.array([xy[s.tenant] for s in mine], dtype=np.float64).reshape(-1, 2),
        s_meta=tuple(streams.meters[r] for r in s_row),
        d_tenants=tuple(d_t),
        d_meters=tuple(d_m),
        d_row=d_row,
        d_tenant=np.array([tenant_code[t.id] for t in d_t], dtype=np.int64),
        d_xy=np.array([xy[t.id] for t in d_t], dtype=np.float64).reshape(-1, 2),
        d_daily=np.where(valid, sums, np.nan),
        tenants={t.id: t for t in park.tenants},
        d_values=own_need(park, panel, d_m, d_row),
    )


def own_need(park: Park, panel: Panel, meters: list[Meter], rows: IntArray) -> FloatArray:
    """Demand meters' hourly intake, zero in the hours their tenant's own generation of the
    resource (a self_use out-meter: its boiler, its solar) exceeds what it uses: a tenant with
    a surplus of its own in an hour is no receiver in that hour."""
    need = panel.values[rows].copy()
    where = {m.id: i for i, m in enumerate(meters)}
    for t in park.tenants:
        for gen in t.meters:
            if gen.direction is not Direction.OUT or gen.destination != "self_use":
                continue
            resource = gen.offsets or gen.resource
            ins = [m for m in t.meters if m.direction is Direction.IN and m.resource == resource]
            if not ins:
                continue
            made = panel.values[panel.row[gen.id]]
            used = panel.values[[panel.row[m.id] for m in ins]].sum(axis=0)
            own_surplus = np.nan_to_num(made - used) > 0
            for m in ins:
                if m.id in where:
                    need[where[m.id], own_surplus] = 0.0
    return need


def _xy(t: Tenant) -> tuple[float, float]:
    return (t.location.x_m, t.location.y_m) if t.location else (np.nan, np.nan)


def rule_uses(rule: Rule, tenant: Tenant | None) -> list[str] | None:
    """The uses the rule may replace at this receiver: its list less what its exclusions take
    out for the receiver's sector (None: the whole in-meter)."""
    if rule.uses is None:
        return None
    barred = {
        u for x in rule.exclude if tenant is not None and tenant.sector in x.sectors for u in x.uses
    }
    return [u for u in rule.uses if u not in barred]


def use_share(rule: Rule, meter: Meter, tenant: Tenant | None = None) -> float:
    """Share of an in-meter's intake that the rule may replace (0 when no listed use matches)."""
    uses = rule_uses(rule, tenant)
    if uses is None:
        return 1.0
    shares = meter.use_shares()
    return float(sum(shares.get(u, 0.0) for u in uses))


def barred_by_law(supply: Meter, receiver: Tenant) -> bool:
    """Hazardous waste may go only to a tenant holding the licence (LEP 2020 Art. 83)."""
    return supply.hazardous and "hazardous_waste" not in receiver.licences


def has_needs(rule: Rule, tenant: Tenant, meter: Meter) -> bool:
    """Whether the receiver has what the rule needs (``Rule.receiver_needs``): equipment of a
    listed type, tied to this meter when it names meters, that accepts the feed or burns it."""
    needs = rule.receiver_needs
    if needs is None:
        return True
    for e in tenant.equipment:
        if e.type not in needs.equipment or (e.meters and meter.id not in e.meters):
            continue
        if needs.accepts is None or needs.accepts in e.accepts:
            return True
        if e.fuel == f"energy.{needs.accepts}":
            return True
    return False


def candidate_pairs(sides: Sides, knowledge: Knowledge) -> pd.DataFrame:
    """Every (surplus, receiver, rule) that passes resource, use, tenant, distance, quality and
    existing-exchange filters; one row per candidate with the arrays sizing needs."""
    frames: list[pd.DataFrame] = []
    n_d = len(sides.d_meters)
    s_pos = {s.meter: i for i, s in enumerate(sides.surpluses)}
    d_pos = {m.id: i for i, m in enumerate(sides.d_meters)}
    existing = np.array(
        [
            s_pos[e.from_meter] * n_d + d_pos[e.to_meter]
            for e in sides.park.exchanges
            if e.from_meter in s_pos and e.to_meter in d_pos
        ],
        dtype=np.int64,
    )
    s_res = np.array([s.resource for s in sides.surpluses], dtype=object)
    d_res = np.array([m.resource for m in sides.d_meters], dtype=object)
    m = knowledge.matching
    for rule_idx, rule in enumerate(knowledge.active_rules()):
        s_idx = np.flatnonzero(np.isin(s_res, rule.supply))
        d_all = np.flatnonzero(np.isin(d_res, rule.demand))
        shares = np.array(
            [
                use_share(rule, sides.d_meters[d], sides.d_tenants[d])
                if has_needs(rule, sides.d_tenants[d], sides.d_meters[d])
                else 0.0
                for d in d_all
            ]
        )
        d_idx, d_share = d_all[shares > 0], shares[shares > 0]
        if len(s_idx) == 0 or len(d_idx) == 0:
            continue
        step = max(1, PAIR_CHUNK // len(d_idx))
        for lo in range(0, len(s_idx), step):
            s_part = s_idx[lo : lo + step]
            si = np.repeat(s_part, len(d_idx))
            dj = np.tile(np.arange(len(d_idx)), len(s_part))
            di = d_idx[dj]
            keep = sides.s_tenant[si] != sides.d_tenant[di]
            si, di, dj = si[keep], di[keep], dj[keep]
            straight = np.hypot(*(sides.s_xy[si] - sides.d_xy[di]).T)
            assumed = np.isnan(straight)
            dist = np.where(assumed, m.unknown_distance_m, straight * m.routing_factor)
            keep = (dist <= rule.max_distance_m) & _gates(rule, sides, si, di)
            if len(existing):
                keep &= ~np.isin(si * n_d + di, existing)
            if not keep.any():
                continue
            frames.append(
                pd.DataFrame(
                    {
                        "s": si[keep],
                        "d": di[keep],
                        "rule": rule_idx,
                        "share": d_share[dj[keep]],
                        "distance_m": dist[keep],
                        "distance_assumed": assumed[keep],
                    }
                )
            )
    if not frames:
        return pd.DataFrame(
            {
                "s": pd.Series(dtype=np.int64),
                "d": pd.Series(dtype=np.int64),
                "rule": pd.Series(dtype=np.int64),
                "share": pd.Series(dtype=np.float64),
                "distance_m": pd.Series(dtype=np.float64),
                "distance_assumed": pd.Series(dtype=bool),
            }
        )
    return pd.concat(frames, ignore_index=True)


def _attr(meters: tuple[Meter, ...], idx: IntArray, name: str) -> np.ndarray:
    values = [getattr(m.quality, name) if m.quality is not None else None for m in meters]
    if name in CATEGORICAL:
        return np.array(values, dtype=object)[idx] if len(values) else np.array([], dtype=object)
    arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return arr[idx] if len(arr) else np.array([], dtype=np.float64)


def _gates(rule: Rule, sides: Sides, si: IntArray, di: IntArray) -> np.ndarray:
    """Quality gates as one boolean mask; an unknown attribute never passes (NaN >= x is False)."""
    ok = np.ones(len(si), dtype=bool)
    for g in rule.gates:
        supply = _attr(sides.s_meta, si, g.attribute)
        unknown = (
            np.array([x is None for x in supply])
            if g.attribute in CATEGORICAL
            else np.isnan(supply)
        )
        if g.one_of is not None:
            passed = np.isin(supply, g.one_of)
        elif g.at_least is not None:
            passed = supply >= g.at_least
        elif g.at_most is not None:
            passed = supply <= g.at_most
        else:
            demand = _attr(sides.d_meters, di, g.attribute)
            passed = supply >= demand + (g.at_least_demand_plus or 0.0)
        ok &= passed | (unknown & (g.if_unknown == "flag"))
    return ok


def checks_to_make(rule: Rule, supply: Meter) -> tuple[str, ...]:
    """What a flagged gate asks to confirm for this supply (its attribute is undeclared)."""
    out: list[str] = []
    for g in rule.gates:
        if g.if_unknown != "flag" or not g.check:
            continue
        value = getattr(supply.quality, g.attribute) if supply.quality is not None else None
        if value is None and g.check not in out:
            out.append(g.check)
    return tuple(out)


def _storage_level(meters: tuple[Meter, ...]) -> IntArray:
    """Coupling level each meter's declared storage allows (0 = hour when none); the
    effective coupling is the coarsest of the rule's and both sides'."""
    return np.array(
        [COUPLINGS.index(m.storage) if m.storage else 0 for m in meters] or [0], dtype=np.int64
    )


def _per_day(both: FloatArray, level: str, panel: Panel, starts: IntArray) -> FloatArray:
    """Matched quantity per day of each bucket: hours summed by local day; longer buckets
    spread over their days (a week's pick-up is a seventh of it per day)."""
    if level == "hour":
        if both.shape[1] == 0:
            return both
        out: FloatArray = np.add.reduceat(both, panel.day_starts, axis=1)
        return out
    days = np.diff(np.r_[starts, panel.n_hours]) / 24.0
    spread: FloatArray = both / np.maximum(days, 1e-9)[None, :]
    return spread


def _heat_share(
    rules: list[Rule], r_idx: IntArray, s_idx: IntArray, d_idx: IntArray, sides: Sides
) -> FloatArray:
    """Each candidate's recoverable share of the heat (1 where its rule sets no bound)."""
    out = np.ones(len(r_idx))
    ts = _attr(sides.s_meta, s_idx, "temperature_c")
    td = _attr(sides.d_meters, d_idx, "temperature_c")
    for i, rule in enumerate(rules):
        hr = rule.heat_recovery
        rows = np.flatnonzero(r_idx == i)
        if hr is None or len(rows) == 0:
            continue
        out[rows] = [hr.share(float(a), float(b)) for a, b in zip(ts[rows], td[rows], strict=True)]
    return np.nan_to_num(out)


def bucket_starts(panel: Panel, coupling: str) -> IntArray:
    if coupling == "hour":
        return np.arange(panel.n_hours, dtype=np.int64)
    if coupling == "day":
        return panel.day_starts
    return panel.day_starts[:: DAYS_PER_BUCKET[coupling]]


def coupling_levels(cands: pd.DataFrame, sides: Sides, knowledge: Knowledge) -> np.ndarray:
    """The effective coupling of each candidate: the coarsest of the rule's and of both sides'
    declared storage."""
    rules = knowledge.active_rules()
    level = np.maximum.reduce(
        [
            np.array([COUPLINGS.index(r.coupling) for r in rules], dtype=np.int64)[
                cands["rule"].to_numpy()
            ],
            _storage_level(sides.s_meta)[cands["s"].to_numpy()],
            _storage_level(sides.d_meters)[cands["d"].to_numpy()],
        ]
    )
    return np.array(COUPLINGS, dtype=object)[level]


@dataclass(frozen=True, eq=False)
class BucketSides:
    """Both sides of a set of candidates summed into one coupling's buckets: what each surplus
    offers (supplier units) and what each demand meter takes in (receiver units, before the
    rule's replaceable share), one row per distinct surplus and demand meter."""

    starts: IntArray  # first panel hour of each bucket
    s_used: IntArray  # surplus positions, sorted; supply row i is surplus s_used[i]
    d_used: IntArray
    supply: FloatArray  # (len(s_used), n_buckets)
    demand: FloatArray  # (len(d_used), n_buckets)

    def supply_of(self, s: IntArray) -> FloatArray:
        return self.supply[np.searchsorted(self.s_used, s)]

    def demand_of(self, d: IntArray) -> FloatArray:
        return self.demand[np.searchsorted(self.d_used, d)]


def bucket_sides(sides: Sides, coupling: str, s_idx: IntArray, d_idx: IntArray) -> BucketSides:
    """Supply and demand of the given surpluses and demand meters per ``coupling`` bucket; the
    one place both sizing and the park's plan read per-bucket quantities from."""
    starts = bucket_starts(sides.panel, coupling)
    s_used = np.unique(s_idx)
    d_used = np.unique(d_idx)
    supply, _ = bucket_sums(sides.streams.hourly[sides.s_row[s_used]], starts)
    demand, _ = bucket_sums(sides.d_values[d_used], starts)
    return BucketSides(starts, s_used, d_used, supply, demand)


def link_bounds(
    buckets: BucketSides, s: IntArray, d: IntArray, eff: FloatArray, factor: FloatArray
) -> FloatArray:
    """What each link can carry alone in each bucket, receiver units: the smaller of the supply
    times the effective ratio and the demand times the replaceable share."""
    offered = buckets.supply_of(s) * eff[:, None]
    wanted = buckets.demand_of(d) * factor[:, None]
    bounds: FloatArray = np.minimum(offered, wanted)
    return bounds


def band_matrix(panel: Panel, knowledge: Knowledge) -> FloatArray:
    """(n_hours, 3): each hour column's share in the off-peak, normal and peak bands of the
    time-of-use schedule (all normal when the knowledge has none)."""
    tou = knowledge.time_of_use
    out = np.zeros((panel.n_hours, 3))
    if tou is None:
        out[:, 1] = 1.0
        return out
    weekday = np.array([d.weekday() for d in panel.days], dtype=np.int64)[panel.day_of_hour]
    table = np.array([[tou.band_weights(w, h) for h in range(24)] for w in range(7)])
    out[:] = table[weekday, panel.hour_of_day]
    return out


def size_pairs(cands: pd.DataFrame, sides: Sides, knowledge: Knowledge) -> pd.DataFrame:
    """Add the matched quantity (receiver units over the window) of each candidate: the sum over
    coupling buckets of min(supply x effective ratio, demand x replaceable share), and how it
    falls into the time-of-use bands (``band_off_peak``, ``band_normal``, ``band_peak``, in
    receiver units): hour by hour where the coupling is the hour, else as the receiver's own
    intake falls (stored energy is drawn when the receiver needs it)."""
    rules = knowledge.active_rules()
    out = cands.copy(deep=False)  # copy-on-write: new columns never reach the caller
    n = len(out)
    s_idx, d_idx, r_idx = out["s"].to_numpy(), out["d"].to_numpy(), out["rule"].to_numpy()
    coupling = coupling_levels(out, sides, knowledge)
    ratio = np.array([rules[r].ratio for r in range(len(rules))])[out["rule"].to_numpy()]
    loss = np.array([knowledge.mode(r.transport).loss_per_km for r in rules])[
        out["rule"].to_numpy()
    ]
    cap = np.array([r.max_demand_share for r in rules])[out["rule"].to_numpy()]
    out["coupling"] = coupling
    out["eff_ratio"] = (
        ratio
        * np.clip(1.0 - loss * out["distance_m"].to_numpy() / 1000.0, 0.0, 1.0)
        * _heat_share(rules, r_idx, s_idx, d_idx, sides)
    )
    out["demand_factor"] = out["share"].to_numpy() * cap
    matched = np.zeros(n)
    buckets_matched = np.zeros(n, dtype=np.int64)
    days_matched = np.zeros(n, dtype=np.int64)
    n_buckets = np.zeros(n, dtype=np.int64)
    panel = sides.panel
    eff = out["eff_ratio"].to_numpy()
    factor = out["demand_factor"].to_numpy()
    bands = band_matrix(panel, knowledge)
    by_band = np.zeros((n, 3))
    p10 = np.zeros(n)
    p90 = np.zeros(n)
    for level in COUPLINGS:
        rows = np.flatnonzero(coupling == level)
        if len(rows) == 0:
            continue
        buckets = bucket_sides(sides, level, s_idx[rows], d_idx[rows])
        step = max(1, SIZE_CHUNK_CELLS // max(1, len(buckets.starts)))
        for lo in range(0, len(rows), step):
            r = rows[lo : lo + step]
            both = link_bounds(buckets, s_idx[r], d_idx[r], eff[r], factor[r])
            matched[r] = both.sum(axis=1)
            per_day = _per_day(both, level, panel, buckets.starts)
            if per_day.shape[1]:
                p10[r], p90[r] = np.quantile(per_day, [0.1, 0.9], axis=1)
            if level == "hour":
                by_band[r] = both @ bands
            hit = both > EPS
            buckets_matched[r] = hit.sum(axis=1)
            if level == "hour":
                per_day = np.add.reduceat(hit, panel.day_starts, axis=1)
                days_matched[r] = (per_day > 0).sum(axis=1)
            elif level == "day":
                days_matched[r] = buckets_matched[r]
        n_buckets[rows] = len(buckets.starts)
        if level != "hour":
            intake = np.nan_to_num(sides.d_values[buckets.d_used]) @ bands
            total = intake.sum(axis=1, keepdims=True)
            share = np.divide(intake, total, out=np.zeros_like(intake), where=total > 0)
            share[total[:, 0] <= 0, 1] = 1.0
            d_pos = np.searchsorted(buckets.d_used, d_idx[rows])
            by_band[rows] = matched[rows, None] * share[d_pos]
    out["matched"] = matched
    out["matched_p10_per_day"] = p10
    out["matched_p90_per_day"] = p90
    out["band_off_peak"] = by_band[:, 0]
    out["band_normal"] = by_band[:, 1]
    out["band_peak"] = by_band[:, 2]
    out["buckets_matched"] = buckets_matched
    out["n_buckets"] = n_buckets
    out["days_matched"] = days_matched
    return out


def demand_mean(sides: Sides) -> FloatArray:
    """Mean daily intake of each demand meter over its days with data (multiply by a use
    share). A mean, not a median: a receiver using fuel three days a week still uses it."""
    daily = sides.d_daily
    has = ~np.isnan(daily)
    n = has.sum(axis=1)
    total = np.where(has, daily, 0.0).sum(axis=1)
    mean: FloatArray = np.where(n > 0, total / np.maximum(n, 1), 0.0)
    return mean
