"""``/healthz`` (the process answers), ``/readyz`` (the store and the database answer) and
Prometheus ``/metrics``, unauthenticated as the ingestor's are: they name no tenant's data."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from parkflow.errors import StoreError
from service.api.deps import ContextDep

router = APIRouter(tags=["status"])


@router.get("/healthz", summary="the process answers")
def healthz() -> dict[str, bool]:
    return {"alive": True}


@router.get(
    "/readyz",
    summary="the store and the operational database answer",
    responses={503: {"description": "not ready: which part failed"}},
)
def readyz(ctx: ContextDep) -> JSONResponse:
    state: dict[str, object] = {}
    try:
        ctx.store.ping()
        state["store"] = "ok"
    except StoreError as exc:
        state["store"] = str(exc)
    try:
        with ctx.db.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        state["database"] = "ok"
    except StoreError as exc:
        state["database"] = str(exc)
    ready = state["store"] == "ok" and state["database"] == "ok"
    state["ready"] = ready
    return JSONResponse(state, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(ctx: ContextDep) -> Response:
    return Response(generate_latest(ctx.metrics), media_type=CONTENT_TYPE_LATEST)
