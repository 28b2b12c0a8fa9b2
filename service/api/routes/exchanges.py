"""Exchanges from idea to verified savings (``ExchangeRepository``): operators list, enter and
move them; a tenant sees the exchanges it is a party to, its counterpart named once the
parties agreed (or both consented to be introduced), and of the savings its own side."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from parkflow.errors import InputError
from service.alerts.texts import round_sig
from service.api.deps import ContextDep, CurrentOperator, CurrentPrincipal, Page, PageDep
from service.api.models import (
    ExchangeIn,
    ExchangeOut,
    MoveIn,
    MoveOut,
    Paged,
    PriceIn,
    ProjectionOut,
    RegistrationIn,
    SavingsOut,
    at,
    paged,
)
from service.api.problems import RESPONSES, ApiProblem, not_found
from service.api.stored import exchange_rows, savings_rows
from service.auth import Principal
from service.auth.access import can_see, can_see_park
from service.exchanges.intake import from_opportunity, latest_opportunity
from service.exchanges.model import Metering, Price
from service.exchanges.pipeline import NEEDS_PARTIES, Projection, Stage
from service.exchanges.repository import Entry, Registration
from service.exchanges.savings import PARK, monthly, park_total
from service.exchanges.savings import cumulative as cumulative_of

router = APIRouter(prefix="/v1", tags=["exchanges"], responses=RESPONSES)

# from these stages on the parties have agreed with each other: each knows the other
_AGREED = NEEDS_PARTIES | {Stage.ENDED}


class _View:
    """What one request needs to show exchanges: their parties (the registration's, else the
    latest run's opportunity's) and which parties are introduced, each read once."""

    def __init__(self, ctx: ContextDep, p: Principal, entries: Iterable[Entry]) -> None:
        self.ctx, self.p = ctx, p
        self.entries = list(entries)
        wanted = {e.opportunity_id for e in self.entries if e.registration is None}
        by_opp: dict[str, tuple[str, str]] = {}
        if wanted - {None}:
            run = ctx.results.latest_run()
            for o in ctx.results.opportunities(run.id) if run else []:
                if o["id"] in wanted:
                    by_opp[o["id"]] = (o["from_tenant"], o["to_tenant"])
        self.parties: dict[str, tuple[str, str] | None] = {}
        for e in self.entries:
            if e.registration is not None:
                self.parties[e.id] = (e.registration.supplier, e.registration.receiver)
            else:
                self.parties[e.id] = by_opp.get(e.opportunity_id or "")
        asked = {
            e.opportunity_id: pair
            for e in self.entries
            if e.opportunity_id and (pair := self.parties[e.id]) is not None
        }
        self.introduced = ctx.introduced_among(asked) if asked and not p.is_operator else set()

    def visible(self, e: Entry) -> bool:
        if self.p.is_operator:
            return can_see_park(self.p, e.park)
        parties = self.parties[e.id]
        return parties is not None and can_see(self.p, e.park, parties)

    def known(self, e: Entry) -> bool:
        """Whether a party may see the other: they agreed, or both consented to be
        introduced. Until then a tenant sees the exchange as it sees the opportunity."""
        return e.pipeline.stage in _AGREED or e.opportunity_id in self.introduced

    def shown_id(self, e: Entry) -> str:
        """An operator names an exchange freely (it may name the other party): a tenant
        that does not know the other yet sees a reference instead."""
        if self.p.is_operator or self.known(e):
            return e.id
        return self.ctx.pepper.reference(f"exchange:{e.id}")

    def out(self, e: Entry, history: bool = False) -> ExchangeOut:
        ctx, p = self.ctx, self.p
        pipe, reg = e.pipeline, e.registration
        parties = self.parties[e.id]
        role: str | None = None
        supplier, receiver = parties if parties else (None, None)
        opportunity = e.opportunity_id
        known = p.is_operator or self.known(e)
        pr = pipe.projection
        projection = None
        if pr is not None:
            projection = ProjectionOut(
                quantity_per_day=pr.quantity_per_day,
                park_vnd_per_year=pr.park_vnd_per_year,
                supplier_vnd_per_year=pr.supplier_vnd_per_year,
                receiver_vnd_per_year=pr.receiver_vnd_per_year,
                co2e_t_per_year=pr.co2e_t_per_year,
                water_m3_per_year=pr.water_m3_per_year,
                landfill_t_per_year=pr.landfill_t_per_year,
                frozen=pipe.frozen,
            )
        if not p.is_operator:
            assert parties is not None and p.tenant is not None
            role = "supplier" if parties[0] == p.tenant else "receiver"
            if not known:
                supplier, receiver = (p.tenant, None) if role == "supplier" else (None, p.tenant)
            if opportunity is not None:
                opportunity = ctx.pepper.reference(opportunity)
            if projection is not None and pr is not None:
                projection = _own_side(projection, pr, role, known)
        moves = None
        if history:
            moves = [
                MoveOut(
                    at=at(m.at_ms),
                    by=m.by,
                    from_stage=m.from_stage,
                    to_stage=m.to_stage,
                    note=m.note if known else "",
                )
                for m in ctx.exchanges.moves(e.id)
            ]
        return ExchangeOut.model_validate(
            {
                "id": self.shown_id(e),
                "park": e.park,
                "stage": pipe.stage.value,
                "stage_at": at(pipe.stage_ms),
                "owner": pipe.owner if known else "",
                "barrier": pipe.barrier.value if pipe.barrier else None,
                "legal_status": pipe.legal_status,
                "notes": pipe.notes if known else "",  # an operator's words may name anyone
                "reason": pipe.reason if known else None,
                "role": role,
                "supplier": supplier,
                "receiver": receiver,
                "resource": reg.resource if reg else None,
                "unit": reg.unit if reg else None,
                "opportunity": opportunity,
                "projection": projection,
                "moves": moves,
            }
        )


def _own_side(projection: ProjectionOut, pr: Projection, role: str, known: bool) -> ProjectionOut:
    """A party's own money only (the park's is both sides'); before it knows the other, to
    two significant figures and without the exchange's totals, as its opportunity shows it."""
    own = pr.supplier_vnd_per_year if role == "supplier" else pr.receiver_vnd_per_year
    shown: float = own if known else round_sig(float(own))
    return projection.model_copy(
        update={
            "park_vnd_per_year": None,
            "supplier_vnd_per_year": int(shown) if role == "supplier" else None,
            "receiver_vnd_per_year": int(shown) if role == "receiver" else None,
            "quantity_per_day": pr.quantity_per_day if known else round_sig(pr.quantity_per_day),
            "co2e_t_per_year": pr.co2e_t_per_year if known else None,
            "water_m3_per_year": pr.water_m3_per_year if known else None,
            "landfill_t_per_year": pr.landfill_t_per_year if known else None,
        }
    )


def _find(ctx: ContextDep, p: Principal, exchange_id: str) -> tuple[_View, Entry]:
    """By its id, or (a tenant) by the reference it was shown."""
    candidates = []
    try:
        candidates = [ctx.exchanges.get(exchange_id)]
    except InputError:
        if not p.is_operator:
            candidates = ctx.exchanges.entries(p.park)
    view = _View(ctx, p, candidates)
    for e in view.entries:
        if view.visible(e) and exchange_id == (e.id if p.is_operator else view.shown_id(e)):
            return view, e
    raise not_found(f"exchange {exchange_id}")


@router.get("/exchanges", summary="exchanges and their pipeline stages")
def exchanges(
    ctx: ContextDep,
    principal: CurrentPrincipal,
    page: PageDep,
    park: Annotated[str | None, Query()] = None,
    stage: Annotated[list[Stage] | None, Query()] = None,
) -> Paged[ExchangeOut]:
    view = _View(ctx, principal, ctx.exchanges.entries(park, stage))
    items = [view.out(e) for e in view.entries if view.visible(e)]
    return Paged[ExchangeOut].model_validate(paged(items, page.limit, page.offset))


@router.get("/exchanges/{exchange_id}", summary="one exchange with its history of moves")
def exchange(exchange_id: str, ctx: ContextDep, principal: CurrentPrincipal) -> ExchangeOut:
    view, e = _find(ctx, principal, exchange_id)
    return view.out(e, history=True)


@router.post("/exchanges", summary="enter an exchange (identified)", status_code=201)
def create(body: ExchangeIn, ctx: ContextDep, operator: CurrentOperator) -> ExchangeOut:
    if not can_see_park(operator, body.park) or body.park not in ctx.registry.parks:
        raise not_found(f"park {body.park}")
    projection, legal = None, "unknown"
    if body.opportunity is not None:
        projection, legal, park = from_opportunity(ctx.results, body.opportunity)
        if park != body.park:
            raise ApiProblem(400, f"opportunity {body.opportunity} is not of park {body.park}")
    e = ctx.exchanges.create(
        body.id,
        body.park,
        body.owner,
        operator.actor,
        opportunity_id=body.opportunity,
        projection=projection,
        legal_status=body.legal_status or legal,
        barrier=body.barrier,
        notes=body.notes,
    )
    return _View(ctx, operator, [e]).out(e, history=True)


@router.post("/exchanges/{exchange_id}/move", summary="move an exchange to another stage")
def move(exchange_id: str, body: MoveIn, ctx: ContextDep, operator: CurrentOperator) -> ExchangeOut:
    _find(ctx, operator, exchange_id)
    e = ctx.exchanges.move(exchange_id, body.to, operator.actor, body.note)
    return _View(ctx, operator, [e]).out(e, history=True)


@router.post(
    "/exchanges/{exchange_id}/register",
    summary="register what the parties agreed to meter (before it operates)",
)
def register(
    exchange_id: str, body: RegistrationIn, ctx: ContextDep, operator: CurrentOperator
) -> ExchangeOut:
    _, e = _find(ctx, operator, exchange_id)
    o = latest_opportunity(ctx.results, e.opportunity_id) if e.opportunity_id else {}
    fields = {
        "supplier": body.supplier or o.get("from_tenant"),
        "receiver": body.receiver or o.get("to_tenant"),
        "resource": body.resource or o.get("supply_resource"),
        "unit": body.unit or o.get("supply_unit"),
        "from_meter": body.from_meter or o.get("from_meter"),
        "to_meter": body.to_meter or o.get("to_meter"),
    }
    missing = [k for k, v in fields.items() if not v]
    if missing:
        raise ApiProblem(400, f"name {', '.join(missing)} (no opportunity to take them from)")
    try:
        metering = Metering(
            body.method,
            body.meter or str(fields["from_meter"]),
            share=body.share,
            baseline_per_hour=body.baseline_per_hour,
            check_meter=body.check_meter,
            check_side=body.check_side,
            tolerance=body.tolerance,
        )
    except ValueError as exc:
        raise ApiProblem(400, str(exc)) from None
    registration = Registration(
        str(fields["supplier"]),
        str(fields["receiver"]),
        str(fields["resource"]),
        str(fields["unit"]),
        body.benefit,
        str(fields["from_meter"]),
        str(fields["to_meter"]),
        metering,
        body.start,
        body.end,
    )
    park = ctx.registry.parks.get(e.park)
    tenants = {t.id for t in park.tenants} if park else set()
    if not {registration.supplier, registration.receiver} <= tenants:
        raise ApiProblem(400, f"supplier and receiver are tenants of park {e.park}")
    e = ctx.exchanges.register(exchange_id, registration)
    return _View(ctx, operator, [e]).out(e, history=True)


@router.post(
    "/exchanges/{exchange_id}/prices",
    summary="a dated price of an exchange (applies from its day on, never backwards)",
    status_code=201,
)
def add_price(
    exchange_id: str, body: PriceIn, ctx: ContextDep, operator: CurrentOperator
) -> ExchangeOut:
    _, e = _find(ctx, operator, exchange_id)
    price = Price(
        body.item,
        body.effective,
        body.vnd_per_unit,
        body.paid_by,
        tuple(body.hours),
        body.source,
    )
    ctx.exchanges.add_price(exchange_id, price, operator.actor)
    return _View(ctx, operator, [e]).out(ctx.exchanges.get(exchange_id), history=True)


@router.get(
    "/savings",
    summary="realised savings per exchange and month, the park's per month, and the totals",
    response_model=Paged[SavingsOut],
)
def savings(
    ctx: ContextDep,
    principal: CurrentPrincipal,
    page: PageDep,
    park: Annotated[str | None, Query()] = None,
    exchange: Annotated[str | None, Query()] = None,
    since: Annotated[date | None, Query(description="first day (inclusive)")] = None,
    until: Annotated[date | None, Query(description="last day (exclusive)")] = None,
) -> Response:
    if since is not None and until is not None and until <= since:
        raise ApiProblem(400, "until is after since")
    key = ("savings", principal, park, exchange, since, until, page.limit, page.offset)

    def inputs() -> tuple[object, ...]:
        # what the answer is made of: the exchanges, the verified days of those the caller
        # may see (a tenant: those it is a party to, and those not registered yet, whose
        # parties are the latest run's opportunity's), that run
        rows = exchange_rows(ctx.db, park, None if principal.is_operator else principal.tenant)
        ids = None if principal.is_operator else [r[2] for r in rows]
        run = ctx.results.latest_run() if any(r[0] is None for r in rows) else None
        view = ctx.results.view_key(run) if run is not None else None
        return (view, rows, savings_rows(ctx.db, ids, park, since, until))

    return ctx.answers.body(
        key, inputs, lambda: _savings_page(ctx, principal, page, park, exchange, since, until)
    )


def _savings_page(
    ctx: ContextDep,
    principal: Principal,
    page: Page,
    park: str | None,
    exchange: str | None,
    since: date | None,
    until: date | None,
) -> Paged[SavingsOut]:
    view = _View(ctx, principal, ctx.exchanges.entries(park))
    entries = {e.id: e for e in view.entries if view.visible(e) and exchange in (None, e.id)}
    # an operator's whole park at once; a tenant's own exchanges by id
    ids = None if principal.is_operator and exchange is None else entries.keys()
    days = [
        d
        for d in ctx.exchanges.savings(park=park, start=since, end=until, exchange_ids=ids)
        if d.exchange in entries
    ]
    by_exchange: dict[str, list[Any]] = {}
    for d in days:
        by_exchange.setdefault(d.exchange, []).append(d)
    rows: list[dict[str, Any]] = []
    for ex, ds in sorted(by_exchange.items()):
        projection = entries[ex].pipeline.projection
        periods = [*monthly(ds, projection), cumulative_of(ex, ds, projection)]
        role = None
        if not principal.is_operator:
            parties = view.parties[ex]
            assert parties is not None
            role = "supplier" if parties[0] == principal.tenant else "receiver"
        rows += [_savings(s, role) for s in periods]
    if principal.is_operator and exchange is None and days:
        months: dict[str, list[Any]] = {}
        for d in days:
            months.setdefault(f"{d.day:%Y-%m}", []).append(d)
        rows += [_savings(park_total(m, ds), None) for m, ds in sorted(months.items())]
        rows.append(_savings(park_total("total", days), None))
    return Paged[SavingsOut].model_validate(paged(rows, page.limit, page.offset))


def _savings(s: Any, role: str | None) -> dict[str, Any]:
    out = {
        "exchange": "park" if s.exchange == PARK else s.exchange,
        "period": s.period,
        "days": s.days,
        "coverage": s.coverage,
        "gap_days": s.days_with_gaps,
        "quantity": s.quantity,
        "supplier_vnd": s.supplier_vnd,
        "receiver_vnd": s.receiver_vnd,
        "park_vnd": s.park_vnd,
        "water_m3": s.water_m3,
        "co2e_t": s.co2e_t,
        "landfill_t": s.landfill_t,
        "disagreeing_days": s.disagreeing_days,
        "realised_share": s.realised_share,
    }
    if role is not None:  # a party's own side: the other's money and the park's are not its
        out["park_vnd"] = None
        out["receiver_vnd" if role == "supplier" else "supplier_vnd"] = None
    return out
