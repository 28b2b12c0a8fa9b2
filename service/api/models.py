"""The API's bodies, for validation and the OpenAPI document. Times are RFC 3339 (UTC, ``Z``);
a query time without an offset is UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from service.exchanges.model import Benefit, Item, Method, Side
from service.exchanges.pipeline import Barrier, Stage

T = TypeVar("T")


def at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def ms(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


class Paged(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="items matching the filters, over all pages")
    limit: int
    offset: int
    next_offset: int | None = Field(description="the next page's offset; null on the last page")


def paged(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    end = offset + limit
    return {
        "items": items[offset:end],
        "total": len(items),
        "limit": limit,
        "offset": offset,
        "next_offset": end if end < len(items) else None,
    }


class Me(BaseModel):
    key_id: str
    name: str
    role: Literal["operator", "tenant"]
    park: str | None
    tenant: str | None


class ParkOut(BaseModel):
    id: str = Field(examples=["songlam"])
    name: str
    timezone: str = Field(examples=["Asia/Ho_Chi_Minh"])
    province: str | None = None
    tenants: int


class TenantOut(BaseModel):
    park: str
    id: str = Field(examples=["det-phuoc"])
    name: str
    sector: str | None = None
    meters: int


class MeterOut(BaseModel):
    park: str
    tenant: str
    id: str = Field(examples=["det-water"])
    resource: str = Field(examples=["water.potable"])
    direction: str
    kind: str = Field(examples=["cumulative"])
    unit: str = Field(description="the unit readings are stored and shown in")


class MeterSummaryOut(MeterOut):
    since: datetime
    until: datetime
    last_at: datetime | None
    last_value: float | None
    readings: int
    total: float | None = Field(description="over the period; null: no data (not zero)")
    total_unit: str
    total_basis: str = Field(examples=["register increase"])
    stale: bool
    stale_after_s: float


class BucketOut(BaseModel):
    start: datetime
    readings: int
    total: float | None
    last_value: float | None


class ReadingsOut(BaseModel):
    park: str
    tenant: str
    meter: str
    since: datetime
    until: datetime
    bucket: Literal["15m", "1h", "1d"]
    total_unit: str
    buckets: list[BucketOut]


class DayOut(BaseModel):
    day: date = Field(description="the park's local day")
    total: float | None = Field(description="what flowed that day; null: no data (not zero)")
    coverage: float = Field(description="hours with data / 24")


class DaysOut(BaseModel):
    park: str
    tenant: str
    meter: str
    unit: str
    days: list[DayOut]


class RunOut(BaseModel):
    id: int
    finished_at: datetime | None
    window_days: int


class Loose(BaseModel):
    """A detection result as stored (operators) or as a tenant may see it: its fields are the
    CLI's JSON, documented in docs/api.md."""

    model_config = ConfigDict(extra="allow")


class Results(BaseModel):
    run: RunOut
    page: Paged[Loose]


class PlanOut(BaseModel):
    run: RunOut
    totals: Loose | None = Field(description="the park's totals (operators only)")
    links: list[Loose]


class AlertOut(BaseModel):
    id: str
    kind: str = Field(examples=["meter_stale"])
    subject: str
    park: str
    tenant: str | None
    severity: Literal["info", "warning", "critical"]
    status: Literal["open", "acknowledged", "resolved"] | None
    summary: str
    opened_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    evaluated_at: datetime


class AcknowledgeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, examples=["crew sent to check the meter"])


class SilenceIn(BaseModel):
    kind: str | None = Field(default=None, examples=["meter_stale"])
    subject: str | None = Field(default=None, examples=["songlam/det-phuoc/det-water"])
    until: datetime = Field(examples=["2026-12-04T08:00:00Z"])
    reason: str = Field(min_length=1, max_length=2000, examples=["meter replaced this week"])


class SilenceOut(BaseModel):
    id: str


class ConsentIn(BaseModel):
    opportunity: str = Field(
        min_length=1,
        max_length=200,
        description="the opportunity's reference (anyone) or id (operators)",
        examples=["ref-5d1c0a9e7b3f2468"],
    )
    tenant: str | None = Field(
        default=None,
        description="the party consenting: operators name one; a tenant is itself",
        examples=["det-phuoc"],
    )
    note: str | None = Field(default=None, max_length=2000, examples=["letter of 2 Dec"])


class ConsentOut(BaseModel):
    opportunity: str = Field(description="its id (operators) or its reference (tenants)")
    ref: str
    park: str
    tenant: str
    given_at: datetime | None
    given_by: str
    withdrawn_at: datetime | None
    withdrawn_by: str | None
    note: str | None
    introduced: bool = Field(description="both parties' consents stand: each sees the other")


class ExchangeIn(BaseModel):
    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$", examples=["x-001"])
    park: str = Field(min_length=1, max_length=200, examples=["songlam"])
    owner: str = Field(min_length=1, max_length=200, examples=["park environment office"])
    opportunity: str | None = Field(
        default=None,
        description="the latest run's opportunity it comes from (its id): its figures become"
        " the projection, its legal status the exchange's",
    )
    legal_status: str | None = Field(default=None, examples=["allowed_with_conditions"])
    barrier: Barrier | None = None
    notes: str = Field(default="", max_length=4000)


class RegistrationIn(BaseModel):
    """What the parties agreed to meter. An exchange entered from an opportunity takes its
    parties, meters, resource and unit from it unless given."""

    supplier: str | None = Field(default=None, examples=["wwtp"])
    receiver: str | None = Field(default=None, examples=["det-phuoc"])
    resource: str | None = Field(default=None, examples=["water.treated_effluent"])
    unit: str | None = Field(default=None, examples=["m3"])
    benefit: Benefit
    from_meter: str | None = None
    to_meter: str | None = None
    method: Method
    meter: str | None = Field(default=None, description="the valued meter (default from_meter)")
    share: Decimal | None = Field(
        default=None, gt=0, le=1, decimal_places=6, description="supplier_share only"
    )
    baseline_per_hour: float | None = Field(default=None, description="receiver_reduction only")
    check_meter: str | None = None
    check_side: Side = Side.RECEIVER
    tolerance: float = Field(default=0.05, ge=0, lt=1)
    start: date
    end: date | None = None


class PriceIn(BaseModel):
    item: Item
    effective: date = Field(description="from this day on, never backwards")
    vnd_per_unit: Decimal = Field(
        examples=["11500"], allow_inf_nan=False, ge=-1e12, le=1e12, decimal_places=6
    )
    paid_by: Side | None = Field(default=None, description="costs")
    hours: list[Annotated[int, Field(ge=0, le=23)]] = Field(
        default=[], max_length=24, description="local hours of a time-of-use band"
    )
    source: str = Field(default="", max_length=500)


class MoveIn(BaseModel):
    to: Stage
    note: str = Field(
        default="", max_length=4000, description="why: required for rejected and ended"
    )


class MoveOut(BaseModel):
    at: datetime | None
    by: str
    from_stage: Stage | None
    to_stage: Stage
    note: str


class ProjectionOut(BaseModel):
    quantity_per_day: float
    park_vnd_per_year: int | None
    supplier_vnd_per_year: int | None
    receiver_vnd_per_year: int | None
    co2e_t_per_year: float
    water_m3_per_year: float
    landfill_t_per_year: float
    frozen: bool = Field(description="the baseline savings are compared with (from agreed on)")


class ExchangeOut(BaseModel):
    id: str
    park: str
    stage: Stage
    stage_at: datetime | None
    owner: str
    barrier: str | None
    legal_status: str
    notes: str
    reason: str | None
    role: Literal["supplier", "receiver"] | None = Field(
        description="the caller's side (tenants); null for operators"
    )
    supplier: str | None = Field(description="null to a tenant until it knows its counterpart")
    receiver: str | None
    resource: str | None
    unit: str | None
    opportunity: str | None = Field(description="its id (operators) or reference (tenants)")
    projection: ProjectionOut | None
    moves: list[MoveOut] | None = Field(default=None, description="one exchange's history")


class SavingsOut(BaseModel):
    exchange: str = Field(description='an exchange, or "park": the park once, never the sum')
    period: str = Field(examples=["2026-10", "total"])
    days: int
    coverage: float = Field(description="measured hours / hours of the days: the rest a gap")
    gap_days: int
    quantity: float
    supplier_vnd: int | None = Field(description="a tenant sees its own side only")
    receiver_vnd: int | None
    park_vnd: int | None
    water_m3: float
    co2e_t: float
    landfill_t: float
    disagreeing_days: int
    realised_share: float | None = Field(description="realised / frozen projection")


class QuarantineOut(BaseModel):
    received_at: datetime
    reason: str = Field(examples=["out_of_range"])
    park: str | None
    tenant: str | None
    meter: str | None
    topic: str
    index: int | None
    detail: str
    excerpt: str
    size: int | None


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["det-phuoc energy manager"])
    role: Literal["operator", "tenant"]
    park: str | None = Field(default=None, examples=["songlam"])
    tenant: str | None = Field(default=None, examples=["det-phuoc"])


class KeyOut(BaseModel):
    id: str
    name: str
    role: Literal["operator", "tenant"]
    park: str | None
    tenant: str | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    key: str = Field(description="the key itself: shown this once, never stored")
