"""What each page shows, gathered from the same repositories and rules the API and the CLI
use; the routes only render it. A tenant's pages start from its own tenant id and go through
``service.auth.access`` and ``service.api.views`` for anything that concerns another tenant."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from parkflow.tables import with_plan
from parkflow.timeunits import DAY_MS, now_ms
from service.alerts.lifecycle import Alert, Status
from service.api.context import ApiContext
from service.api.views import OPPORTUNITY_KINDS, alert_view, tenant_opportunity
from service.auth import Principal
from service.auth.access import can_see, can_see_park
from service.exchanges.pipeline import MOVES, Projection, Stage
from service.exchanges.repository import Entry
from service.exchanges.savings import DaySavings, monthly, park_total
from service.meters import meter_summaries
from service.results import Run
from service.rollups.compute import standard_offset_ms
from service.web import flows
from service.web.formats import day as fmt_day
from service.web.i18n import Language

PERIODS = (7, 28, 90)


@dataclass(frozen=True, slots=True)
class Period:
    days: int
    start_ms: int
    end_ms: int  # the local midnight that ends the last complete day
    offset_ms: int  # the park's, for the day it ends on
    now_ms: int  # for what is about now (the last reading, staleness), not about days

    @property
    def until(self) -> date:
        """The last day of the period (the day before ``end_ms``'s midnight)."""
        return datetime.fromtimestamp((self.end_ms - DAY_MS + self.offset_ms) / 1000, UTC).date()


def complete_days(now: int, days: int, offset_ms: int) -> tuple[int, int]:
    """The ``days`` complete local days before ``now``: (start, end) in epoch ms. Today's
    hours that have not happened yet would count as hours without data, and a day half over
    would end every chart with a plunge, so the period ends at the last local midnight."""
    end = (now + offset_ms) // DAY_MS * DAY_MS - offset_ms
    return end - days * DAY_MS, end


def period(ctx: ApiContext, days: int | None, park: str | None = None) -> Period:
    """The ``days`` complete days before now (the service's ``now`` setting, when it replays,
    else the clock); one of ``PERIODS``, else the detection window."""
    n = days if days in PERIODS else ctx.settings.window_days
    now = int(ctx.settings.now.timestamp() * 1000) if ctx.settings.now else now_ms()
    offset = offset_of(ctx, park)
    start, end = complete_days(now, n, offset)
    return Period(n, start, end, offset, now)


def _parks(ctx: ApiContext, p: Principal) -> list[str]:
    return [park for park in ctx.registry.parks if can_see_park(p, park)]


def offset_of(ctx: ApiContext, park: str | None) -> int:
    """A park's standard offset from UTC (the registry's first park for every park's view:
    a registry's parks share a country), for the times and days the pages write."""
    parks = ctx.registry.parks
    if not parks:
        return 0
    tz = parks[park].timezone if park in parks else next(iter(parks.values())).timezone
    return standard_offset_ms(tz)


def timezone_of(ctx: ApiContext, park: str | None) -> str | None:
    """The park's time zone name (the registry's first park's for every park's view)."""
    parks = ctx.registry.parks
    if not parks:
        return None
    return parks[park].timezone if park in parks else next(iter(parks.values())).timezone


def _units(ctx: ApiContext) -> dict[tuple[str, str], str]:
    return {
        (rm.tenant.id, rm.meter.id): rm.meter.canonical_unit.removesuffix("/h")
        for rm in ctx.registry.meters()
    }


def _name(ctx: ApiContext, park: str, tenant: str | None) -> str:
    return "" if tenant is None else ctx.names(park).get(tenant, tenant)


def visible_alerts(ctx: ApiContext, p: Principal) -> list[dict[str, Any]]:
    """Open and acknowledged alerts the principal may see, as the API shows them to it."""
    out = []
    for a in ctx.alerts.alerts((Status.OPEN, Status.ACKNOWLEDGED), park=p.park, tenant=p.tenant):
        if can_see(p, a.park, (a.tenant,)):  # the query narrows; this decides
            v = alert_view(a, not p.is_operator, ctx.pepper.reference)
            v["tenant_name"] = _name(ctx, a.park, a.tenant) if p.is_operator else ""
            # named by reference only (its subject is the reference): said in the page's language
            v["by_reference"] = not p.is_operator and a.kind in OPPORTUNITY_KINDS
            out.append(v)
    return out


def find_alert(ctx: ApiContext, p: Principal, alert_id: str) -> Alert | None:
    """One alert by its id (as the API finds it), if the principal may see it."""
    a = ctx.alerts.alert(alert_id)
    return a if a is not None and can_see(p, a.park, (a.tenant,)) else None


# -- operators ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KindCount:
    kind: str
    open: int
    acknowledged: int


def alert_counts(alerts: list[dict[str, Any]]) -> list[KindCount]:
    """Open and acknowledged alerts by kind, most open first: what the overview says of the
    alerts without naming anyone (demo mode) and beside the list (signed in)."""
    counts: dict[str, list[int]] = {}
    for a in alerts:
        c = counts.setdefault(str(a["kind"]), [0, 0])
        c[0 if a["status"] == Status.OPEN else 1] += 1
    rows = [KindCount(k, o, ack) for k, (o, ack) in counts.items()]
    return sorted(rows, key=lambda r: (-r.open, -r.acknowledged, r.kind))


PLAN_FIGURES = (
    "park_vnd_per_year",
    "co2e_avoided_t_per_year",
    "water_saved_m3_per_year",
    "landfill_diverted_t_per_year",
)


def park_share(links: list[dict[str, Any]]) -> dict[str, Any]:
    """The plan's figures summed over the links one park's operator may see: the park's own
    share of the plan, for an operator the registry-wide totals are withheld from (the links
    are the plan's, so their sum is what the plan does in that park)."""
    out: dict[str, Any] = {
        k: sum(float(link.get(k) or 0.0) for link in links) for k in PLAN_FIGURES
    }
    out["park_vnd_per_year"] = int(out["park_vnd_per_year"])
    out["n_links"] = len(links)
    return out


@dataclass
class Overview:
    period: Period
    flows: dict[tuple[str, str], list[flows.Flow]]
    names: dict[str, str]
    coverage: float | None
    elapsed_days: int  # the period's days since the park's data began (coverage's base)
    quarantine: dict[str, int]
    plan: dict[str, Any] | None
    park_share: dict[str, Any] | None  # an operator of one park: its links' sum instead
    run: Run | None
    alerts: list[dict[str, Any]] = field(default_factory=list)  # none for an anonymous reader
    counts: list[KindCount] = field(default_factory=list)

    @property
    def n_open(self) -> int:
        return sum(c.open for c in self.counts)

    @property
    def n_acknowledged(self) -> int:
        return sum(c.acknowledged for c in self.counts)


def overview(ctx: ApiContext, p: Principal, days: int | None, anonymous: bool = False) -> Overview:
    """``anonymous``: demo mode's reader without a key, who gets the alerts as counts by kind
    only: an opportunity's summary names the two parties, the pairing consent protects."""
    per = period(ctx, days, p.park)
    parks = _parks(ctx, p)
    frames = [ctx.store.day_rollups(park, per.start_ms, per.end_ms) for park in parks]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    meters = sum(1 for rm in ctx.registry.meters() if rm.park.id in parks)
    elapsed = flows.elapsed_days(frame, per.end_ms, per.days, DAY_MS)
    names: dict[str, str] = {}
    for park in parks:
        names.update(ctx.names(park))
    run = ctx.results.latest_run()
    # the plan's totals are the registry's whole (every park's): only for an operator of all
    plan = ctx.results.plan(run.id) if run is not None and p.park is None else None
    share = park_share(_links(ctx, p, run)) if run is not None and p.park is not None else None
    alerts = visible_alerts(ctx, p)
    return Overview(
        period=per,
        flows=flows.by_resource(flows.flows(frame, _units(ctx), elapsed)) if meters else {},
        names=names,
        coverage=flows.coverage(frame, meters, elapsed),
        elapsed_days=elapsed,
        quarantine=dict(sorted(ctx.store.quarantine_counts().items())) if p.park is None else {},
        plan=plan,
        park_share=share,
        run=run,
        alerts=[] if anonymous else alerts,
        counts=alert_counts(alerts),
    )


def _links(ctx: ApiContext, p: Principal, run: Run) -> list[dict[str, Any]]:
    return [
        link
        for link in ctx.results.plan_links(run.id)
        if can_see(p, link["park"], (link["from_tenant"], link["to_tenant"]))
    ]


def _demand(o: dict[str, Any]) -> str:
    return "/".join(
        str(o.get(k) or "") for k in ("park", "to_tenant", "to_meter", "demand_resource")
    )


def alternatives(rows: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Opportunity id -> the ranks of the rows it competes with: those offering the same
    surplus or meeting the same demand. They compete, they do not exclude each other: the
    plan may run two that share a surplus, each with part of it, and says how much."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for o in rows:
        groups.setdefault(("surplus", str(o.get("surplus_id") or o["id"])), []).append(o)
        if o.get("to_meter") or o.get("demand_resource"):
            groups.setdefault(("demand", _demand(o)), []).append(o)
    out: dict[str, set[int]] = {o["id"]: set() for o in rows}
    for group in groups.values():
        for o in group:
            out[o["id"]].update(int(x["rank"]) for x in group if x["id"] != o["id"])
    return {k: sorted(v) for k, v in out.items()}


@dataclass
class Opportunities:
    run: Run | None
    rows: list[dict[str, Any]]
    competes: dict[str, list[int]]
    links: list[dict[str, Any]]
    totals: dict[str, Any] | None
    names: dict[str, str]
    park_share: dict[str, Any] | None = None


def opportunities(ctx: ApiContext, p: Principal) -> Opportunities:
    run = ctx.results.latest_run()
    if run is None:
        return Opportunities(None, [], {}, [], None, {})
    links = _links(ctx, p, run)
    rows = [
        o
        for o in with_plan(ctx.results.opportunities(run.id), links)
        if can_see(p, o["park"], (o["from_tenant"], o["to_tenant"]))
    ]
    names: dict[str, str] = {}
    for park in _parks(ctx, p):
        names.update(ctx.names(park))
    totals = ctx.results.plan(run.id) if p.park is None else None
    share = park_share(links) if p.park is not None else None
    return Opportunities(run, rows, alternatives(rows), links, totals, names, share)


def next_stages(stage: Stage) -> list[str]:
    """The stages ``stage`` may move to, the next forward one first (the form's default):
    a form that defaults to rejecting or ending invites the one irreversible mistake."""
    order = list(Stage)
    ends = (Stage.REJECTED, Stage.ENDED)

    def key(s: Stage) -> tuple[int, int]:
        forward = order.index(s) > order.index(stage) and s not in ends
        return (0 if forward else 2 if s in ends else 1, order.index(s))

    return [s.value for s in sorted(MOVES[stage], key=key)]


@dataclass
class PipelineRow:
    entry: Entry
    moves: list[str]  # the stages it may go to next


def pipeline(ctx: ApiContext, p: Principal) -> list[PipelineRow]:
    repo = ctx.exchanges
    out = []
    for e in repo.entries(p.park):
        if can_see_park(p, e.park):
            out.append(PipelineRow(e, next_stages(e.pipeline.stage)))
    order = list(Stage)
    return sorted(out, key=lambda r: (order.index(r.entry.pipeline.stage), r.entry.id))


@dataclass
class Savings:
    rows: list[dict[str, Any]]  # per exchange and month, then the park per month, then total
    months: list[tuple[str, int]]  # the park's money by month, for the chart


def _projections(entries: list[Entry]) -> dict[str, Projection | None]:
    return {e.id: e.pipeline.projection if e.pipeline.frozen else None for e in entries}


def savings(ctx: ApiContext, p: Principal) -> Savings:
    repo = ctx.exchanges
    entries = [e for e in repo.entries(p.park) if can_see_park(p, e.park)]
    ids = {e.id for e in entries}
    days = [d for d in repo.savings(park=p.park) if d.exchange in ids]
    projections = _projections(entries)
    rows: list[dict[str, Any]] = []
    by_exchange: dict[str, list[DaySavings]] = {}
    for d in days:
        by_exchange.setdefault(d.exchange, []).append(d)
    for ex, items in sorted(by_exchange.items()):
        rows += [_period(m, ex) for m in monthly(items, projections.get(ex))]
    months: dict[str, list[DaySavings]] = {}
    for d in days:
        months.setdefault(f"{d.day:%Y-%m}", []).append(d)
    park_months = [park_total(m, items) for m, items in sorted(months.items())]
    rows += [_period(m, None) for m in park_months]
    if days:
        rows.append(_period(park_total("total", days), None))
    return Savings(rows, [(m.period, m.park_vnd) for m in park_months])


def _period(s: Any, exchange: str | None) -> dict[str, Any]:
    return {
        "exchange": exchange,
        "period": s.period,
        "days": s.days,
        "coverage": s.coverage,
        "quantity": s.quantity,
        "supplier_vnd": s.supplier_vnd,
        "receiver_vnd": s.receiver_vnd,
        "park_vnd": s.park_vnd,
        "water_m3": s.water_m3,
        "co2e_t": s.co2e_t,
        "realised": s.realised_share,
    }


# -- tenants --------------------------------------------------------------------------------


@dataclass
class MeterFlow:
    meter: str
    resource: str
    direction: str
    unit: str
    total: float | None
    value_unit: str  # of the readings themselves (a register, a rate)
    last_ms: int | None
    last_value: float | None
    stale: bool
    series: list[tuple[str, float | None]]


@dataclass
class MyFlows:
    period: Period
    meters: list[MeterFlow]
    offset_ms: int


def my_flows(ctx: ApiContext, p: Principal, days: int | None, lang: Language) -> MyFlows:
    assert p.park is not None and p.tenant is not None
    per = period(ctx, days, p.park)
    mine = [rm for rm in ctx.registry.meters() if (rm.park.id, rm.tenant.id) == (p.park, p.tenant)]
    frame = ctx.store.day_rollups(p.park, per.start_ms, per.end_ms)
    frame = frame[frame["tenant"] == p.tenant]  # never another tenant's row past this line
    offset = per.offset_ms
    starts = flows.day_starts(frame, per.start_ms, per.end_ms, DAY_MS)
    labels = [
        fmt_day(datetime.fromtimestamp((d + offset) / 1000, UTC).date(), lang) for d in starts
    ]
    summaries = meter_summaries(ctx.store, mine, per.now_ms - DAY_MS, per.now_ms)
    out = []
    for rm, s in zip(mine, summaries, strict=True):
        values = flows.daily(frame, p.tenant, rm.meter.id, starts)
        present = [v for v in values if v is not None]
        out.append(
            MeterFlow(
                meter=rm.meter.id,
                resource=rm.meter.resource,
                direction=str(rm.meter.direction),
                unit=rm.meter.canonical_unit.removesuffix("/h"),
                total=sum(present) if present else None,
                value_unit=s.value_unit,
                last_ms=s.last_ms,
                last_value=s.last_value,
                stale=s.stale,
                series=flows.series(values, labels),
            )
        )
    return MyFlows(per, out, offset)


@dataclass
class MyOpportunity:
    view: dict[str, Any]
    ref: str
    consented: bool
    introduced: bool


def _mine(ctx: ApiContext, p: Principal) -> list[dict[str, Any]]:
    run = ctx.results.latest_run()
    if run is None:
        return []
    return [
        o
        for o in ctx.results.opportunities(run.id, tenant=p.tenant)
        if can_see(p, o["park"], (o["from_tenant"], o["to_tenant"]))
    ]


def my_opportunities(ctx: ApiContext, p: Principal, lang: Language) -> list[MyOpportunity]:
    assert p.tenant is not None
    mine = _mine(ctx, p)
    # one read each for the page: where both parties stand introduced, where its own stands
    both = ctx.introduced_among({o["id"]: (o["from_tenant"], o["to_tenant"]) for o in mine})
    own = ctx.introduced_among({o["id"]: (p.tenant, p.tenant) for o in mine})
    out = []
    for o in mine:
        ref = ctx.pepper.reference(o["id"])
        known = o["id"] in both
        view = tenant_opportunity(o, p.tenant, ref, ctx.names(o["park"]), known, lang)
        out.append(MyOpportunity(view, ref, o["id"] in own, known))
    return out


def my_opportunity(ctx: ApiContext, p: Principal, ref: str) -> dict[str, Any] | None:
    """The tenant's own opportunity by its reference (never by the id that names meters)."""
    for o in _mine(ctx, p):
        if ctx.pepper.reference(o["id"]) == ref:
            return o
    return None


@dataclass
class MySavingsRow:
    exchange: str
    role: str
    period: str
    days: int
    quantity: float
    unit: str
    own_vnd: int
    co2e_t: float
    coverage: float


def my_savings(ctx: ApiContext, p: Principal) -> list[MySavingsRow]:
    """Per exchange the tenant is a registered party to and month: its own side's money,
    never the other party's."""
    assert p.tenant is not None
    repo = ctx.exchanges
    out = []
    for e in repo.entries(p.park):
        r = e.registration
        if r is None or p.tenant not in (r.supplier, r.receiver):
            continue
        if not can_see(p, e.park, (r.supplier, r.receiver)):
            continue
        role = "supplier" if r.supplier == p.tenant else "receiver"
        for m in monthly(repo.savings(exchange_id=e.id)):
            out.append(
                MySavingsRow(
                    exchange=e.id,
                    role=role,
                    period=m.period,
                    days=m.days,
                    quantity=m.quantity,
                    unit=r.unit,
                    own_vnd=m.supplier_vnd if role == "supplier" else m.receiver_vnd,
                    co2e_t=m.co2e_t,
                    coverage=m.coverage,
                )
            )
    return out
