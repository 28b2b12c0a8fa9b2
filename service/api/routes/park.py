"""Who is asking, the parks, their tenants: from the registry, each filtered by the caller's
scope."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.api.deps import CurrentPrincipal, PageDep, RegistryDep
from service.api.models import Me, Paged, ParkOut, TenantOut, paged
from service.api.problems import RESPONSES, not_found
from service.auth.access import can_see_park, can_see_tenant

router = APIRouter(prefix="/v1", tags=["park"], responses=RESPONSES)


@router.get("/me", summary="the caller's key: role and scope")
def me(principal: CurrentPrincipal) -> Me:
    p = principal
    return Me(key_id=p.key_id, name=p.name, role=p.role, park=p.park, tenant=p.tenant)


def _park(park: Any) -> ParkOut:
    return ParkOut(
        id=park.id,
        name=park.name,
        timezone=park.timezone,
        province=park.province,
        tenants=len(park.tenants),
    )


@router.get("/parks", summary="the parks the caller may see")
def parks(principal: CurrentPrincipal, registry: RegistryDep, page: PageDep) -> Paged[ParkOut]:
    items = [_park(p) for p in registry.parks.values() if can_see_park(principal, p.id)]
    return Paged[ParkOut].model_validate(paged(items, page.limit, page.offset))


@router.get("/parks/{park}", summary="one park")
def park(park: str, principal: CurrentPrincipal, registry: RegistryDep) -> ParkOut:
    found = registry.parks.get(park)
    if found is None or not can_see_park(principal, park):
        raise not_found(f"park {park}")
    return _park(found)


@router.get("/tenants", summary="the tenants the caller may see (a tenant: itself)")
def tenants(
    principal: CurrentPrincipal,
    registry: RegistryDep,
    page: PageDep,
    park: Annotated[str | None, Query(description="only this park's")] = None,
) -> Paged[TenantOut]:
    items = [
        TenantOut(park=p.id, id=t.id, name=t.name, sector=t.sector, meters=len(t.meters))
        for p in registry.parks.values()
        if park in (None, p.id)
        for t in p.tenants
        if can_see_tenant(principal, p.id, t.id)
    ]
    return Paged[TenantOut].model_validate(paged(items, page.limit, page.offset))


@router.get("/tenants/{park}/{tenant}", summary="one tenant")
def tenant(park: str, tenant: str, principal: CurrentPrincipal, registry: RegistryDep) -> TenantOut:
    p = registry.parks.get(park)
    found = None if p is None else next((t for t in p.tenants if t.id == tenant), None)
    if found is None or not can_see_tenant(principal, park, tenant):
        raise not_found(f"tenant {park}/{tenant}")
    return TenantOut(
        park=park, id=found.id, name=found.name, sector=found.sector, meters=len(found.meters)
    )
