"""Meters, their period summary and their readings by bucket: the ``parkflow meters`` maths
(``service.meters``) over the store, for the meters the caller may see."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from parkflow.registry import ResolvedMeter
from parkflow.store.ports import MeterRange
from parkflow.timeunits import DAY_MS, HOUR_MS, now_ms
from service.api.answers import JSON
from service.api.deps import CurrentPrincipal, PageDep, RegistryDep, StoreDep
from service.api.models import (
    BucketOut,
    DayOut,
    DaysOut,
    MeterOut,
    MeterSummaryOut,
    Paged,
    ReadingsOut,
    at,
    ms,
    paged,
)
from service.api.problems import RESPONSES, ApiProblem, not_found
from service.auth import Principal
from service.auth.access import can_see_tenant
from service.meters import bucket_quantities, meter_summaries
from service.rollups.compute import MeterMaths, standard_offset_ms

router = APIRouter(prefix="/v1/meters", tags=["meters"], responses=RESPONSES)

BUCKETS = {"15m": HOUR_MS // 4, "1h": HOUR_MS, "1d": DAY_MS}
MAX_BUCKETS = 3000  # a month of 15 minutes, four months of hours, eight years of days
MAX_SPAN_MS = 366 * DAY_MS
Since = Annotated[
    datetime | None,
    Query(description="RFC 3339; default 24 h before `until`", examples=["2026-11-01T00:00:00Z"]),
]
Until = Annotated[datetime | None, Query(description="RFC 3339, excluded; default now")]


def _out(rm: ResolvedMeter) -> MeterOut:
    m = rm.meter
    return MeterOut(
        park=rm.park.id,
        tenant=rm.tenant.id,
        id=m.id,
        resource=m.resource,
        direction=str(m.direction),
        kind=str(m.kind),
        unit=m.canonical_unit,
    )


def _meter(
    registry: RegistryDep, p: Principal, park: str, tenant: str, meter: str
) -> ResolvedMeter:
    rm = registry.meter(park, tenant, meter)
    if rm is None or not can_see_tenant(p, park, tenant):
        raise not_found(f"meter {park}/{tenant}/{meter}")
    return rm


def _window(since: datetime | None, until: datetime | None, default_ms: int) -> tuple[int, int]:
    end = now_ms() if until is None else ms(until)
    start = end - default_ms if since is None else ms(since)
    if start >= end:
        raise ApiProblem(400, "`since` must be before `until`")
    if end - start > MAX_SPAN_MS:
        raise ApiProblem(400, "at most 366 days per request")
    return start, end


@router.get("", summary="the meters the caller may see")
def meters(
    principal: CurrentPrincipal,
    registry: RegistryDep,
    page: PageDep,
    park: Annotated[str | None, Query()] = None,
    tenant: Annotated[str | None, Query()] = None,
    resource: Annotated[str | None, Query(examples=["water.potable"])] = None,
) -> Paged[MeterOut]:
    items = [
        _out(rm)
        for rm in registry.meters()
        if park in (None, rm.park.id)
        and tenant in (None, rm.tenant.id)
        and resource in (None, rm.meter.resource)
        and can_see_tenant(principal, rm.park.id, rm.tenant.id)
    ]
    return Paged[MeterOut].model_validate(paged(items, page.limit, page.offset))


@router.get("/{park}/{tenant}/{meter}", summary="one meter: its last reading and period total")
def meter(
    park: str,
    tenant: str,
    meter: str,
    principal: CurrentPrincipal,
    registry: RegistryDep,
    store: StoreDep,
    since: Since = None,
    until: Until = None,
) -> MeterSummaryOut:
    rm = _meter(registry, principal, park, tenant, meter)
    start, end = _window(since, until, DAY_MS)
    s = meter_summaries(store, [rm], start, end)[0]
    return MeterSummaryOut(
        **_out(rm).model_dump(),
        since=at(start),
        until=at(end),
        last_at=at(s.last_ms),
        last_value=s.last_value,
        readings=s.readings,
        total=s.total,
        total_unit=s.total_unit,
        total_basis=s.total_basis,
        stale=s.stale,
        stale_after_s=s.stale_after_s,
    )


@router.get(
    "/{park}/{tenant}/{meter}/readings",
    summary="a meter's quantities by bucket over a period (at most 3000 buckets, 366 days)",
)
def readings(
    park: str,
    tenant: str,
    meter: str,
    principal: CurrentPrincipal,
    registry: RegistryDep,
    store: StoreDep,
    since: Since = None,
    until: Until = None,
    bucket: Annotated[Literal["15m", "1h", "1d"], Query()] = "1h",
) -> ReadingsOut:
    rm = _meter(registry, principal, park, tenant, meter)
    start, end = _window(since, until, DAY_MS)
    size = BUCKETS[bucket]
    if -(-(end - start) // size) > MAX_BUCKETS:
        raise ApiProblem(400, f"at most {MAX_BUCKETS} buckets: a larger bucket or a shorter period")
    data = store.read_ranges([MeterRange(rm.key, start, end)])[0]
    buckets = bucket_quantities(MeterMaths.of(rm.meter), data, size, start, end)
    return ReadingsOut(
        park=park,
        tenant=tenant,
        meter=meter,
        since=at(start),
        until=at(end),
        bucket=bucket,
        total_unit=rm.meter.canonical_unit.removesuffix("/h"),
        buckets=[
            BucketOut(
                start=at(b.start_ms), readings=b.readings, total=b.total, last_value=b.last_value
            )
            for b in buckets
        ],
    )


@router.get(
    "/{park}/{tenant}/{meter}/days",
    summary="a meter's quantity per local day, from the rollups (the portal's flows)",
    response_model=DaysOut,
)
def days(
    park: str,
    tenant: str,
    meter: str,
    principal: CurrentPrincipal,
    registry: RegistryDep,
    store: StoreDep,
    since: Annotated[
        date | None, Query(description="first local day; default 30 days back")
    ] = None,
    until: Annotated[
        date | None, Query(description="last local day, excluded; default today")
    ] = None,
) -> Response:
    """What the rollups hold (whole local days of the park, each with its hours' coverage),
    so a month's flows cost 30 rows, not 3,000 readings; today's day until its rollup cycle."""
    rm = _meter(registry, principal, park, tenant, meter)
    offset = standard_offset_ms(rm.park.timezone)
    last = until or (datetime.fromtimestamp((now_ms() + offset) / 1000, UTC).date() + timedelta(1))
    first = since or last - timedelta(days=30)
    if first >= last:
        raise ApiProblem(400, "`since` must be before `until`")
    if (last - first).days > 366:
        raise ApiProblem(400, "at most 366 days per request")
    epoch = date(1970, 1, 1)
    day_ms = [((first - epoch).days + i) * DAY_MS - offset for i in range((last - first).days)]
    found = {r.day_ms: r for r in store.get_rollups([(rm.key, d) for d in day_ms])}
    out = DaysOut(
        park=park,
        tenant=tenant,
        meter=meter,
        unit=rm.meter.canonical_unit.removesuffix("/h"),
        days=[
            DayOut(
                day=first + timedelta(days=i),
                total=found[d].total if d in found else None,
                coverage=found[d].coverage if d in found else 0.0,
            )
            for i, d in enumerate(day_ms)
        ],
    )
    # validated as it is made: written as it is, not validated a second time on the way out
    return Response(out.model_dump_json(), media_type=JSON)
