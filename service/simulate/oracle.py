"""What a careful analyst would conclude from the designed flows: the scenario's answer key.

Every (out-meter, in-meter, rule) that a knowledge rule could link is judged from the
noise-free, fault-free hourly flows of the design, in the order a person would ask: is it
already exchanged, is the use one the rule may replace, does the quality pass, is it near
enough, is the stream a lasting surplus, do supply and demand meet in the rule's time bucket,
and is the match worth proposing. The first "no" is the reason.

Detection works from noisy, faulty readings through the whole ingest path; the oracle does
not. A judgement whose deciding figure lies close to a threshold is marked ambiguous: the
scenario generator redraws such designs, so the truth only holds cases with a clear answer
and a miss is a real miss. The matcher's positive-value filter is not modelled: with the
shipped prices every rule's link is worth something to the park. Pure.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

import numpy as np

from parkflow.model import Direction
from parkflow.registry.schema import Meter, Park, Tenant
from parkflow.timeunits import HOUR_MS
from parkflow.units import canonical_unit
from service.knowledge import Knowledge, Rule
from service.simulate.flows import expected_hourly
from service.simulate.profiles import FloatArray, IntArray, Profile, clock

Reason = Literal[
    "already_exchanged",
    "use_not_replaceable",
    "quality_mismatch",
    "too_far",
    "too_small",
    "no_temporal_overlap",
]
COUPLINGS = ("hour", "day", "week", "month")
DAYS_PER_BUCKET = {"week": 7, "month": 30}
EPS = 1e-9
# A designed figure within these factors of its threshold is too close to call.
CLEAR_BELOW = 0.6
CLEAR_ABOVE = 1.6
DISTANCE_MARGIN = 0.1
SHARE_MARGIN = 0.1
OWN_USE_MARGIN = 0.1  # self_use generation must clearly exceed, or stay below, own use
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The designed answer for one candidate link; ``reason`` None means an opportunity."""

    park: str
    rule: str
    from_tenant: str
    from_meter: str
    to_tenant: str
    to_meter: str
    reason: Reason | None
    detail: str
    matched_per_day: float  # receiver units per day the design supports (0 when filtered first)
    unit: str  # the receiver's canonical unit
    distance_m: float
    ambiguous: str | None = None  # why the design does not give a clear answer

    @property
    def id(self) -> str:
        return f"{self.park}:{self.from_meter}>{self.to_meter}:{self.rule}"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.from_meter, self.to_meter, self.rule)


@dataclass(frozen=True, slots=True)
class _Stream:
    tenant: Tenant
    meter: Meter
    hourly: FloatArray  # available per hour, after registered exchanges
    reason: Reason | None
    detail: str
    ambiguous: str | None


def classify(
    park: Park,
    profiles: Mapping[str, Profile],
    knowledge: Knowledge,
    start_ms: int,
    end_ms: int,
) -> list[Verdict]:
    """Judge every candidate link of ``park`` over the whole local days [start_ms, end_ms)."""
    hourly = expected_hourly(park, profiles, start_ms, end_ms)
    hours = np.arange(start_ms, end_ms, HOUR_MS, dtype=np.int64)
    day = clock(hours, park.timezone).day
    day_of_hour = (day - day[0]).astype(np.int64)
    day_starts = np.flatnonzero(np.r_[True, np.diff(day_of_hour) != 0]).astype(np.int64)
    n_days = len(day_starts)
    day_numbers = day[day_starts]
    streams = {
        m.id: _stream(park, t, m, hourly, day_of_hour, day_starts, day_numbers, knowledge)
        for t in park.tenants
        for m in t.meters
        if m.direction is Direction.OUT
    }
    exchanged = {(e.from_meter, e.to_meter): e for e in park.exchanges}
    out: list[Verdict] = []
    for rule in knowledge.active_rules():
        for s in streams.values():
            if s.meter.resource not in rule.supply:
                continue
            for t in park.tenants:
                if t.id == s.tenant.id:
                    continue
                for m in t.meters:
                    if m.direction is Direction.IN and m.resource in rule.demand:
                        out.append(
                            _judge(
                                park, rule, s, t, m, hourly[m.id], exchanged, knowledge,
                                day_starts, n_days,
                            )
                        )  # fmt: skip
    return _cap_receivers(out, knowledge.matching.max_receivers_per_surplus)


def _stream(
    park: Park,
    tenant: Tenant,
    meter: Meter,
    hourly: Mapping[str, FloatArray],
    day_of_hour: IntArray,
    day_starts: IntArray,
    day_numbers: IntArray,
    knowledge: Knowledge,
) -> _Stream:
    """What an out-meter offers: its flow (or generation beyond own use) less exchanges, and
    whether that is a lasting surplus."""
    flow = hourly[meter.id]
    if meter.destination == "self_use":
        offsets = meter.offsets or meter.resource
        own = [
            hourly[m.id]
            for m in tenant.meters
            if m.direction is Direction.IN and m.resource == offsets
        ]
        if not own:
            return _Stream(tenant, meter, flow * 0, "too_small", "own use is not metered", None)
        use = np.sum(own, axis=0)
        close = (flow > EPS) & (np.abs(flow - use) < OWN_USE_MARGIN * flow)
        if close.any():  # noise on both meters would make a surplus of those hours
            h = int(np.flatnonzero(close)[0])
            why = f"generation and own use within {OWN_USE_MARGIN:.0%} in hour {h} of the window"
            return _Stream(tenant, meter, flow * 0, None, "", why)
        flow = np.maximum(flow - use, 0.0)
    totals = np.add.reduceat(flow, day_starts) if len(flow) else np.zeros(0)
    ordinals = day_numbers + EPOCH_ORDINAL
    share = np.zeros(len(day_starts))
    fixed = np.zeros(len(day_starts))
    takers: list[str] = []
    for e in park.exchanges:
        if e.from_meter != meter.id:
            continue
        takers.append(e.to_meter)
        active = ordinals >= e.since.toordinal()
        if e.share is not None:
            share[active] += e.share
        else:
            fixed[active] += e.quantity_per_day or 0.0
    avail_day = np.maximum(totals * (1 - np.minimum(share, 1.0)) - fixed, 0.0)
    scale = np.divide(avail_day, totals, out=np.zeros_like(totals), where=totals > 0)
    available = flow * scale[day_of_hour]
    floor = knowledge.detection.min_p50(meter.resource)
    p50 = float(np.median(avail_day)) if len(avail_day) else 0.0
    p50_before = float(np.median(totals)) if len(totals) else 0.0
    present = float(np.mean(avail_day > EPS)) if len(avail_day) else 0.0
    unit = canonical_unit(meter.resource)
    reason: Reason | None = None
    detail = f"median {p50:.4g} {unit}/day available on {present:.0%} of days"
    ambiguous = None
    need_share = knowledge.detection.min_present_share
    if takers and p50_before > EPS and p50 < max(floor, EPS) * CLEAR_BELOW:
        reason = "already_exchanged"
        detail = f"{p50_before:.4g} {unit}/day, all of it already goes to {', '.join(takers)}"
    elif p50 <= EPS or (floor > 0 and p50 < floor * CLEAR_BELOW):
        reason = "too_small"
        detail = f"median {p50:.4g} {unit}/day, below the {floor:g} {unit}/day worth reporting"
    elif floor > 0 and p50 < floor * CLEAR_ABOVE:
        ambiguous = f"median {p50:.4g} {unit}/day is close to the {floor:g} floor"
    elif present < need_share - SHARE_MARGIN:
        reason = "too_small"
        detail = f"flows on only {present:.0%} of days"
    elif present < need_share + SHARE_MARGIN:
        ambiguous = f"flows on {present:.0%} of days, close to the {need_share:.0%} needed"
    return _Stream(tenant, meter, available, reason, detail, ambiguous)


def use_share(rule: Rule, meter: Meter) -> float:
    if rule.uses is None:
        return 1.0
    shares = meter.use_shares()
    return float(sum(shares.get(u, 0.0) for u in rule.uses))


def _gate_problem(rule: Rule, supply: Meter, demand: Meter) -> str | None:
    """The first quality gate the link fails, in words; None when all pass. Unknown fails."""
    for g in rule.gates:
        have = getattr(supply.quality, g.attribute, None) if supply.quality else None
        if have is None:
            return f"the stream's {g.attribute} is not declared"
        if g.one_of is not None:
            if str(have) not in g.one_of:
                return f"{g.attribute} {have} is not one of {', '.join(g.one_of)}"
        elif g.at_least is not None:
            if float(have) < g.at_least:
                return f"{g.attribute} {have} < {g.at_least:g}"
        elif g.at_least_demand_plus is not None:
            need = getattr(demand.quality, g.attribute, None) if demand.quality else None
            if need is None:
                return f"the receiver's {g.attribute} is not declared"
            if float(have) < float(need) + g.at_least_demand_plus:
                return f"{g.attribute} {have} < {need} + {g.at_least_demand_plus:g} needed"
    return None


def _distance(a: Tenant, b: Tenant, knowledge: Knowledge) -> float:
    m = knowledge.matching
    if a.location is None or b.location is None:
        return m.unknown_distance_m
    straight = math.hypot(a.location.x_m - b.location.x_m, a.location.y_m - b.location.y_m)
    return straight * m.routing_factor


def _buckets(coupling: str, n_hours: int, day_starts: IntArray) -> IntArray:
    if coupling == "hour":
        return np.arange(n_hours, dtype=np.int64)
    if coupling == "day":
        return day_starts
    return day_starts[:: DAYS_PER_BUCKET[coupling]]


def _matched(
    supply: FloatArray, demand: FloatArray, eff: float, factor: float, starts: IntArray
) -> float:
    offered = np.add.reduceat(supply, starts) * eff
    wanted = np.add.reduceat(demand, starts) * factor
    return float(np.minimum(offered, wanted).sum())


def _judge(
    park: Park,
    rule: Rule,
    s: _Stream,
    to_tenant: Tenant,
    to_meter: Meter,
    demand: FloatArray,
    exchanged: Mapping[tuple[str, str], object],
    knowledge: Knowledge,
    day_starts: IntArray,
    n_days: int,
) -> Verdict:
    unit = canonical_unit(to_meter.resource)
    dist = _distance(s.tenant, to_tenant, knowledge)
    base = Verdict(
        park=park.id,
        rule=rule.id,
        from_tenant=s.tenant.id,
        from_meter=s.meter.id,
        to_tenant=to_tenant.id,
        to_meter=to_meter.id,
        reason=None,
        detail="",
        matched_per_day=0.0,
        unit=unit,
        distance_m=dist,
    )

    def no(reason: Reason, detail: str) -> Verdict:
        return replace(base, reason=reason, detail=detail)

    if (s.meter.id, to_meter.id) in exchanged:
        return no("already_exchanged", "a registered exchange already links them")
    share = use_share(rule, to_meter)
    if share <= 0:
        uses = ", ".join(to_meter.use_shares()) or "unstated uses"
        replaced = ", ".join(rule.uses or [])
        return no("use_not_replaceable", f"intake for {uses}; the rule replaces {replaced}")
    problem = _gate_problem(rule, s.meter, to_meter)
    if problem is not None:
        return no("quality_mismatch", problem)
    limit = rule.max_distance_m
    if dist > limit * (1 + DISTANCE_MARGIN):
        return no("too_far", f"{dist:,.0f} m of route, the rule reaches {limit:,.0f} m")
    if dist > limit * (1 - DISTANCE_MARGIN):
        return replace(base, ambiguous=f"{dist:,.0f} m is close to the {limit:,.0f} m limit")
    if s.ambiguous is not None:
        return replace(base, ambiguous=s.ambiguous)
    if s.reason is not None:
        return no(s.reason, s.detail)
    level = max(
        COUPLINGS.index(rule.coupling),
        COUPLINGS.index(s.meter.storage) if s.meter.storage else 0,
        COUPLINGS.index(to_meter.storage) if to_meter.storage else 0,
    )
    coupling = COUPLINGS[level]
    loss = knowledge.mode(rule.transport).loss_per_km
    eff = rule.ratio * min(1.0, max(0.0, 1.0 - loss * dist / 1000.0))
    factor = share * rule.max_demand_share
    starts = _buckets(coupling, len(demand), day_starts)
    per_day = _matched(s.hourly, demand, eff, factor, starts) / max(1, n_days)
    need = rule.min_matched_per_day
    base = replace(base, matched_per_day=per_day)
    if per_day <= EPS or per_day < need * CLEAR_BELOW:
        daily = _matched(s.hourly, demand, eff, factor, day_starts) / max(1, n_days)
        if coupling == "hour" and daily >= max(need, EPS) * CLEAR_ABOVE:
            return replace(
                base,
                reason="no_temporal_overlap",
                detail=f"{daily:.4g} {unit}/day would match over a day, {per_day:.4g} hour by hour",
            )
        return replace(
            base,
            reason="too_small",
            detail=f"{per_day:.4g} {unit}/day could be matched, below {need:g} worth proposing",
        )
    if per_day < need * CLEAR_ABOVE:
        return replace(base, ambiguous=f"{per_day:.4g} {unit}/day is close to the {need:g} minimum")
    return replace(base, detail=f"{per_day:.4g} {unit}/day matched {coupling} by {coupling}")


def _cap_receivers(verdicts: list[Verdict], cap: int) -> list[Verdict]:
    """The matcher keeps the best ``cap`` receivers per surplus: more is not a clear design."""
    count = Counter(v.from_meter for v in verdicts if v.reason is None and v.ambiguous is None)
    return [
        replace(v, ambiguous=f"{count[v.from_meter]} receivers, the matcher keeps {cap}")
        if v.reason is None and v.ambiguous is None and count[v.from_meter] > cap
        else v
        for v in verdicts
    ]
