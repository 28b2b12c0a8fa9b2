"""The FastAPI application: routers included, problems installed, requests counted. No route
lives here; ``parkflow serve`` runs it with uvicorn, tests with a TestClient."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import problems
from service.api.context import ApiContext
from service.api.routes import (
    alerts,
    consents,
    exchanges,
    keys,
    meters,
    park,
    quarantine,
    reports,
    results,
    status,
)
from service.web import routes as web

ROUTERS = (
    park.router,
    meters.router,
    results.router,
    alerts.router,
    consents.router,
    exchanges.router,
    quarantine.router,
    reports.router,
    keys.router,
    status.router,
)

DESCRIPTION = """\
Industrial symbiosis from metered data: the park's meters and readings, surpluses, ranked
exchange opportunities and the plan, alerts and quarantine. Every route but the status ones
takes an API key (`Authorization: Bearer pfk_...`); operators see their park, a tenant its own
data, another party of an exchange anonymised until both consented. Errors are RFC 9457
problem details. See docs/api.md.
"""


def create_app(ctx: ApiContext) -> FastAPI:
    # no Swagger UI or ReDoc: they load their scripts from a CDN, and the service works
    # offline; the OpenAPI document is at /openapi.json for any viewer
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Routes are sync (a slow store blocks a thread, never the loop and /healthz). Few
        # threads at once: with anyio's default of 40, CPU-bound requests fight over the GIL
        # and the slowest wait longest (p99 770 ms at 250 requests/s in bench/api.py).
        to_thread.current_default_thread_limiter().total_tokens = ctx.settings.api_threads
        yield

    app = FastAPI(
        title="parkflow",
        version="1",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.context = ctx
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(web.router)  # the pages (docs/pages.md): not part of the API document

    app.add_middleware(Counted, metrics=ctx.metrics)
    return app


class Counted:
    """Requests counted by route template and status, and timed: a plain ASGI middleware,
    not ``@app.middleware("http")``, whose per-request task, streams and events cost about
    as much CPU as a cached answer itself."""

    def __init__(self, app: ASGIApp, metrics: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "parkflow_api_requests",
            "API requests by route and status",
            ["route", "method", "status"],
            registry=metrics,
        )
        self.latency = Histogram(
            "parkflow_api_request_seconds", "API request time by route", ["route"], registry=metrics
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception past every handler

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", "unmatched")  # the template: no ids in label values
            self.requests.labels(name, scope["method"], str(status)).inc()
            self.latency.labels(name).observe(time.perf_counter() - started)


def app_from_settings() -> FastAPI:
    """uvicorn's factory for ``parkflow api``: each worker process opens its own context from
    the environment's settings (its own store client and database pool)."""
    from service.api.context import open_context
    from service.settings import ServiceSettings

    return create_app(open_context(ServiceSettings()))
