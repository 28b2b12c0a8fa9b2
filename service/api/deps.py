"""The dependencies routes declare, as ``Annotated`` types: the context's parts and who is
asking. A route that names ``CurrentPrincipal`` cannot run unauthenticated; a route that names
``CurrentOperator`` cannot run for a tenant; which objects a principal sees is decided per
object by ``service.auth.access``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from parkflow.registry import Registry
from parkflow.store import Store
from service.api.context import ApiContext
from service.api.problems import ApiProblem
from service.auth import Principal
from service.results import ResultsDb
from service.state import Database

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="an API key (`parkflow keys create`), as `Authorization: Bearer pfk_...`",
)


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


ContextDep = Annotated[ApiContext, Depends(get_context)]


def get_store(ctx: ContextDep) -> Store:
    return ctx.store


def get_session(ctx: ContextDep) -> Database:
    return ctx.db


def get_results(ctx: ContextDep) -> ResultsDb:
    return ctx.results


def get_registry(ctx: ContextDep) -> Registry:
    return ctx.registry


StoreDep = Annotated[Store, Depends(get_store)]
SessionDep = Annotated[Database, Depends(get_session)]
ResultsDep = Annotated[ResultsDb, Depends(get_results)]
RegistryDep = Annotated[Registry, Depends(get_registry)]


def _unauthenticated(detail: str) -> ApiProblem:
    return ApiProblem(401, detail, {"WWW-Authenticate": 'Bearer realm="parkflow"'})


def get_principal(
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthenticated("an API key is required (Authorization: Bearer ...)")
    principal = ctx.keys.authenticate(credentials.credentials)
    if principal is None:  # unknown, malformed and revoked alike
        raise _unauthenticated("the API key is not valid")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def get_operator(principal: CurrentPrincipal) -> Principal:
    if not principal.is_operator:
        raise ApiProblem(403, "operators only")
    return principal


def get_tenant(principal: CurrentPrincipal) -> Principal:
    """A tenant's own views (``/v1/me``): operators have no tenant of their own."""
    if principal.is_operator or principal.tenant is None:
        raise ApiProblem(403, "a tenant key is required")
    return principal


CurrentOperator = Annotated[Principal, Depends(get_operator)]
CurrentTenant = Annotated[Principal, Depends(get_tenant)]


class Page:
    """``limit``/``offset`` of a list route, bounded by the settings' largest page."""

    def __init__(
        self,
        ctx: ContextDep,
        limit: Annotated[int, Query(ge=1, le=10_000, description="items per page")] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000, description="items to skip")] = 0,
    ) -> None:
        self.limit = min(limit, ctx.settings.api_max_page)
        self.offset = offset


PageDep = Annotated[Page, Depends()]
