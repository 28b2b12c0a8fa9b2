"""The planted cases' figures over a window, by plain arithmetic, and their verdicts. Pure.

For each case ``cases`` declares, the oracle reckons from the design's noise-free, fault-free
hourly flows (``flows.expected_hourly``):

- supply: the out-meter's flow, less what registered exchanges take (a share of each day or a
  quantity per day, spread over the day's hours in proportion to the flow); for generation
  meant for the tenant's own use (``Case.own_use``), only each hour's generation beyond it;
- demand: the in-meter's intake (a fuel meter's tonnes times the design's heating value);
- matched: in each bucket of the case's coupling (an hour; a local day; 7 days; 28 days, the
  window; counted from the window's first day) the smaller of supply x ``per_unit`` and
  demand x ``share``, summed over the buckets and divided by the window's days;
- distance: the straight line between the two tenants' sites, times the rule book's routing
  factor (pipes and roads do not run straight).

It then checks that the declared verdict is what the figures say and that they are well clear of
the rule book's thresholds: its reach, the smallest stream worth reporting and the share of days
it must flow on, the smallest match worth proposing, how many receivers it keeps per stream.
A figure near a threshold, or on the other side of it, makes the case ambiguous: the scenario
generator redraws such designs and the default scenario must have none. Reasons the registry
states (quality, uses, registered exchanges) are taken as declared.

Nothing here calls or copies the detection and matching code this is the answer key for; the
figures are what the design supplies, before line losses, noise and faults, and the scoring's
tolerance (``truth.score``) is what allows for those.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from parkflow.registry.schema import Meter, Park, Tenant
from parkflow.timeunits import HOUR_MS
from parkflow.units import canonical_unit
from service.knowledge import Knowledge, Rule
from service.simulate.cases import Case, Reason
from service.simulate.flows import expected_hourly
from service.simulate.profiles import FloatArray, IntArray, Profile, clock

BUCKET_DAYS = {"day": 1, "week": 7, "month": 28}  # a month of four weeks: the truth's window
TINY = 1e-9  # a noise-free flow this small is none
# A figure within these factors of its threshold is too close to call.
CLEAR_BELOW = 0.6
CLEAR_ABOVE = 1.6
DISTANCE_MARGIN = 0.1
SHARE_MARGIN = 0.1  # of days a stream must flow on
OWN_USE_MARGIN = 0.1  # generation must clearly exceed, or stay below, own use in every hour
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
AS_STATED: tuple[Reason, ...] = ("quality_mismatch", "use_not_replaceable", "equipment_missing")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A planted case over one window: its declared figures; ``reason`` None: an opportunity."""

    park: str
    rule: str
    from_tenant: str
    from_meter: str
    to_tenant: str
    to_meter: str
    reason: Reason | None
    detail: str
    matched_per_day: float  # receiver units per day the design supports
    unit: str  # the receiver's canonical unit
    distance_m: float
    ambiguous: str | None = None  # why the design does not give a clear answer
    coupling: str = "hour"
    share: float = 1.0
    per_unit: float = 1.0
    supply_per_day: float = 0.0  # mean over the window's days, the supplier's canonical unit
    supply_unit: str = ""
    demand_per_day: float = 0.0  # the receiver's whole intake, mean per day

    @property
    def id(self) -> str:
        return f"{self.park}:{self.from_meter}>{self.to_meter}:{self.rule}"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.from_meter, self.to_meter, self.rule)


@dataclass(frozen=True, slots=True)
class _Window:
    hourly: Mapping[str, FloatArray]
    day_of_hour: IntArray  # 0 for the window's first local day
    day_numbers: IntArray  # local day number since 1970-01-01 of each day
    n_days: int

    def per_day(self, hourly: FloatArray) -> FloatArray:
        out = np.bincount(self.day_of_hour, weights=hourly, minlength=self.n_days)
        return out.astype(np.float64)

    def buckets(self, coupling: str) -> IntArray:
        if coupling == "hour":
            return np.arange(len(self.day_of_hour), dtype=np.int64)
        return self.day_of_hour // BUCKET_DAYS[coupling]

    def matched(self, offered: FloatArray, wanted: FloatArray, coupling: str) -> float:
        """Sum over the coupling's buckets of the smaller side, per day of the window."""
        b = self.buckets(coupling)
        both = np.minimum(np.bincount(b, weights=offered), np.bincount(b, weights=wanted))
        return float(both.sum()) / max(1, self.n_days)


@dataclass(frozen=True, slots=True)
class _Figures:
    distance_m: float
    supply_per_day: float
    supply_p50: float  # median day
    present: float  # share of days the supply flows on
    demand_per_day: float
    matched_per_day: float  # at the case's coupling
    matched_by_day: float  # the same day by day: what timing alone costs
    matched_without_own: float  # were the receiver's own generation not counted
    own_use_close: int | None  # first hour generation and own use are within the margin


def judge(
    park: Park,
    profiles: Mapping[str, Profile],
    cases: Sequence[Case],
    knowledge: Knowledge,
    start_ms: int,
    end_ms: int,
) -> list[Verdict]:
    """The verdict of every case of ``park`` over the whole local days [start_ms, end_ms)."""
    hours = np.arange(start_ms, end_ms, HOUR_MS, dtype=np.int64)
    day = clock(hours, park.timezone).day
    window = _Window(
        hourly=expected_hourly(park, profiles, start_ms, end_ms),
        day_of_hour=(day - day[0]).astype(np.int64),
        day_numbers=np.unique(day).astype(np.int64),
        n_days=len(np.unique(day)),
    )
    where = {m.id: (t, m) for t in park.tenants for m in t.meters}
    rules = {r.id: r for r in knowledge.active_rules()}
    out = [_verdict(park, c, where, rules, window, knowledge) for c in cases]
    return _cap_receivers(out, knowledge.matching.max_receivers_per_surplus)


def _verdict(
    park: Park,
    case: Case,
    where: Mapping[str, tuple[Tenant, Meter]],
    rules: Mapping[str, Rule],
    window: _Window,
    knowledge: Knowledge,
) -> Verdict:
    (s_tenant, s_meter), (d_tenant, d_meter) = where[case.supply], where[case.demand]
    f = _figures(park, case, s_tenant, d_tenant, window, knowledge)
    unit, s_unit = canonical_unit(d_meter.resource), canonical_unit(s_meter.resource)
    base = Verdict(
        park=park.id,
        rule=case.rule,
        from_tenant=s_tenant.id,
        from_meter=case.supply,
        to_tenant=d_tenant.id,
        to_meter=case.demand,
        reason=case.reason,
        detail=case.why,
        matched_per_day=f.matched_per_day if case.reason is None else 0.0,
        unit=unit,
        distance_m=f.distance_m,
        coupling=case.coupling,
        share=case.share,
        per_unit=case.per_unit,
        supply_per_day=f.supply_per_day,
        supply_unit=s_unit,
        demand_per_day=f.demand_per_day,
    )
    rule = rules.get(case.rule)
    if rule is None:
        return replace(base, ambiguous=f"rule {case.rule} is not in the rule book")
    registered = any(
        e.from_meter == case.supply and e.to_meter == case.demand for e in park.exchanges
    )
    problem = _unclear(case, f, rule, knowledge, s_meter.resource, registered)
    return replace(base, detail=_detail(case, f, rule, unit, s_unit), ambiguous=problem)


def _figures(
    park: Park,
    case: Case,
    s_tenant: Tenant,
    d_tenant: Tenant,
    window: _Window,
    knowledge: Knowledge,
) -> _Figures:
    supply = window.hourly[case.supply]
    close = None
    if case.own_use is not None:
        use = window.hourly[case.own_use]
        near = (supply > TINY) & (np.abs(supply - use) < OWN_USE_MARGIN * supply)
        close = int(np.flatnonzero(near)[0]) if near.any() else None
        supply = np.maximum(supply - use, 0.0)
    supply = _after_exchanges(park, case.supply, supply, window)
    demand = window.hourly[case.demand] * case.demand_scale
    days = window.per_day(supply)
    offered, wanted = supply * case.per_unit, demand * case.share
    own_wanted = wanted
    if case.receiver_generation is not None:
        own = window.hourly[case.receiver_generation] > window.hourly[case.demand] * (1 + TINY)
        own_wanted = np.where(own, 0.0, wanted)
    return _Figures(
        distance_m=_route(s_tenant, d_tenant, knowledge),
        supply_per_day=float(days.mean()) if len(days) else 0.0,
        supply_p50=float(np.median(days)) if len(days) else 0.0,
        present=float(np.mean(days > TINY)) if len(days) else 0.0,
        demand_per_day=float(demand.sum()) / max(1, window.n_days),
        matched_per_day=window.matched(offered, own_wanted, case.coupling),
        matched_by_day=window.matched(offered, own_wanted, "day"),
        matched_without_own=window.matched(offered, wanted, case.coupling),
        own_use_close=close,
    )


def _after_exchanges(park: Park, meter: str, flow: FloatArray, window: _Window) -> FloatArray:
    """What registered exchanges leave of each day's flow, spread over its hours in proportion."""
    totals = window.per_day(flow)
    shares = np.zeros(window.n_days)
    fixed = np.zeros(window.n_days)
    for e in park.exchanges:
        if e.from_meter != meter:
            continue
        running = window.day_numbers >= e.since.toordinal() - EPOCH_ORDINAL
        if e.share is not None:
            shares[running] += e.share
        else:
            fixed[running] += e.quantity_per_day or 0.0
    left = np.maximum(totals * (1.0 - np.minimum(shares, 1.0)) - fixed, 0.0)
    kept = np.divide(left, totals, out=np.zeros_like(totals), where=totals > TINY)
    out: FloatArray = flow * kept[window.day_of_hour]
    return out


def _route(a: Tenant, b: Tenant, knowledge: Knowledge) -> float:
    if a.location is None or b.location is None:
        return math.nan  # unclear: the cases are designed on the site plan
    straight = math.hypot(a.location.x_m - b.location.x_m, a.location.y_m - b.location.y_m)
    return straight * knowledge.matching.routing_factor


def _unclear(
    case: Case, f: _Figures, rule: Rule, knowledge: Knowledge, resource: str, registered: bool
) -> str | None:
    """Why the figures do not clearly give the declared verdict; None when they do."""
    if case.reason in AS_STATED or (case.reason == "already_exchanged" and registered):
        return None
    floor = knowledge.detection.min_p50(resource)
    need_days = knowledge.detection.min_present_share
    small = (
        f.supply_p50 <= TINY
        or f.supply_p50 < floor * CLEAR_BELOW
        or f.present < need_days - SHARE_MARGIN
    )
    lasting = (
        f.supply_p50 > TINY
        and f.supply_p50 >= floor * CLEAR_ABOVE
        and f.present >= need_days + SHARE_MARGIN
    )
    if case.reason == "already_exchanged":  # no exchange between the two: the whole stream
        return None if small else f"{f.supply_p50:.4g}/day left after the exchanges"
    reach = rule.max_distance_m
    if case.reason == "too_far":
        if f.distance_m > reach * (1 + DISTANCE_MARGIN):
            return None
        return f"{f.distance_m:,.0f} m is not clearly beyond the {reach:,.0f} m reach"
    if not f.distance_m < reach * (1 - DISTANCE_MARGIN):
        return f"{f.distance_m:,.0f} m is not clearly within the {reach:,.0f} m reach"
    if f.own_use_close is not None:
        return f"generation and own use within {OWN_USE_MARGIN:.0%} in hour {f.own_use_close}"
    need = rule.min_matched_per_day
    if case.reason == "too_small":
        if small or f.matched_per_day < need * CLEAR_BELOW:
            return None
        return f"median {f.supply_p50:.4g}/day, {f.matched_per_day:.4g}/day matched: not small"
    if not lasting:
        return f"median {f.supply_p50:.4g}/day on {f.present:.0%} of days: not clearly a surplus"
    if case.reason == "own_generation":
        if f.matched_per_day < need * CLEAR_BELOW and f.matched_without_own >= need * CLEAR_ABOVE:
            return None
        return (
            f"{f.matched_per_day:.4g}/day matched beyond the receiver's own generation,"
            f" {f.matched_without_own:.4g} without it: its own generation is not clearly what"
            " decides"
        )
    if case.reason == "no_temporal_overlap":
        if f.matched_per_day < need * CLEAR_BELOW and f.matched_by_day >= need * CLEAR_ABOVE:
            return None
        return (
            f"{f.matched_per_day:.4g}/day matched {case.coupling} by {case.coupling},"
            f" {f.matched_by_day:.4g} day by day: timing is not clearly what decides"
        )
    if f.matched_per_day < need * CLEAR_ABOVE:
        return f"{f.matched_per_day:.4g}/day is not clearly above the {need:g} minimum"
    return None


def _detail(case: Case, f: _Figures, rule: Rule, unit: str, s_unit: str) -> str:
    """The declared reason with the figure that decides it."""
    if case.reason is None:
        return (
            f"{case.why}: {f.supply_per_day:.4g} {s_unit}/day to offer,"
            f" {case.share:.0%} of {f.demand_per_day:.4g} {unit}/day replaceable;"
            f" {f.matched_per_day:.4g} {unit}/day matched {case.coupling} by {case.coupling}"
        )
    if case.reason == "too_far":
        return f"{case.why} ({f.distance_m:,.0f} m of route, reach {rule.max_distance_m:,.0f} m)"
    if case.reason == "too_small":
        return f"{case.why} (median {f.supply_p50:.4g} {s_unit}/day)"
    if case.reason == "no_temporal_overlap":
        return (
            f"{case.why} ({f.matched_by_day:.4g} {unit}/day would match day by day,"
            f" {f.matched_per_day:.4g} hour by hour)"
        )
    return case.why


def _cap_receivers(verdicts: list[Verdict], cap: int) -> list[Verdict]:
    """The rule book keeps ``cap`` receivers per stream: more is not a clear design."""
    count = Counter(v.from_meter for v in verdicts if v.reason is None and v.ambiguous is None)
    return [
        replace(v, ambiguous=f"{count[v.from_meter]} receivers; the rule book keeps {cap}")
        if v.reason is None and v.ambiguous is None and count[v.from_meter] > cap
        else v
        for v in verdicts
    ]
