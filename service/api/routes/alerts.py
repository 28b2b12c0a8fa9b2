"""Alerts (``AlertRepository``): a tenant lists and acknowledges its own, an operator its
park's, resolves one by hand and silences. Resolving is otherwise the lifecycle's (a condition
cleared ``resolve_after`` times in a row)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from parkflow.timeunits import now_ms
from service.alerts.lifecycle import Alert, Status
from service.api.deps import ContextDep, CurrentOperator, CurrentPrincipal, PageDep
from service.api.models import (
    AcknowledgeIn,
    AlertOut,
    Paged,
    SilenceIn,
    SilenceOut,
    at,
    ms,
    paged,
)
from service.api.problems import RESPONSES, ApiProblem, not_found
from service.api.stored import alert_rows
from service.api.views import alert_view
from service.auth import Principal
from service.auth.access import can_see

router = APIRouter(prefix="/v1", tags=["alerts"], responses=RESPONSES)

ALL = (Status.OPEN, Status.ACKNOWLEDGED, Status.RESOLVED)


def _visible(p: Principal, a: Alert) -> bool:
    return can_see(p, a.park, (a.tenant,))


def _out(ctx: ContextDep, p: Principal, a: Alert) -> AlertOut:
    v: dict[str, Any] = alert_view(a, not p.is_operator, ctx.pepper.reference)
    return AlertOut(
        id=v["id"],
        kind=v["kind"],
        subject=v["subject"],
        park=v["park"],
        tenant=v["tenant"],
        severity=v["severity"],
        status=v["status"],
        summary=v["summary"],
        opened_at=at(v["opened_ms"]),
        acknowledged_at=at(v["acknowledged_ms"]),
        acknowledged_by=v["acknowledged_by"],
        resolved_at=at(v["resolved_ms"]),
        evaluated_at=at(v["evaluated_ms"]),
    )


def _scope(p: Principal) -> dict[str, str | None]:
    """What the database filters before the per-object check: a tenant's own, a park's."""
    return {"park": p.park, "tenant": None if p.is_operator else p.tenant}


def _find(ctx: ContextDep, p: Principal, alert_id: str) -> Alert:
    a = ctx.alerts.alert(alert_id)
    if a is None or not _visible(p, a):
        raise not_found(f"alert {alert_id}")
    return a


@router.get(
    "/alerts", summary="alerts the caller may see, oldest first", response_model=Paged[AlertOut]
)
def alerts(
    ctx: ContextDep,
    principal: CurrentPrincipal,
    page: PageDep,
    status: Annotated[
        list[Status] | None, Query(description="default open and acknowledged")
    ] = None,
    kind: Annotated[str | None, Query(examples=["meter_stale"])] = None,
    park: Annotated[str | None, Query()] = None,
    tenant: Annotated[str | None, Query()] = None,
) -> Response:
    wanted = status or [Status.OPEN, Status.ACKNOWLEDGED]
    scope = _scope(principal)

    def make() -> Paged[AlertOut]:
        items = [
            _out(ctx, principal, a)
            for a in ctx.alerts.alerts(wanted, **scope)
            if _visible(principal, a)
            and kind in (None, a.kind)
            and park in (None, a.park)
            and tenant in (None, a.tenant)
        ]
        return Paged[AlertOut].model_validate(paged(items, page.limit, page.offset))

    # what the answer is made of: the shown columns of the alerts in scope (service.api.answers)
    key = ("alerts", principal, tuple(sorted(wanted)), kind, park, tenant, page.limit, page.offset)
    statuses = {s.value for s in wanted}
    return ctx.answers.body(
        key, lambda: alert_rows(ctx.db, statuses, scope["park"], scope["tenant"]), make
    )


@router.get("/alerts/{alert_id}", summary="one alert")
def alert(alert_id: str, ctx: ContextDep, principal: CurrentPrincipal) -> AlertOut:
    return _out(ctx, principal, _find(ctx, principal, alert_id))


@router.post("/alerts/{alert_id}/acknowledge", summary="take an open alert in hand")
def acknowledge(
    alert_id: str, body: AcknowledgeIn, ctx: ContextDep, principal: CurrentPrincipal
) -> AlertOut:
    _find(ctx, principal, alert_id)
    return _out(ctx, principal, ctx.alerts.acknowledge(alert_id, principal.actor, body.reason))


@router.post(
    "/alerts/{alert_id}/resolve",
    summary="close a firing alert by hand (operators): its recipients are told, as of any resolve",
)
def resolve(
    alert_id: str, body: AcknowledgeIn, ctx: ContextDep, operator: CurrentOperator
) -> AlertOut:
    _find(ctx, operator, alert_id)
    return _out(ctx, operator, ctx.alerts.resolve(alert_id, operator.actor, body.reason))


@router.post("/silences", summary="mute a kind, a subject or both until a time", status_code=201)
def silence(body: SilenceIn, ctx: ContextDep, operator: CurrentOperator) -> SilenceOut:
    # A park's operator silences its park's alerts only: a subject of one of them.
    if operator.park is not None and not (
        body.subject is not None
        and any(
            a.subject == body.subject and a.park == operator.park for a in ctx.alerts.alerts(ALL)
        )
    ):
        raise ApiProblem(403, "a park's operator silences a subject of its own park's alerts")
    sid = ctx.alerts.silence(
        kind=body.kind,
        subject=body.subject,
        until_ms=ms(body.until),
        by=operator.actor,
        reason=body.reason,
        now_ms=now_ms(),
    )
    return SilenceOut(id=sid)
