"""Changes between two detection runs, as events that alerts deliver. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.detect import Surplus
from service.match import Opportunity

SURPLUS_NEW = "surplus_new"
SURPLUS_GROWN = "surplus_grown"
SURPLUS_SHRUNK = "surplus_shrunk"
SURPLUS_GONE = "surplus_gone"
OPPORTUNITY_NEW = "opportunity_new"
OPPORTUNITY_GONE = "opportunity_gone"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a run found, reduced to what the next run is compared with."""

    park: str
    tenants: tuple[str, ...]  # who is concerned: the supplier, and the receiver for a link
    size: float  # surplus: P50 per day; opportunity: matched quantity per day
    unit: str


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    subject_id: str
    park: str
    tenants: tuple[str, ...]
    summary: str
    before: float | None
    after: float | None


def snapshot_surplus(s: Surplus) -> Snapshot:
    return Snapshot(s.park, (s.tenant,), s.p50_per_day, s.unit)


def snapshot_opportunity(o: Opportunity) -> Snapshot:
    return Snapshot(o.park, (o.from_tenant, o.to_tenant), o.matched_per_day, o.demand_unit)


def diff(
    before_surpluses: Mapping[str, Snapshot],
    after_surpluses: Mapping[str, Snapshot],
    before_opportunities: Mapping[str, Snapshot],
    after_opportunities: Mapping[str, Snapshot],
    change: float = 0.25,
) -> list[Event]:
    """New, grown (> +change), shrunk (< -change) and gone surpluses; new and gone links."""
    events: list[Event] = []
    for sid, now in after_surpluses.items():
        was = before_surpluses.get(sid)
        if was is None:
            events.append(
                _event(SURPLUS_NEW, sid, now, None, f"new surplus: {_q(now.size, now.unit)}")
            )
        elif was.size > 0 and abs(now.size - was.size) / was.size > change:
            kind = SURPLUS_GROWN if now.size > was.size else SURPLUS_SHRUNK
            verb = "grew" if kind == SURPLUS_GROWN else "shrank"
            text = f"surplus {verb} from {_q(was.size, was.unit)} to {_q(now.size, now.unit)}"
            events.append(_event(kind, sid, now, was.size, text))
    for sid, was in before_surpluses.items():
        if sid not in after_surpluses:
            events.append(_gone(SURPLUS_GONE, sid, was, "surplus no longer seen"))
    for oid, now in after_opportunities.items():
        if oid not in before_opportunities:
            text = f"new exchange opportunity: {_q(now.size, now.unit)}"
            events.append(_event(OPPORTUNITY_NEW, oid, now, None, text))
    for oid, was in before_opportunities.items():
        if oid not in after_opportunities:
            events.append(_gone(OPPORTUNITY_GONE, oid, was, "opportunity no longer found"))
    return events


def snapshots(items: Sequence[Surplus] | Sequence[Opportunity]) -> dict[str, Snapshot]:
    out: dict[str, Snapshot] = {}
    for item in items:
        if isinstance(item, Surplus):
            out[item.id] = snapshot_surplus(item)
        else:
            out[item.id] = snapshot_opportunity(item)
    return out


def _event(kind: str, sid: str, snap: Snapshot, before: float | None, summary: str) -> Event:
    return Event(kind, sid, snap.park, snap.tenants, summary, before, snap.size)


def _gone(kind: str, sid: str, was: Snapshot, summary: str) -> Event:
    return Event(kind, sid, was.park, was.tenants, summary, was.size, None)


def _q(x: float, unit: str) -> str:
    return f"{x:,.1f} {unit}/day"
