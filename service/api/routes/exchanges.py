"""Exchanges from idea to verified savings (``ExchangeRepository``): operators list, enter and
move them; a tenant sees the exchanges it is a party to, its counterpart named once the
parties agreed (or both consented to be introduced), and of the savings its own side."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query

from parkflow.errors import InputError
from service.api.deps import ContextDep, CurrentOperator, CurrentPrincipal, PageDep
from service.api.models import (
    ExchangeIn,
    ExchangeOut,
    MoveIn,
    MoveOut,
    Paged,
    ProjectionOut,
    SavingsOut,
    at,
    paged,
)
from service.api.problems import RESPONSES, ApiProblem, not_found
from service.auth import Principal
from service.auth.access import can_see, can_see_park
from service.exchanges.intake import from_opportunity
from service.exchanges.pipeline import NEEDS_PARTIES, Barrier, Stage
from service.exchanges.repository import Entry
from service.exchanges.savings import PARK, monthly, park_total
from service.exchanges.savings import cumulative as cumulative_of

router = APIRouter(prefix="/v1", tags=["exchanges"], responses=RESPONSES)

# from these stages on the parties have agreed with each other: each knows the other
_AGREED = NEEDS_PARTIES | {Stage.ENDED}


def _parties(ctx: ContextDep, e: Entry) -> tuple[str, str] | None:
    if e.registration is not None:
        return e.registration.supplier, e.registration.receiver
    if e.opportunity_id is not None:
        run = ctx.results.latest_run()
        for o in ctx.results.opportunities(run.id) if run else []:
            if o["id"] == e.opportunity_id:
                return o["from_tenant"], o["to_tenant"]
    return None


def _visible(ctx: ContextDep, p: Principal, e: Entry) -> bool:
    if p.is_operator:
        return can_see_park(p, e.park)
    parties = _parties(ctx, e)
    return parties is not None and can_see(p, e.park, parties)


def _known(ctx: ContextDep, e: Entry, parties: tuple[str, str]) -> bool:
    """Whether a party may see the other: they agreed, or both consented to be introduced."""
    if e.pipeline.stage in _AGREED:
        return True
    return e.opportunity_id is not None and ctx.introduced(e.opportunity_id, parties)


def _out(ctx: ContextDep, p: Principal, e: Entry, history: bool = False) -> ExchangeOut:
    pipe, reg = e.pipeline, e.registration
    parties = _parties(ctx, e)
    role: str | None = None
    supplier, receiver = parties if parties else (None, None)
    opportunity = e.opportunity_id
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
        if not _known(ctx, e, parties):
            supplier, receiver = (p.tenant, None) if role == "supplier" else (None, p.tenant)
        if opportunity is not None:
            opportunity = ctx.pepper.reference(opportunity)
        if projection is not None and pr is not None:  # its own side's money only
            own = {"supplier": pr.supplier_vnd_per_year, "receiver": pr.receiver_vnd_per_year}
            projection = projection.model_copy(
                update={
                    "park_vnd_per_year": None,  # both sides': it would give the other's away
                    "supplier_vnd_per_year": own["supplier"] if role == "supplier" else None,
                    "receiver_vnd_per_year": own["receiver"] if role == "receiver" else None,
                }
            )
    moves = None
    if history:
        moves = [
            MoveOut(
                at=at(m.at_ms), by=m.by, from_stage=m.from_stage, to_stage=m.to_stage, note=m.note
            )
            for m in ctx.exchanges.moves(e.id)
        ]
    return ExchangeOut.model_validate(
        {
            "id": e.id,
            "park": e.park,
            "stage": pipe.stage.value,
            "stage_at": at(pipe.stage_ms),
            "owner": pipe.owner,
            "barrier": pipe.barrier.value if pipe.barrier else None,
            "legal_status": pipe.legal_status,
            "notes": pipe.notes,
            "reason": pipe.reason,
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


def _find(ctx: ContextDep, p: Principal, exchange_id: str) -> Entry:
    try:
        e = ctx.exchanges.get(exchange_id)
    except InputError:
        raise not_found(f"exchange {exchange_id}") from None
    if not _visible(ctx, p, e):
        raise not_found(f"exchange {exchange_id}")
    return e


@router.get("/exchanges", summary="exchanges and their pipeline stages")
def exchanges(
    ctx: ContextDep,
    principal: CurrentPrincipal,
    page: PageDep,
    park: Annotated[str | None, Query()] = None,
    stage: Annotated[list[Stage] | None, Query()] = None,
) -> Paged[ExchangeOut]:
    items = [
        _out(ctx, principal, e)
        for e in ctx.exchanges.entries(park, stage)
        if _visible(ctx, principal, e)
    ]
    return Paged[ExchangeOut].model_validate(paged(items, page.limit, page.offset))


@router.get("/exchanges/{exchange_id}", summary="one exchange with its history of moves")
def exchange(exchange_id: str, ctx: ContextDep, principal: CurrentPrincipal) -> ExchangeOut:
    return _out(ctx, principal, _find(ctx, principal, exchange_id), history=True)


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
        barrier=Barrier(body.barrier) if body.barrier else None,
        notes=body.notes,
    )
    return _out(ctx, operator, e, history=True)


@router.post("/exchanges/{exchange_id}/move", summary="move an exchange to another stage")
def move(exchange_id: str, body: MoveIn, ctx: ContextDep, operator: CurrentOperator) -> ExchangeOut:
    _find(ctx, operator, exchange_id)
    e = ctx.exchanges.move(exchange_id, Stage(body.to), operator.actor, body.note)
    return _out(ctx, operator, e, history=True)


@router.get(
    "/savings",
    summary="realised savings per exchange and month, the park's per month, and the totals",
)
def savings(
    ctx: ContextDep,
    principal: CurrentPrincipal,
    page: PageDep,
    park: Annotated[str | None, Query()] = None,
    exchange: Annotated[str | None, Query()] = None,
    since: Annotated[date | None, Query(description="first day (inclusive)")] = None,
    until: Annotated[date | None, Query(description="last day (exclusive)")] = None,
) -> Paged[SavingsOut]:
    if since is not None and until is not None and until <= since:
        raise ApiProblem(400, "until is after since")
    entries = {
        e.id: e
        for e in ctx.exchanges.entries(park)
        if _visible(ctx, principal, e) and exchange in (None, e.id)
    }
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
            parties = _parties(ctx, entries[ex])
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
