"""Where conditions come from, as pure functions over what was read: a detection run's
findings, each meter's last reading, its register's recent drops, the quarantine's recent
records. Each returns the observations one evaluation makes; the repository does the rest.

A condition is a state, not an edge: "this surplus is in the latest run", "this meter has not
reported for k times its interval". Edges (found, grown, ended) follow from the lifecycle, so a
missed run or a restart loses none of them. What is tracked but no longer observed (a surplus
gone, a meter removed from the registry) is observed as cleared.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from parkflow.model import Rejection
from parkflow.registry import Registry
from service.alerts.kinds import (
    COUNTER_RESET,
    INGEST_LAG,
    METER_STALE,
    OPPORTUNITY,
    QUARANTINE_RATE,
    SPIKE,
    STORE_UNREACHABLE,
    SURPLUS,
    Kind,
)
from service.alerts.lifecycle import Observation, observe
from service.alerts.texts import OpportunityFacts, SurplusFacts, facts_json
from service.detect import Surplus
from service.events import OPPORTUNITY_NEW, SURPLUS_GROWN, SURPLUS_NEW, SURPLUS_SHRUNK, Event
from service.match import Opportunity
from service.rollups.counters import RESET, Drop

ALL_PARKS = "*"  # the park of an alert about the system itself
STORE_SUBJECT = "store"


def _cleared(
    kind: Kind, seen: set[str], tracked: Mapping[str, tuple[str, str | None]]
) -> list[Observation]:
    """The tracked subjects (subject -> park, tenant) of a kind that were not observed."""
    return [
        observe(kind, subject, park, tenant, False)
        for subject, (park, tenant) in tracked.items()
        if subject not in seen
    ]


def detection_observations(
    surpluses: Sequence[Surplus],
    opportunities: Sequence[Opportunity],
    events: Sequence[Event],
    tracked: Mapping[str, Mapping[str, tuple[str, str | None]]],
    names: Mapping[str, str] | None = None,
    locations: Mapping[str, tuple[float, float]] | None = None,
) -> list[Observation]:
    """Suppliers hear of their surpluses (found, grown or shrunk, ended), receivers of the
    opportunities for them (found, gone). ``tracked``: kind -> subject -> (park, tenant);
    ``names``, ``locations``: tenant id -> name, site-plan position (the registry), for the
    facts the notifications are rendered from."""
    names = names or {}
    changes = {
        e.subject_id: ("grown" if e.kind == SURPLUS_GROWN else "shrunk", e.summary, e.before)
        for e in events
        if e.kind in (SURPLUS_GROWN, SURPLUS_SHRUNK)
    }
    out: list[Observation] = []
    for s in surpluses:
        change = changes.get(s.id)
        summary = f"{s.resource} surplus of {s.p50_per_day:,.1f} {s.unit}/day at {s.meter}"
        if change is not None:
            summary = f"{summary} ({change[1]})"
        facts = SurplusFacts(
            kind=SURPLUS_NEW,
            park=s.park,
            ref="",  # the alert's own, given when it is rendered
            surplus_id=s.id,
            tenant=s.tenant,
            name=names.get(s.tenant, s.tenant),
            meter=s.meter,
            resource=s.resource,
            unit=s.unit,
            per_day=s.p50_per_day,
            before_per_day=change[2] if change is not None else s.p50_per_day,
            days_present=s.days_present,
            days=s.days,
        )
        out.append(
            observe(
                SURPLUS,
                s.id,
                s.park,
                s.tenant,
                True,
                summary,
                change and change[0],
                facts_json(facts),
            )
        )
    out += _cleared(SURPLUS, {s.id for s in surpluses}, tracked.get(SURPLUS.name, {}))
    for o in opportunities:
        summary = (  # the operators' line: a tenant is shown its own side (views, texts)
            f"{names.get(o.from_tenant, o.from_tenant)} could supply"
            f" {o.supply_used_per_day:,.1f} {o.supply_unit}/day of {o.supply_resource} to"
            f" {names.get(o.to_tenant, o.to_tenant)}, replacing {o.matched_per_day:,.1f}"
            f" {o.demand_unit}/day of {o.demand_resource} (rule {o.rule})"
        )
        ofacts = OpportunityFacts.of(OPPORTUNITY_NEW, o, "", names, locations)
        out.append(
            observe(OPPORTUNITY, o.id, o.park, o.to_tenant, True, summary, facts=facts_json(ofacts))
        )
    out += _cleared(OPPORTUNITY, {o.id for o in opportunities}, tracked.get(OPPORTUNITY.name, {}))
    return out


def meter_subject(park: str, tenant: str, meter: str) -> str:
    return f"{park}/{tenant}/{meter}"


def expected_interval_ms(max_gap_s: float) -> int:
    """A meter's expected reporting interval. The registry declares the longest gap it
    tolerates (``max_gap_s``); until it declares an interval too, that stands for it."""
    return int(max_gap_s * 1000)


def stale_observations(
    registry: Registry,
    last_reading_ms: Mapping[str, int | None],
    now_ms: int,
    factor: float,
    tracked: Mapping[str, tuple[str, str | None]],
) -> list[Observation]:
    """A meter is stale when its last reading is older than ``factor`` times its expected
    interval (or it never reported). ``last_reading_ms``: meter subject -> epoch ms."""
    out: list[Observation] = []
    seen: set[str] = set()
    for rm in registry.meters():
        k = rm.key
        subject = meter_subject(k.park, k.tenant, k.meter)
        seen.add(subject)
        limit = factor * expected_interval_ms(rm.meter.max_gap_s)
        last = last_reading_ms.get(subject)
        if last is None:
            out.append(
                observe(
                    METER_STALE, subject, k.park, k.tenant, True, f"{subject}: no reading stored"
                )
            )
            continue
        age = now_ms - last
        summary = f"{subject}: no reading for {age / 3_600_000:.1f} h (expected every {limit / factor / 3_600_000:.2f} h)"
        out.append(observe(METER_STALE, subject, k.park, k.tenant, age > limit, summary))
    return out + _cleared(METER_STALE, seen, tracked)


def quarantine_observations(
    registry: Registry,
    recent: Iterable[Rejection],
    window_ms: int,
    per_hour: float,
    tracked: Mapping[str, tuple[str, str | None]],
) -> list[Observation]:
    """A tenant's gateways send bad data when more than ``per_hour`` of its records were
    quarantined per hour over the window ``recent`` covers."""
    counts = Counter((r.park, r.tenant) for r in recent if r.park and r.tenant)
    hours = window_ms / 3_600_000
    out: list[Observation] = []
    seen: set[str] = set()
    for park in registry.model.parks:
        for tenant in park.tenants:
            subject = f"{park.id}/{tenant.id}"
            seen.add(subject)
            rate = counts.get((park.id, tenant.id), 0) / hours
            summary = (
                f"{subject}: {rate:,.1f} quarantined records per hour (alert above {per_hour:g})"
            )
            out.append(
                observe(QUARANTINE_RATE, subject, park.id, tenant.id, rate > per_hour, summary)
            )
    return out + _cleared(QUARANTINE_RATE, seen, tracked)


def _duration(ms: float) -> str:
    """Minutes under two hours (a 15-minute interval reads as one), hours beyond."""
    if ms < 2 * 3_600_000:
        return f"{ms / 60_000:.0f} min"
    return f"{ms / 3_600_000:.1f} h"


def counter_observations(
    registry: Registry,
    recent: Mapping[str, Sequence[Drop]],
    window_ms: int,
    tracked: Mapping[str, tuple[str, str | None]],
) -> list[Observation]:
    """A cumulative meter's register dropped (reset to zero, or wrapped at its declared
    rollover) within the window ``recent`` covers: the quantity across the drop is the meter
    maths' guess, and a reset nobody declared is often a meter replaced without telling.
    ``recent``: meter subject -> its drops in the window (``counters.drops``)."""
    out: list[Observation] = []
    seen: set[str] = set()
    for rm in registry.meters():
        k = rm.key
        subject = meter_subject(k.park, k.tenant, k.meter)
        found = recent.get(subject, ())
        if not found:
            continue
        seen.add(subject)
        resets = sum(1 for d in found if d.kind == RESET)
        what = ", ".join(
            f"{n} {name}{'s' if n > 1 else ''}"
            for n, name in ((resets, "reset"), (len(found) - resets, "rollover"))
            if n
        )
        last = found[-1]
        summary = (
            f"{subject}: {what} of its register in the last {_duration(window_ms)}"
            f" (the last from {last.previous:,.6g} to {last.current:,.6g})"
        )
        out.append(observe(COUNTER_RESET, subject, k.park, k.tenant, True, summary))
    return out + _cleared(COUNTER_RESET, seen, tracked)


def spike_observations(
    registry: Registry,
    out_of_range: Iterable[Rejection],
    window_ms: int,
    tracked: Mapping[str, tuple[str, str | None]],
) -> list[Observation]:
    """A meter sent values outside its plausible range (the registry's ``min``/``max``,
    within what any meter can measure) within the window: the ingestor quarantined them, so
    its quantities miss those readings. ``out_of_range``: such quarantine records."""
    counts = Counter(
        meter_subject(r.park, r.tenant, r.meter)
        for r in out_of_range
        if r.park and r.tenant and r.meter
    )
    out: list[Observation] = []
    seen: set[str] = set()
    for rm in registry.meters():
        k = rm.key
        subject = meter_subject(k.park, k.tenant, k.meter)
        n = counts.get(subject, 0)
        if not n:
            continue
        seen.add(subject)
        m = rm.meter
        declared = [
            f"{name} {v:g} {m.unit}"
            for name, v in (("min", m.min), ("max", m.max))
            if v is not None
        ]
        bounds = ", ".join(declared) or "what a meter can measure"
        summary = (
            f"{subject}: {n} value{'s' if n > 1 else ''} outside its plausible range"
            f" ({bounds}) quarantined in the last {_duration(window_ms)}"
        )
        out.append(observe(SPIKE, subject, k.park, k.tenant, True, summary))
    return out + _cleared(SPIKE, seen, tracked)


def ingest_lag_observations(
    registry: Registry,
    last_reading_ms: Mapping[str, int | None],
    now_ms: int,
    factor: float,
    tracked: Mapping[str, tuple[str, str | None]],
) -> list[Observation]:
    """A park's ingest lags when even its freshest meter is behind: every meter's newest
    stored reading is older than ``factor`` times its expected interval.

    The store keeps no arrival or write time of a reading (only its own timestamp), so the
    lag measured is the newest stored reading's age, per park. One meter behind is its
    gateway (``meter_stale``); all of a park's at once is the path they share: the broker,
    the ingestors, the store's writes. A park none of whose meters ever reported is not
    lagging: it has not started."""
    out: list[Observation] = []
    seen: set[str] = set()
    by_park: dict[str, list[tuple[float, int, int]]] = {}
    for rm in registry.meters():
        k = rm.key
        last = last_reading_ms.get(meter_subject(k.park, k.tenant, k.meter))
        if last is None:
            continue
        interval = max(1, expected_interval_ms(rm.meter.max_gap_s))
        age = now_ms - last
        by_park.setdefault(k.park, []).append((age / interval, age, interval))
    for park, ages in by_park.items():
        seen.add(park)
        behind, age, interval = min(ages)
        summary = (
            f"{park}: even the freshest of its {len(ages)} meters last stored a reading"
            f" {_duration(age)} ago, {behind:.1f} times its expected interval of"
            f" {_duration(interval)} (alert above {factor:g})"
        )
        out.append(observe(INGEST_LAG, park, park, None, behind > factor, summary))
    return out + _cleared(INGEST_LAG, seen, tracked)


def inhibited_by_lag(stale: Sequence[Observation], lag: Sequence[Observation]) -> list[Observation]:
    """The stale-meter observations left once a lagging park's are held back. When a park's
    shared path lags (its broker, the ingestors, the store's writes), every one of its meters
    looks stale: one ``ingest_lag`` alert says so, not one ``meter_stale`` per meter (the
    storm Alertmanager's inhibition rules exist for). Nothing is known of each gateway until
    the path catches up, so its meters keep their state, neither opened nor resolved, as
    they do while the store is down. A park with one meter quiet is that meter's gateway
    as much as any path: its own alert stands (several together point to the path)."""
    quiet = Counter(o.park for o in stale if o.holds)
    lagging = {o.park for o in lag if o.holds and quiet[o.park] > 1}
    return [o for o in stale if o.park not in lagging]


def store_observation(error: str | None) -> Observation:
    summary = f"the store is unreachable: {error}" if error else "the store answers"
    return observe(STORE_UNREACHABLE, STORE_SUBJECT, ALL_PARKS, None, error is not None, summary)
