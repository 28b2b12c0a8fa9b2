"""The dependencies routes declare, as ``Annotated`` types: the context's parts and who is
asking. A route that names ``CurrentPrincipal`` cannot run unauthenticated; a route that names
``CurrentOperator`` cannot run for a tenant; which objects a principal sees is decided per
object by ``service.auth.access``.

The dependencies are ``async``: FastAPI runs a plain ``def`` dependency in a worker thread, and
each such hop (a queue, a wake-up, the GIL handed over and back) cost more CPU than these
lookups themselves. Only a key not yet known to the process reads the database, and that
read goes to a thread, so the event loop never waits on the database."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

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


async def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


ContextDep = Annotated[ApiContext, Depends(get_context)]


async def get_store(ctx: ContextDep) -> Store:
    return ctx.store


async def get_session(ctx: ContextDep) -> Database:
    return ctx.db


async def get_results(ctx: ContextDep) -> ResultsDb:
    return ctx.results


async def get_registry(ctx: ContextDep) -> Registry:
    return ctx.registry


StoreDep = Annotated[Store, Depends(get_store)]
SessionDep = Annotated[Database, Depends(get_session)]
ResultsDep = Annotated[ResultsDb, Depends(get_results)]
RegistryDep = Annotated[Registry, Depends(get_registry)]


def _unauthenticated(detail: str) -> ApiProblem:
    return ApiProblem(401, detail, {"WWW-Authenticate": 'Bearer realm="parkflow"'})


async def get_principal(
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthenticated("an API key is required (Authorization: Bearer ...)")
    secret = credentials.credentials
    known, principal = ctx.keys.cached(secret)
    if not known:
        principal = await run_in_threadpool(ctx.keys.authenticate, secret)
    if principal is None:  # unknown, malformed and revoked alike
        raise _unauthenticated("the API key is not valid")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_operator(principal: CurrentPrincipal) -> Principal:
    if not principal.is_operator:
        raise ApiProblem(403, "operators only")
    return principal


async def get_tenant(principal: CurrentPrincipal) -> Principal:
    """A tenant's own views (``/v1/me``): operators have no tenant of their own."""
    if principal.is_operator or principal.tenant is None:
        raise ApiProblem(403, "a tenant key is required")
    return principal


CurrentOperator = Annotated[Principal, Depends(get_operator)]
CurrentTenant = Annotated[Principal, Depends(get_tenant)]


class Page:
    """``limit``/``offset`` of a list route, bounded by the settings' largest page."""

    def __init__(self, limit: int, offset: int) -> None:
        self.limit = limit
        self.offset = offset


async def get_page(
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=10_000, description="items per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="items to skip")] = 0,
) -> Page:
    return Page(min(limit, ctx.settings.api_max_page), offset)


PageDep = Annotated[Page, Depends(get_page)]
