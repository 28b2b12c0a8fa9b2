"""The latest detection run's surpluses, ranked opportunities and the park's plan, as the CLI
shows them (``ResultsDb``): whole for operators; for a tenant only what it is a party to, the
other party anonymised until both consented (``service.api.views``)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from parkflow.tables import with_plan
from service.api.deps import ContextDep, CurrentPrincipal, PageDep
from service.api.models import Loose, PlanOut, Results, RunOut, at, paged
from service.api.problems import RESPONSES, ApiProblem, not_found
from service.api.views import tenant_opportunity, tenant_plan_link
from service.auth import Principal
from service.auth.access import can_see
from service.results import Run

router = APIRouter(prefix="/v1", tags=["results"], responses=RESPONSES)

Tenant = Annotated[str | None, Query(description="only what concerns this tenant (operators)")]
Park = Annotated[str | None, Query(description="only this park's")]


def _run(ctx: ContextDep) -> Run:
    run = ctx.results.latest_run()
    if run is None:
        raise ApiProblem(404, "no detection run yet")
    return run


def _run_out(run: Run) -> RunOut:
    return RunOut(id=run.id, finished_at=at(run.finished_ms), window_days=run.window_days)


def _visible_rows(
    ctx: ContextDep, p: Principal, run: Run, tenant: str | None, view: Hashable
) -> list[dict[str, Any]]:
    """The run's opportunities (with what the plan gives each) the caller may see, as
    stored: read once per run and scope (a finished run's rows never change)."""
    scope = p.tenant if not p.is_operator else tenant

    def read() -> list[dict[str, Any]]:
        return with_plan(
            ctx.results.opportunities(run.id, tenant=scope),
            ctx.results.plan_links(run.id, tenant=scope),
        )

    rows = ctx.answers.of_run(view, ("opportunities", scope), read)
    return [o for o in rows if can_see(p, o["park"], (o["from_tenant"], o["to_tenant"]))]


def _introduced(ctx: ContextDep, p: Principal, rows: list[dict[str, Any]]) -> set[str]:
    """Which of a tenant's opportunities introduce both parties (read fresh: consents)."""
    if p.is_operator:
        return set()
    return ctx.introduced_among({o["id"]: (o["from_tenant"], o["to_tenant"]) for o in rows})


def _opportunities(
    ctx: ContextDep,
    p: Principal,
    run: Run,
    tenant: str | None,
    seen: tuple[list[dict[str, Any]], set[str]] | None = None,
) -> list[dict[str, Any]]:
    """The run's opportunities the caller may see, each as the caller may see it (of the
    rows and introductions given, else read)."""
    rows, introduced = seen or _seen(ctx, p, run, tenant)
    if p.is_operator:  # with the reference a tenant quotes to its operator
        return [{**o, "ref": ctx.pepper.reference(o["id"])} for o in rows]
    assert p.tenant is not None
    return [
        tenant_opportunity(
            o, p.tenant, ctx.pepper.reference(o["id"]), ctx.names(o["park"]), o["id"] in introduced
        )
        for o in rows
    ]


def _seen(
    ctx: ContextDep, p: Principal, run: Run, tenant: str | None, view: Hashable | None = None
) -> tuple[list[dict[str, Any]], set[str]]:
    """The run's rows the caller may see and which are introduced; ``view``: the run's view
    key (``ResultsDb.view_key``) when the caller has it already."""
    view = ctx.results.view_key(run) if view is None else view
    rows = _visible_rows(ctx, p, run, tenant, view)
    return rows, _introduced(ctx, p, rows)


@router.get("/surpluses", summary="the latest run's surpluses, largest first")
def surpluses(
    ctx: ContextDep,
    principal: CurrentPrincipal,
    page: PageDep,
    park: Park = None,
    tenant: Tenant = None,
    resource: Annotated[str | None, Query()] = None,
) -> Results:
    run = _run(ctx)
    scope = principal.tenant if not principal.is_operator else tenant
    rows = [
        s
        for s in ctx.results.surpluses(run.id, tenant=scope)
        if can_see(principal, s["park"], (s["tenant"],))
        and park in (None, s["park"])
        and resource in (None, s.get("resource"))
    ]
    return Results.model_validate(
        {"run": _run_out(run), "page": paged(rows, page.limit, page.offset)}
    )


@router.get("/surpluses/{surplus_id}", summary="one surplus of the latest run")
def surplus(surplus_id: str, ctx: ContextDep, principal: CurrentPrincipal) -> Loose:
    run = _run(ctx)
    scope = None if principal.is_operator else principal.tenant
    for s in ctx.results.surpluses(run.id, tenant=scope):
        if s["id"] == surplus_id and can_see(principal, s["park"], (s["tenant"],)):
            return Loose.model_validate(s)
    raise not_found(f"surplus {surplus_id}")


@router.get(
    "/opportunities",
    summary="the latest run's ranked opportunities (alternatives: the plan says which run)",
    response_model=Results,
)
def opportunities(
    ctx: ContextDep,
    principal: CurrentPrincipal,
    page: PageDep,
    park: Park = None,
    tenant: Tenant = None,
    rule: Annotated[str | None, Query(examples=["effluent_a_reuse"])] = None,
    legal_status: Annotated[str | None, Query(examples=["allowed"])] = None,
) -> Response:
    # the answer is a function of the run (its rows read once), the caller, the query and
    # which parties are introduced: remembered while those are the same (service.api.answers)
    run = _run(ctx)
    view = ctx.results.view_key(run)
    seen = _seen(ctx, principal, run, tenant, view)

    def make() -> Results:
        rows = [
            o
            for o in _opportunities(ctx, principal, run, tenant, seen)
            if park in (None, o["park"])
            and rule in (None, o.get("rule"))
            and legal_status in (None, o.get("legal_status"))
        ]
        return Results.model_validate(
            {"run": _run_out(run), "page": paged(rows, page.limit, page.offset)}
        )

    key = ("opportunities", principal, park, tenant, rule, legal_status, page.limit, page.offset)
    inputs = (view, run.finished_ms, run.window_days, frozenset(seen[1]))
    return ctx.answers.body(key, lambda: inputs, make)


@router.get(
    "/opportunities/{ref}",
    summary="one opportunity: by its id (operators) or by its reference (tenants)",
)
def opportunity(ref: str, ctx: ContextDep, principal: CurrentPrincipal) -> Loose:
    run = _run(ctx)
    for o in _opportunities(ctx, principal, run, None):
        if ref in (o.get("id"), o.get("ref")):
            return Loose.model_validate(o)
    raise not_found(f"opportunity {ref}")


@router.get("/plan", summary="the park's plan: the exchanges it runs, and its totals")
def plan(ctx: ContextDep, principal: CurrentPrincipal, park: Park = None) -> PlanOut:
    run = _run(ctx)
    scope = None if principal.is_operator else principal.tenant
    rows = [
        link
        for link in ctx.results.plan_links(run.id, tenant=scope)
        if can_see(principal, link["park"], (link["from_tenant"], link["to_tenant"]))
        and park in (None, link["park"])
    ]
    links = rows
    if not principal.is_operator:
        assert principal.tenant is not None
        introduced = ctx.introduced_among(
            {link["opportunity_id"]: (link["from_tenant"], link["to_tenant"]) for link in rows}
        )
        links = [
            tenant_plan_link(
                link,
                principal.tenant,
                ctx.pepper.reference(link["opportunity_id"]),
                link["opportunity_id"] in introduced,
            )
            for link in rows
        ]
    # the totals are the whole park's (every park's, in a registry of several): operators'
    totals = ctx.results.plan(run.id) if principal.is_operator and principal.park is None else None
    return PlanOut.model_validate({"run": _run_out(run), "totals": totals, "links": links})
