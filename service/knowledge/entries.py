"""The entries of the knowledge files: one model for each kind of figure, rule or setting.

Each entry checks what it can see alone (finite figures, a unit that fits its resource, gates
that make sense); references between entries are the aggregate's to check.

Every figure is stored in the unit its source quotes (``per``) and converted to the canonical
unit (m3, kWh, t) with pint only when read, so a figure can be checked against its source as
written.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from parkflow.errors import UnitError
from parkflow.registry.schema import (
    Coupling,
    Destination,
    EquipmentType,
    Feed,
    ResourceName,
    VoltageLevel,
)
from parkflow.units import CANONICAL_BY_FAMILY, canonical_unit, factor

Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# A family ("waste") or a full resource name ("waste.fly_ash"): the most specific entry wins.
Selector = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")]
_T = TypeVar("_T")
UseName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _per_canonical(value: float, per: str, selector: str) -> float:
    """``value`` quoted per ``per`` unit, re-expressed per canonical unit of the selector's family."""
    return value * factor(canonical_unit(selector), per)


def _check_per(per: str, selector: str) -> None:
    try:
        factor(canonical_unit(selector), per)
    except UnitError as exc:
        raise ValueError(f"per {per!r} does not fit {selector!r}: {exc}") from None


def _finite(*values: float | None) -> None:
    for v in values:
        if v is not None and not math.isfinite(v):
            raise ValueError("figures must be finite")


class Source(_Model):
    """Where a figure comes from. ``assumption: true`` marks a placeholder a park should replace."""

    id: Key
    citation: str
    url: str | None = None
    accessed: date | None = None
    assumption: bool = False
    note: str | None = None

    @model_validator(mode="after")
    def _assumptions_say_so(self) -> Source:
        if self.assumption and not self.note:
            raise ValueError("an assumption needs a note saying what to override it with")
        return self


class _MoneyPerUnit(_Model):
    """A dated amount of VND per unit of a resource, with its source; subclasses narrow
    ``resource`` and ``vnd``."""

    resource: str
    vnd: float
    per: str
    as_of: date
    source: Key
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> _MoneyPerUnit:
        _finite(self.vnd)
        _check_per(self.per, self.resource)
        return self

    @property
    def vnd_per_unit(self) -> float:
        return _per_canonical(self.vnd, self.per, self.resource)


class Price(_MoneyPerUnit):
    """What a tenant pays to buy a resource today (the avoided cost when a substitute replaces it).

    ``province``: a tariff set by the province (water); the entry without one is the default
    for parks whose province has none.
    """

    resource: ResourceName
    vnd: float = Field(ge=0)
    province: str | None = None


TouBand = Literal["off_peak", "normal", "peak"]
TOU_BANDS: tuple[TouBand, ...] = ("off_peak", "normal", "peak")
_CLOCK = r"^([01][0-9]|2[0-4]):[0-5][0-9]$"


class TouWindow(_Model):
    """Part of the day in one band: ``start``-``end`` local clock (end may be 24:00; a window
    over midnight is written as two)."""

    band: TouBand
    days: Literal["mon-sat", "sun", "all"]
    start: Annotated[str, StringConstraints(pattern=_CLOCK)]
    end: Annotated[str, StringConstraints(pattern=_CLOCK)]

    @model_validator(mode="after")
    def _order(self) -> TouWindow:
        if not 0 <= _minutes(self.start) < _minutes(self.end) <= 24 * 60:
            raise ValueError(f"start {self.start} must come before end {self.end} within a day")
        return self

    def covers(self, weekday: int) -> bool:
        return self.days == "all" or (self.days == "sun") == (weekday == 6)


def _minutes(clock: str) -> int:
    h, m = clock.split(":")
    return int(h) * 60 + int(m)


class TimeOfUse(_Model):
    """When each band of a time-of-use tariff applies; hours no window names are ``default``."""

    windows: list[TouWindow] = Field(min_length=1)
    default: TouBand = "normal"
    source: Key

    def band_weights(self, weekday: int, hour: int) -> tuple[float, float, float]:
        """Share of one local clock hour in each band (off-peak, normal, peak): a band edge at
        09:30 splits the hour half and half."""
        lo, hi = hour * 60, hour * 60 + 60
        share = dict.fromkeys(TOU_BANDS, 0.0)
        named = 0.0
        for w in self.windows:
            if w.covers(weekday):
                overlap = max(0, min(hi, _minutes(w.end)) - max(lo, _minutes(w.start))) / 60
                share[w.band] += overlap
                named += overlap
        share[self.default] += max(0.0, 1.0 - named)
        return share["off_peak"], share["normal"], share["peak"]


class Tariff(_Model):
    """A time-of-use production tariff for one voltage level, VND per ``per`` in each band."""

    resource: ResourceName
    voltage: VoltageLevel
    bands: dict[TouBand, Annotated[float, Field(ge=0)]]
    per: str
    as_of: date
    source: Key

    @model_validator(mode="after")
    def _check(self) -> Tariff:
        missing = [b for b in TOU_BANDS if b not in self.bands]
        if missing:
            raise ValueError(f"bands needs a price for {', '.join(missing)}")
        _finite(*self.bands.values())
        _check_per(self.per, self.resource)
        return self

    def per_unit(self) -> tuple[float, float, float]:
        """Off-peak, normal and peak prices per canonical unit."""
        off, normal, peak = (
            _per_canonical(self.bands[b], self.per, self.resource) for b in TOU_BANDS
        )
        return off, normal, peak


class DisposalCost(_MoneyPerUnit):
    """What the owner of a stream pays per unit to send it where it goes today (negative: income)."""

    destination: Destination
    resource: Selector


class ResourceEmission(_Model):
    """Emissions from supplying one unit of a resource; avoided when a substitute replaces it.

    ``by_year`` for factors that change every year (the grid), else ``t_co2e``.
    """

    resource: ResourceName
    t_co2e: float | None = Field(default=None, ge=0)
    by_year: dict[int, Annotated[float, Field(ge=0)]] | None = None
    per: str
    source: Key
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ResourceEmission:
        if (self.t_co2e is None) == (self.by_year is None or not self.by_year):
            raise ValueError("give exactly one of t_co2e or a non-empty by_year")
        _finite(self.t_co2e, *(self.by_year or {}).values())
        _check_per(self.per, self.resource)
        return self

    def per_unit(self, year: int) -> tuple[float, int | None]:
        """The factor per canonical unit for ``year`` (latest year not after it, else the earliest),
        and the year actually used."""
        if self.by_year is None:
            return _per_canonical(self.t_co2e or 0.0, self.per, self.resource), None
        years = sorted(self.by_year)
        usable = [y for y in years if y <= year]
        used = usable[-1] if usable else years[0]
        return _per_canonical(self.by_year[used], self.per, self.resource), used


class DisposalEmission(_Model):
    """Emissions from sending one unit of a stream where it goes today (avoided when it is reused)."""

    destination: Destination
    resource: Selector
    t_co2e: float = Field(ge=0)
    per: str
    source: Key
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> DisposalEmission:
        _finite(self.t_co2e)
        _check_per(self.per, self.resource)
        return self

    @property
    def per_unit(self) -> float:
        return _per_canonical(self.t_co2e, self.per, self.resource)


class DestinationInfo(_Model):
    """How to talk about a destination, and what it means for benefit accounting."""

    @model_validator(mode="after")
    def _verb_has_slot(self) -> DestinationInfo:
        if self.verb.count("{what}") != 1 or self.verb.replace("{what}", "").count("{") > 0:
            raise ValueError("verb needs exactly one {what} and no other braces")
        return self

    id: Destination
    verb: str = Field(
        description="plain-language phrase with {what} for the quantity and stream, e.g."
        " 'sends {what} to landfill'"
    )
    landfill: bool = Field(
        default=False, description="diverting from it counts as landfill diverted"
    )
    displaces: ResourceName | None = Field(
        default=None,
        description="today the stream already displaces this resource (grid export displaces grid"
        " electricity), so that credit is lost when the stream goes elsewhere",
    )


class TransportMode(_Model):
    """Moving a stream between tenants: cost and emissions per unit and km, and losses per km."""

    id: Key
    label: str
    family: Literal["water", "liquid", "energy", "waste", "material", "byproduct"]
    vnd_per_unit_km: float = Field(ge=0)
    t_co2e_per_unit_km: float = Field(default=0.0, ge=0)
    loss_per_km: float = Field(default=0.0, ge=0, lt=1)
    as_of: date
    source: Key

    @model_validator(mode="after")
    def _check(self) -> TransportMode:
        _finite(self.vnd_per_unit_km, self.t_co2e_per_unit_km)
        return self

    @property
    def unit(self) -> str:
        return CANONICAL_BY_FAMILY[self.family]


GateAttribute = Literal[
    "qcvn40_column",
    "temperature_c",
    "pressure_bar",
    "loss_on_ignition_pct",
    "so3_pct",
    "free_cao_pct",
    "moisture_pct",
    "chloride_pct",
    "wood_treatment",
]
CATEGORICAL = frozenset({"qcvn40_column", "wood_treatment"})


class Gate(_Model):
    """A quality condition on the supplying stream.

    ``one_of``: the attribute is one of these values. ``at_least`` / ``at_most``: fixed bounds.
    ``at_least_demand_plus``: at least the receiver's value (its quality) plus this margin.
    ``if_unknown``: ``fail`` (an undeclared attribute never passes) or ``flag`` (the link is
    proposed with the check to make before agreeing: a fly ash no lab has tested yet).
    """

    attribute: GateAttribute
    one_of: list[str] | None = None
    at_least: float | None = None
    at_most: float | None = None
    at_least_demand_plus: float | None = None
    if_unknown: Literal["fail", "flag"] = "fail"
    check: str | None = Field(
        default=None, description="what to confirm when the attribute is undeclared (flag)"
    )

    @model_validator(mode="after")
    def _check(self) -> Gate:
        bounds = (self.one_of, self.at_least, self.at_most, self.at_least_demand_plus)
        if sum(x is not None for x in bounds) != 1:
            raise ValueError("give exactly one of one_of, at_least, at_most, at_least_demand_plus")
        categorical = self.attribute in CATEGORICAL
        if categorical != (self.one_of is not None):
            raise ValueError(
                f"{', '.join(sorted(CATEGORICAL))} take one_of; the numeric attributes take"
                " at_least, at_most or at_least_demand_plus"
            )
        if self.if_unknown == "flag" and not self.check:
            raise ValueError("a gate that flags an unknown attribute says what to check")
        _finite(self.at_least, self.at_most, self.at_least_demand_plus)
        return self


class Cost(_Model):
    """Pre-processing before a stream can be used (polishing, chipping, sorting): its money and
    the emissions of the energy it takes, both per ``per`` unit of supply."""

    vnd: float = Field(ge=0)
    t_co2e: float = Field(default=0.0, ge=0)
    per: str
    source: Key

    @model_validator(mode="after")
    def _check(self) -> Cost:
        _finite(self.vnd, self.t_co2e)
        return self


class HeatingValue(_Model):
    """The energy in a unit of a fuel metered by mass or volume (a net calorific value).

    Stored as the source quotes it (``value`` in ``unit``, e.g. 15.6 MJ/kg); detection turns a
    fuel meter's tonnes or cubic metres into kWh with it, so a boiler's wood in tonnes meets
    the kWh a rule's ratio speaks of.
    """

    resource: ResourceName
    basis: Literal["mass", "volume"]
    value: float = Field(gt=0)
    unit: str = Field(description="energy per mass or volume, e.g. MJ/kg, GJ/t, MJ/m3, kWh/L")
    source: Key
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> HeatingValue:
        _finite(self.value)
        if self.resource.split(".", 1)[0] != "energy":
            raise ValueError(f"{self.resource!r} is not an energy resource (energy.*)")
        try:
            factor(self.unit, _HV_TARGET[self.basis])
        except UnitError as exc:
            raise ValueError(f"unit {self.unit!r} is not energy per {self.basis}: {exc}") from None
        return self

    @property
    def kwh_per_stored_unit(self) -> float:
        """kWh per t (mass) or per m3 (volume): the stored units of fuel meters."""
        return self.value * factor(self.unit, _HV_TARGET[self.basis])


_HV_TARGET = {"mass": "kWh/t", "volume": "kWh/m3"}


LegalStatus = Literal["allowed", "conditional", "permit", "not_allowed"]
LEGAL_STATUS_TEXT: dict[str, str] = {
    "allowed": "allowed",
    "conditional": "allowed with conditions",
    "permit": "needs a permit or an eligibility check",
    "not_allowed": "not allowed",
}


class Legal(_Model):
    """What the law asks of an exchange a rule proposes, with its sources and date.

    Shown with every opportunity the rule makes, so an operator does not put before tenants
    an exchange the law forbids or conditions without saying so.
    """

    status: LegalStatus
    summary: str = Field(description="what the law asks, in a sentence a tenant can act on")
    conditions: list[str] = Field(default_factory=list)
    sources: list[Key] = Field(min_length=1)
    as_of: date

    @property
    def status_text(self) -> str:
        return LEGAL_STATUS_TEXT[self.status]


class HeatRecovery(_Model):
    """Heat a source can give a user is bounded by the temperatures: a stream cooled from its
    temperature Ts down to the user's Tu plus an approach gives (Ts - Tu - approach) /
    (Ts - ambient) of the heat it carries above ambient. A 280 C exhaust raising 175 C steam
    gives about a third, not the exchanger's 80 %."""

    approach_k: float = Field(default=20.0, ge=0)
    ambient_c: float = Field(default=25.0)

    def share(self, supply_c: float, demand_c: float) -> float:
        if supply_c <= self.ambient_c:
            return 0.0
        return min(
            1.0, max(0.0, (supply_c - demand_c - self.approach_k) / (supply_c - self.ambient_c))
        )


class Exclusion(_Model):
    """Uses a rule may not replace at receivers of these sectors (cleaning with effluent in a
    food plant)."""

    sectors: list[str] = Field(min_length=1)
    uses: list[UseName] = Field(min_length=1)


class ReceiverNeeds(_Model):
    """What a receiver must have for a rule to propose it: equipment of one of these types,
    accepting this feed. A receiver whose registry entry does not show it is never proposed."""

    equipment: list[EquipmentType] = Field(min_length=1)
    accepts: Feed | None = Field(
        default=None, description="a feed the equipment must list in its accepts (or burn)"
    )


class Rule(_Model):
    """Which out-streams can replace which metered in-uses, under which gates and coupling.

    ``ratio``: receiver units replaced per supply unit delivered (heating value, yield, heat
    exchanger effectiveness). ``max_demand_share``: at most this share of the receiver's
    demand can be replaced (fly ash in a cement blend). ``coupling``: the time bucket in which
    supply and demand must meet (energy hourly, water daily with a tank, solids weekly).
    """

    id: Key
    description: str
    enabled: bool = True
    supply: list[ResourceName] = Field(min_length=1)
    demand: list[ResourceName] = Field(min_length=1)
    uses: list[UseName] | None = Field(
        default=None,
        description="receiver uses that may be replaced; absent: the whole in-meter",
    )
    gates: list[Gate] = Field(default_factory=list)
    ratio: float = Field(default=1.0, gt=0)
    max_demand_share: float = Field(default=1.0, gt=0, le=1)
    coupling: Coupling
    transport: Key
    max_distance_m: float = Field(gt=0)
    preprocessing: Cost | None = None
    min_matched_per_day: float = Field(
        default=0.0, ge=0, description="smaller matches (receiver units/day) are not proposed"
    )
    heat_recovery: HeatRecovery | None = Field(
        default=None,
        description="bound the heat recovered by the supply's and the receiver's temperatures",
    )
    exclude: list[Exclusion] = Field(
        default_factory=list, description="uses not replaced at receivers of some sectors"
    )
    receiver_needs: ReceiverNeeds | None = Field(
        default=None,
        description="equipment the receiver must have (a boiler accepting wood waste)",
    )
    legal: Legal | None = Field(
        default=None, description="what the law asks of the exchange (Viet Nam first)"
    )
    source: Key
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Rule:
        _finite(self.ratio, self.max_distance_m, self.min_matched_per_day)
        families = {r.split(".", 1)[0] for r in self.supply}
        if len({CANONICAL_BY_FAMILY.get(f) for f in families}) > 1:
            raise ValueError("supply resources must share one canonical unit")
        families = {r.split(".", 1)[0] for r in self.demand}
        if len({CANONICAL_BY_FAMILY.get(f) for f in families}) > 1:
            raise ValueError("demand resources must share one canonical unit")
        if self.preprocessing is not None:
            _check_per(self.preprocessing.per, self.supply[0])
        return self

    @property
    def supply_unit(self) -> str:
        return canonical_unit(self.supply[0])

    @property
    def demand_unit(self) -> str:
        return canonical_unit(self.demand[0])

    @property
    def preprocessing_vnd_per_unit(self) -> float:
        if self.preprocessing is None:
            return 0.0
        return _per_canonical(self.preprocessing.vnd, self.preprocessing.per, self.supply[0])

    @property
    def preprocessing_co2e_per_unit(self) -> float:
        if self.preprocessing is None:
            return 0.0
        return _per_canonical(self.preprocessing.t_co2e, self.preprocessing.per, self.supply[0])


class Season(_Model):
    """A season by calendar month, so a reader knows which seasons a window has seen."""

    name: str
    months: list[Annotated[int, Field(ge=1, le=12)]] = Field(min_length=1)
    source: Key


class Detection(_Model):
    """When an out-stream counts as a surplus: it must persist, not just show up once."""

    min_present_share: float = Field(
        default=0.6, gt=0, le=1, description="share of the window's days the stream must flow"
    )
    min_hours_per_day: int = Field(
        default=20, ge=1, le=24, description="a day with fewer hours of data is a day without data"
    )
    temporal_deadband: float = Field(
        default=0.05,
        ge=0,
        lt=1,
        description="temporal surpluses: an hour's excess of generation over own use counts only"
        " above this share of the generation, so meter noise around a balance is no surplus",
    )
    min_p50_per_day: dict[Selector, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description="smallest median daily quantity (canonical unit/day), by family or resource",
    )

    def min_p50(self, resource: str) -> float:
        return most_specific(self.min_p50_per_day, resource, 0.0)


class Matching(_Model):
    routing_factor: float = Field(
        default=1.2, ge=1, description="route length over straight-line distance"
    )
    unknown_distance_m: float = Field(
        default=1000.0, gt=0, description="assumed when a tenant has no location"
    )
    days_per_year: float = Field(default=365.0, gt=0, le=366)
    require_positive_value: bool = True
    max_receivers_per_surplus: int = Field(
        default=5, ge=1, description="best receivers kept per surplus; the rest are counted"
    )
    capex_discount_rate: float = Field(
        default=0.10, ge=0, lt=1, description="yearly rate the plan annualises link capex at"
    )
    capex_life_years: float = Field(
        default=10.0, gt=0, description="years over which a link's investment is recovered"
    )
    opex_share: float = Field(
        default=0.03, ge=0, lt=1, description="yearly operation and upkeep, share of the capex"
    )
    supplier_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="the supplier's share of a link's net benefit when no price is set",
    )
    supplier_shares: dict[Selector, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict,
        description="the supplier's share by supply resource or family, over supplier_share",
    )
    finance_source: Key | None = Field(
        default=None, description="the source of the money settings (an assumption)"
    )
    default_voltage: VoltageLevel = Field(
        default="22-110kV",
        description="the tariff's voltage level for a tenant whose registry entry gives none",
    )
    default_efficiency: float = Field(
        default=0.85,
        gt=0,
        le=1.2,
        description="a boiler or heater whose registry entry gives no efficiency",
    )
    source: Key
    equipment_source: Key | None = Field(
        default=None, description="the source of default_efficiency (an assumption)"
    )


def most_specific(table: dict[str, _T], resource: str, default: _T) -> _T:
    """The entry for the full resource name, else for its family, else ``default``."""
    if resource in table:
        return table[resource]
    family = resource.split(".", 1)[0]
    return table.get(family, default)
