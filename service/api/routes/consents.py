"""Consent to be introduced, per opportunity and party (``ConsentRepository``): an operator
records either party's; a tenant gives or withdraws its own, naming the opportunity by the
reference its alerts and pages show. Until both parties' consents stand, neither sees the
other (``service.api.views``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from parkflow.errors import InputError
from service.alerts.consents import Consent
from service.api.deps import ContextDep, CurrentPrincipal, PageDep
from service.api.models import ConsentIn, ConsentOut, Paged, at, paged
from service.api.problems import RESPONSES, ApiProblem, not_found
from service.auth import Principal
from service.auth.access import can_see

router = APIRouter(prefix="/v1", tags=["consents"], responses=RESPONSES)


def _opportunity(ctx: ContextDep, p: Principal, ref: str) -> dict[str, Any]:
    """The latest run's opportunity ``ref`` names (its id for operators, its reference for
    anyone), if the caller may see it: a tenant only one it is a party to."""
    run = ctx.results.latest_run()
    if run is None:
        raise ApiProblem(404, "no detection run yet")
    scope = None if p.is_operator else p.tenant
    for o in ctx.results.opportunities(run.id, tenant=scope):
        if not can_see(p, o["park"], (o["from_tenant"], o["to_tenant"])):
            continue
        if ref == ctx.pepper.reference(o["id"]) or (p.is_operator and ref == o["id"]):
            return o
    raise not_found(f"opportunity {ref}")


def _party(p: Principal, o: dict[str, Any], tenant: str | None) -> str:
    parties = (o["from_tenant"], o["to_tenant"])
    if not p.is_operator:
        if tenant not in (None, p.tenant):
            raise ApiProblem(403, "a tenant gives or withdraws its own consent only")
        assert p.tenant is not None
        return p.tenant
    if tenant not in parties:
        raise ApiProblem(400, "tenant: one of the opportunity's two parties")
    assert tenant is not None
    return tenant


def _out(ctx: ContextDep, p: Principal, c: Consent, introduced: bool) -> ConsentOut:
    return ConsentOut(
        opportunity=c.opportunity_id if p.is_operator else ctx.pepper.reference(c.opportunity_id),
        ref=ctx.pepper.reference(c.opportunity_id),
        park=c.park,
        tenant=c.tenant,
        given_at=at(c.given_ms),
        given_by=c.given_by,
        withdrawn_at=at(c.withdrawn_ms),
        withdrawn_by=c.withdrawn_by,
        note=c.note,
        introduced=introduced,
    )


@router.get("/consents", summary="consents recorded: a park's (operators), a tenant's own")
def consents(
    ctx: ContextDep,
    principal: CurrentPrincipal,
    page: PageDep,
    opportunity: Annotated[
        str | None, Query(description="an opportunity's id (operators) or reference")
    ] = None,
) -> Paged[ConsentOut]:
    wanted = None
    if opportunity is not None:
        wanted = _opportunity(ctx, principal, opportunity)["id"]
    run = ctx.results.latest_run()
    parties: dict[str, tuple[str, str]] = {}
    if run is not None:
        parties = {
            o["id"]: (o["from_tenant"], o["to_tenant"]) for o in ctx.results.opportunities(run.id)
        }
    # a tenant's own consents; an operator its park's
    rows = [c for c in ctx.consent_records.of(wanted) if can_see(principal, c.park, (c.tenant,))]
    asked = {
        c.opportunity_id: parties[c.opportunity_id] for c in rows if c.opportunity_id in parties
    }
    introduced = ctx.introduced_among(asked) if asked else set()
    # an opportunity gone from the latest run: its parties unknown here, so not introduced
    items = [_out(ctx, principal, c, c.opportunity_id in introduced) for c in rows]
    return Paged[ConsentOut].model_validate(paged(items, page.limit, page.offset))


@router.post(
    "/consents",
    summary="record a party's consent to be introduced for an opportunity",
    status_code=201,
)
def give(body: ConsentIn, ctx: ContextDep, principal: CurrentPrincipal) -> ConsentOut:
    o = _opportunity(ctx, principal, body.opportunity)
    tenant = _party(principal, o, body.tenant)
    c = ctx.consent_records.give(o["park"], o["id"], tenant, principal.actor, body.note)
    return _out(ctx, principal, c, ctx.introduced(o["id"], (o["from_tenant"], o["to_tenant"])))


@router.post(
    "/consents/withdraw",
    summary="withdraw a party's consent: the names are hidden again",
)
def withdraw(body: ConsentIn, ctx: ContextDep, principal: CurrentPrincipal) -> ConsentOut:
    o = _opportunity(ctx, principal, body.opportunity)
    tenant = _party(principal, o, body.tenant)
    try:
        c = ctx.consent_records.withdraw(o["id"], tenant, principal.actor)
    except InputError:  # its message names the opportunity's id, which names the meters
        raise ApiProblem(
            400, f"no standing consent of {tenant} for opportunity {body.opportunity}"
        ) from None
    return _out(ctx, principal, c, ctx.introduced(o["id"], (o["from_tenant"], o["to_tenant"])))
