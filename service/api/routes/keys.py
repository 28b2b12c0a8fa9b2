"""API keys, for operators (``parkflow keys`` does the same from the command line): an
operator of one park makes and revokes keys of that park only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import ContextDep, CurrentOperator, PageDep
from service.api.models import KeyIn, KeyOut, NewKeyOut, Paged, at, paged
from service.api.problems import RESPONSES, ApiProblem, not_found
from service.auth import ApiKey, Principal

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=RESPONSES)


def _out(k: ApiKey) -> KeyOut:
    return KeyOut(
        id=k.id,
        name=k.name,
        role=k.role,
        park=k.park,
        tenant=k.tenant,
        created_at=at(k.created_ms),
        created_by=k.created_by,
        revoked_at=at(k.revoked_ms),
    )


def _mine(operator: Principal, k: ApiKey) -> bool:
    return operator.park is None or k.park == operator.park


@router.get("", summary="the keys (never the keys themselves)")
def keys(
    ctx: ContextDep,
    operator: CurrentOperator,
    page: PageDep,
    include_revoked: Annotated[bool, Query()] = False,
) -> Paged[KeyOut]:
    items = [_out(k) for k in ctx.keys.list(include_revoked=include_revoked) if _mine(operator, k)]
    return Paged[KeyOut].model_validate(paged(items, page.limit, page.offset))


@router.post("", summary="make a key: shown once in the answer", status_code=201)
def create(body: KeyIn, ctx: ContextDep, operator: CurrentOperator) -> NewKeyOut:
    if operator.park is not None and body.park != operator.park:
        raise ApiProblem(403, "a park's operator makes keys of its own park only")
    if body.park is not None and body.park not in ctx.registry.parks:
        raise ApiProblem(400, f"no park {body.park} in the registry")
    if body.tenant is not None and not ctx.registry.has_tenant(body.park or "", body.tenant):
        raise ApiProblem(400, f"no tenant {body.park}/{body.tenant} in the registry")
    made = ctx.keys.create(
        name=body.name, role=body.role, park=body.park, tenant=body.tenant, by=operator.actor
    )
    return NewKeyOut(**_out(made.key).model_dump(), key=made.secret)


@router.delete("/{key_id}", summary="revoke a key (at once, for every request after)")
def revoke(key_id: str, ctx: ContextDep, operator: CurrentOperator) -> KeyOut:
    k = ctx.keys.get(key_id)
    if k is None or not _mine(operator, k):
        raise not_found(f"API key {key_id}")
    return _out(ctx.keys.revoke(key_id))
