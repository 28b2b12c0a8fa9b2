"""The park registry: parks, tenants and their meters, as pydantic models.

Unknown keys are errors (a typo must not silently drop a setting); later features extend these
models with new optional fields.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from parkflow.errors import UnitError
from parkflow.model import Direction, MeterKind
from parkflow.registry.vocabulary import (
    COUPLING_MEANINGS,
    DESTINATION_MEANINGS,
    DIRECTION_MEANINGS,
    EQUIPMENT_TYPE_MEANINGS,
    FEED_MEANINGS,
    INTEGRATION_MEANINGS,
    METER_KIND_MEANINGS,
    QCVN40_COLUMN_MEANINGS,
    VOLTAGE_MEANINGS,
    WOOD_TREATMENT_MEANINGS,
)
from parkflow.units import FUEL_BASES, factor, stored_unit

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
ResourceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _meanings(meanings: dict[str, str]) -> dict[str, Any]:
    """The JSON Schema extension that carries each allowed value's meaning (editors show it,
    docs/registry.md is generated from it)."""
    return {"x-meanings": dict(meanings)}


# --- What matching needs (all optional: a registry without them still loads) ---------------

# Each value's meaning is in parkflow/registry/vocabulary.py (DESTINATION_MEANINGS).
Destination = Literal[
    "sewer_to_wwtp",
    "discharged",
    "landfill",
    "open_dump",
    "incineration",
    "sold",
    "vented",
    "curtailed",
    "grid_export",
    "self_use",
    "other",
]
Coupling = Literal["hour", "day", "week", "month"]


class Location(_Model):
    """A tenant's position on the park's own site plan, in metres.

    x/y on a local grid (x east, y north, any origin) rather than lat/lon: parks draw plans in
    metres, distances inside a park are short, and a grid needs no projection maths.
    """

    x_m: float = Field(description="metres east of the plan's origin")
    y_m: float = Field(description="metres north of the plan's origin")

    @model_validator(mode="after")
    def _finite(self) -> Location:
        if not (math.isfinite(self.x_m) and math.isfinite(self.y_m)):
            raise ValueError("x_m and y_m must be finite")
        return self


class Use(_Model):
    """What an in-meter's intake is used for; ``share`` of the metered quantity (0-1].

    Uses without a share split what the others leave, equally.
    """

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")] = Field(
        description="the use, in lower_snake_case; rules name the uses they may replace"
        " (`parkflow registry check` warns about names no rule knows)"
    )
    share: float | None = Field(
        default=None, gt=0, le=1, description="fraction of the metered quantity, (0, 1]"
    )


class Quality(_Model):
    """Properties of the stream through a meter.

    On an out-meter: what the stream offers. On an in-meter: what today's supply delivers, i.e.
    what a substitute has to match (a steam user's pressure, a heat user's temperature).
    """

    qcvn40_column: Literal["A", "B", "C"] | None = Field(
        default=None,
        description="QCVN 40:2011/BTNMT class the effluent meets (the letter only: A, not"
        " QCVN40:2011-A); rules gate effluent reuse on it",
        json_schema_extra=_meanings(QCVN40_COLUMN_MEANINGS),
    )
    temperature_c: float | None = Field(
        default=None,
        ge=-50,
        le=2000,
        description="degrees Celsius; out-meters: the stream's, in-meters: what the use needs"
        " (rules compare a supply's against a receiver's)",
    )
    pressure_bar: float | None = Field(
        default=None,
        ge=0,
        le=300,
        description="bar (gauge); out-meters: the stream's, in-meters: what the use needs",
    )
    # Fly ash and slag for cement and concrete: the properties TCVN 10302:2014 limits
    loss_on_ignition_pct: float | None = Field(
        default=None, ge=0, le=100, description="fly ash or slag: loss on ignition, % by mass"
    )
    so3_pct: float | None = Field(
        default=None, ge=0, le=100, description="fly ash or slag: SO3, % by mass"
    )
    free_cao_pct: float | None = Field(
        default=None, ge=0, le=100, description="fly ash or slag: free CaO, % by mass"
    )
    moisture_pct: float | None = Field(
        default=None, ge=0, le=100, description="solids: moisture, % by mass"
    )
    chloride_pct: float | None = Field(
        default=None, ge=0, le=100, description="fly ash or slag: chloride, % by mass"
    )
    wood_treatment: Literal["untreated", "heat_treated", "chemically_treated", "painted"] | None = (
        Field(
            default=None,
            description="wood: how it was treated; only untreated or heat-treated wood is fuel",
            json_schema_extra=_meanings(WOOD_TREATMENT_MEANINGS),
        )
    )


class Replacement(_Model):
    """A cumulative meter replaced, or its register swapped, at a known instant.

    From ``at`` on, readings come from a new register that started at ``initial_reading``; the
    drop is then not taken for a reset. The quantity across it is what the old register
    counted after its last stored reading (when ``final_reading`` is given) plus what the new
    one counted from ``initial_reading`` to its first stored reading.
    """

    at: AwareDatetime = Field(
        description="when the new register started counting, with its UTC offset"
        " (2025-03-04T10:00:00+07:00); a reading at this instant is the new register's"
    )
    initial_reading: float = Field(
        default=0.0,
        ge=0,
        allow_inf_nan=False,
        description="the new register's reading when it was installed, in the meter's unit",
    )
    final_reading: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="the old register's reading when it was removed, in the meter's unit;"
        " without it, what it counted after its last stored reading is not counted",
    )


class DerivedFrom(_Model):
    """An out-stream made in proportion to one of the tenant's own intakes: a boiler's flue heat
    or ash per unit of the fuel it burns, a cooling tower's blowdown per m3 of make-up. When an
    exchange displaces that intake, this stream shrinks with it, so the plan never hands out a
    stream another of its exchanges has removed (A's steam to B's boiler, B's flue heat to C)."""

    meter: Id = Field(description="the tenant's own in-meter this stream is made from")
    per_unit: float = Field(
        gt=0,
        allow_inf_nan=False,
        description="this stream's canonical units made per canonical unit of that intake"
        " (e.g. 0.12 kWh of recoverable flue heat per kWh of gas)",
    )


class Meter(_Model):
    """One metered stream of a tenant: what it measures, how it reports, and (optionally) what
    matching needs to know about it. Its topic is ``<park>/<tenant>/<meter id>``."""

    id: Id = Field(description="unique in the park; the last level of the meter's topic")
    resource: ResourceName = Field(
        description="dotted name, family first (water.potable, energy.steam); the family sets"
        " the canonical unit"
    )
    direction: Direction = Field(
        description="which way the stream flows for the tenant",
        json_schema_extra=_meanings(DIRECTION_MEANINGS),
    )
    unit: str = Field(
        description="the unit the gateway reports in, e.g. m3, L, kWh, MWh, kW, t; it must"
        " convert to the resource family's canonical unit (per hour for rate meters); energy"
        " meters of a fuel may report its mass or volume (t, kg, m3, L), converted to kWh"
        " with the fuel's heating value"
    )
    kind: MeterKind = Field(
        description="how a reading relates to the quantity",
        json_schema_extra=_meanings(METER_KIND_MEANINGS),
    )
    integration: Literal["trapezoid", "previous"] | None = Field(
        default=None,
        description="rate meters: trapezoid (linear between readings) or previous (step)",
        json_schema_extra=_meanings(INTEGRATION_MEANINGS),
    )
    max_gap_s: float = Field(
        default=3600.0,
        gt=0,
        description="rate meters: gaps longer than this are not integrated (no data, not zero)",
    )
    rollover: float | None = Field(
        default=None,
        gt=0,
        description="cumulative meters: the modulus the register wraps at (100000 for 5 digits)",
    )
    replaced: list[Replacement] | None = Field(
        default=None,
        description="cumulative meters: each time the meter or its register was replaced, so"
        " that the drop to the new register is not taken for a reset",
    )
    min: float | None = Field(
        default=None, description="lowest plausible value, in the meter's unit"
    )
    max: float | None = Field(
        default=None, description="highest plausible value, in the meter's unit"
    )
    description: str | None = Field(default=None, description="free text for people")
    uses: list[Use] | None = Field(
        default=None,
        description="in-meters: what the intake is used for, with optional shares; substitution"
        " rules replace named uses (cooling_makeup, cleaning, water_heating, ...)",
    )
    quality: Quality | None = Field(
        default=None, description="properties of the stream (see Quality)"
    )
    destination: Destination | None = Field(
        default=None,
        description="out-meters: where the stream goes today",
        json_schema_extra=_meanings(DESTINATION_MEANINGS),
    )
    destination_vnd_per_unit: float | None = Field(
        default=None,
        description="out-meters: what the owner pays today per canonical unit to get rid of the"
        " stream (negative when it is sold); overrides the knowledge file's default",
    )
    price_vnd_per_unit: float | None = Field(
        default=None,
        ge=0,
        description="in-meters: what the tenant pays per canonical unit under its own contract;"
        " overrides the knowledge base's price and time-of-use tariff",
    )
    offsets: ResourceName | None = Field(
        default=None,
        description="self_use out-meters: the in-resource this generation displaces"
        " (default: the same resource)",
    )
    hazardous: bool = Field(
        default=False,
        description="out-meters: the stream is hazardous waste (LEP 2020 Art. 83): it may go"
        " only to a tenant licensed for it",
    )
    derived_from: DerivedFrom | None = Field(
        default=None,
        description="out-meters: the intake this stream is made from, and how much per unit"
        " (see DerivedFrom)",
    )
    storage: Coupling | None = Field(
        default=None,
        description="declared storage (tank, battery, thermal store, yard) that lets this"
        " stream be matched at this resolution instead of the rule's",
        json_schema_extra=_meanings(COUPLING_MEANINGS),
    )

    @model_validator(mode="after")
    def _matching_fields(self) -> Meter:
        out = self.direction is Direction.OUT
        if self.uses is not None and out:
            raise ValueError("uses apply to in-meters only")
        for name in ("destination", "destination_vnd_per_unit", "offsets", "derived_from"):
            if getattr(self, name) is not None and not out:
                raise ValueError(f"{name} applies to out-meters only")
        if self.price_vnd_per_unit is not None and out:
            raise ValueError("price_vnd_per_unit applies to in-meters only")
        if self.price_vnd_per_unit is not None and not math.isfinite(self.price_vnd_per_unit):
            raise ValueError("price_vnd_per_unit must be finite")
        if self.offsets is not None and self.destination != "self_use":
            raise ValueError("offsets applies to destination self_use only")
        if self.destination_vnd_per_unit is not None and not math.isfinite(
            self.destination_vnd_per_unit
        ):
            raise ValueError("destination_vnd_per_unit must be finite")
        if self.uses:
            names = [u.name for u in self.uses]
            problems = [f"use {d!r} is listed twice" for d in _dupes(names)]
            total = sum(u.share or 0.0 for u in self.uses)
            if total > 1.0 + 1e-9:
                problems.append(f"use shares add up to {total:g}, above 1")
            elif total >= 1.0 - 1e-9 and any(u.share is None for u in self.uses):
                problems.append(
                    "use shares already add up to 1, nothing is left for the uses without a share"
                )
            if problems:
                raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _replacements(self) -> Meter:
        if self.replaced is None:
            return self
        if self.kind is not MeterKind.CUMULATIVE:
            raise ValueError("replaced applies to cumulative meters only")
        instants = [r.at for r in self.replaced]
        twice = {a for a in instants if instants.count(a) > 1}
        if twice:
            raise ValueError(
                "; ".join(f"replaced lists {a.isoformat()} twice" for a in sorted(twice))
            )
        return self

    def use_shares(self) -> dict[str, float]:
        """Each use's share of the metered quantity; uses without a share split the rest equally."""
        if not self.uses:
            return {}
        given = sum(u.share for u in self.uses if u.share is not None)
        open_uses = [u for u in self.uses if u.share is None]
        rest = max(0.0, 1.0 - given) / len(open_uses) if open_uses else 0.0
        return {u.name: (u.share if u.share is not None else rest) for u in self.uses}

    @model_validator(mode="after")
    def _check(self) -> Meter:
        rate = self.kind is MeterKind.RATE
        try:
            stored_unit(self.resource, self.unit, rate=rate)
        except UnitError as exc:
            what = "a rate unit such as kW or m3/h" if rate else "a quantity unit"
            raise ValueError(
                f"unit {self.unit!r} for {self.kind.value} meter needs {what}: {exc}"
            ) from None
        if self.integration is not None and not rate:
            raise ValueError("integration applies to rate meters only")
        if self.rollover is not None and self.kind is not MeterKind.CUMULATIVE:
            raise ValueError("rollover applies to cumulative meters only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        for name in ("min", "max", "rollover"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{name} must be finite")
        return self

    @property
    def canonical_unit(self) -> str:
        """The unit readings are stored in: the resource family's canonical unit, or t or m3
        for a fuel metered by mass or volume (``fuel_basis``)."""
        return stored_unit(self.resource, self.unit, rate=self.kind is MeterKind.RATE)

    @property
    def fuel_basis(self) -> str | None:
        """``mass`` or ``volume`` for an energy meter of a fuel metered as such, else None."""
        if self.resource.split(".", 1)[0] != "energy":
            return None
        return FUEL_BASES.get(self.canonical_unit.removesuffix("/h"))

    @property
    def to_canonical(self) -> float:
        return factor(self.unit, self.canonical_unit)

    @property
    def integration_rule(self) -> str:
        return self.integration or "trapezoid"


# Each value's meaning is in parkflow/registry/vocabulary.py (EQUIPMENT_TYPE_MEANINGS).
EquipmentType = Literal[
    "boiler", "water_heater", "furnace", "kiln", "dryer", "generator", "chiller",
    "cooling_tower", "other",
]  # fmt: skip
# Feeds a rule may need a receiver's equipment to accept (beyond the fuel it burns today);
# meanings in FEED_MEANINGS.
Feed = Literal[
    "wood_waste", "biomass", "coal", "natural_gas", "lpg", "biogas", "fuel_oil", "waste_oil",
    "waste_heat", "steam",
]  # fmt: skip
# What each kind of equipment makes when ``makes`` is not given.
EQUIPMENT_MAKES: dict[str, str] = {
    "boiler": "energy.steam",
    "water_heater": "energy.hot_water",
    "generator": "energy.electricity",
}


class Equipment(_Model):
    """A tenant's plant that decides what a substitute may replace and what it is worth.

    Rules ask for it (a wood-waste fuel needs a boiler that accepts wood), and valuation reads
    it: steam or heat a neighbour supplies saves the fuel the tenant's own boiler burns for it,
    ``fuel`` divided by ``efficiency``, not a park-wide default.
    """

    id: Id = Field(description="unique among the tenant's equipment")
    type: EquipmentType = Field(
        description="what kind of plant it is; rules name the types they need",
        json_schema_extra=_meanings(EQUIPMENT_TYPE_MEANINGS),
    )
    fuel: ResourceName | None = Field(
        default=None,
        description="the energy resource it burns today, e.g. energy.natural_gas, energy.coal",
    )
    efficiency: float | None = Field(
        default=None, gt=0, le=1.2, description="useful output per unit of fuel energy (0-1.2)"
    )
    makes: ResourceName | None = Field(
        default=None,
        description="what it produces (default: energy.steam for a boiler, energy.hot_water for"
        " a water heater, energy.electricity for a generator)",
    )
    accepts: list[Feed] = Field(
        default_factory=list,
        json_schema_extra=_meanings(FEED_MEANINGS),
        description="feeds it can take besides its fuel, e.g. wood_waste for a boiler with a"
        " grate for wood",
    )
    meters: list[Id] = Field(
        default_factory=list,
        description="the tenant's meters it belongs to: its fuel meter, its output meter",
    )

    @model_validator(mode="after")
    def _check(self) -> Equipment:
        if self.fuel is not None and self.fuel.split(".", 1)[0] != "energy":
            raise ValueError(f"fuel {self.fuel!r} is not an energy resource (energy.*)")
        if len(set(self.accepts)) != len(self.accepts):
            raise ValueError("accepts lists a feed twice")
        return self

    @property
    def output(self) -> str | None:
        return self.makes or EQUIPMENT_MAKES.get(self.type)

    def serves(self, meter: Meter) -> bool:
        """Whether this equipment is the one behind ``meter``: named in ``meters``, or, when
        it names none, making the meter's resource."""
        if self.meters:
            return meter.id in self.meters
        return self.output == meter.resource or self.fuel == meter.resource


VoltageLevel = Literal[">=110kV", "22-110kV", "6-22kV", "<6kV"]


class Tenant(_Model):
    """A company in the park; it publishes on its own topics only (``<park>/<tenant>/#``)."""

    id: Id = Field(description="unique in the park; the broker user and topic level")
    name: str = Field(description="the company's name, for people")
    sector: str | None = Field(
        default=None,
        description="free text, e.g. textile_dyeing; some rules exclude uses by sector"
        " (food_beverage: no effluent for cleaning)",
    )
    supply_voltage: VoltageLevel | None = Field(
        default=None,
        description="the voltage level it buys electricity at, which sets its production tariff",
        json_schema_extra=_meanings(VOLTAGE_MEANINGS),
    )
    location: Location | None = Field(
        default=None, description="position on the park's site plan, metres (see Location)"
    )
    meters: list[Meter] = Field(default_factory=list, description="the tenant's meters")
    equipment: list[Equipment] = Field(
        default_factory=list,
        description="boilers, heaters, kilns...: what rules require and what valuation reads",
    )
    licences: list[Literal["hazardous_waste"]] = Field(
        default_factory=list,
        description="environmental licences it holds: hazardous_waste lets it receive"
        " hazardous streams",
        json_schema_extra=_meanings(
            {"hazardous_waste": "licensed to collect, treat or reuse hazardous waste"}
        ),
    )

    @model_validator(mode="after")
    def _equipment(self) -> Tenant:
        ids = {m.id for m in self.meters}
        problems = [
            f"equipment id {d!r} is used twice" for d in _dupes([e.id for e in self.equipment])
        ]
        for e in self.equipment:
            problems += [
                f"equipment {e.id!r}: meter {m!r} is not a meter of tenant {self.id!r}"
                for m in e.meters
                if m not in ids
            ]
        direction = {m.id: m.direction for m in self.meters}
        for m in self.meters:
            base = m.derived_from.meter if m.derived_from is not None else None
            if base is None:
                continue
            if base not in direction:
                problems.append(
                    f"meter {m.id!r}: derived_from {base!r} is not a meter of tenant {self.id!r}"
                )
            elif direction[base] is not Direction.IN:
                problems.append(f"meter {m.id!r}: derived_from {base!r} is not an in-meter")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def equipment_of(self, meter: Meter) -> list[Equipment]:
        """The equipment behind one of this tenant's meters (see ``Equipment.serves``)."""
        return [e for e in self.equipment if e.serves(meter)]


class Exchange(_Model):
    """An exchange already running: detection subtracts it from the supplier's stream.

    Give either ``quantity_per_day`` (canonical unit of the from-meter) or ``share`` of its flow.
    """

    from_meter: Id = Field(description="the supplier's out-meter")
    to_meter: Id = Field(description="the receiver's in-meter (another tenant's)")
    quantity_per_day: float | None = Field(
        default=None, gt=0, description="what flows per day, canonical unit of the from-meter"
    )
    share: float | None = Field(
        default=None, gt=0, le=1, description="the fraction of the from-meter's flow, (0, 1]"
    )
    since: date = Field(description="the day the exchange started (YYYY-MM-DD)")

    @model_validator(mode="after")
    def _one_amount(self) -> Exchange:
        if (self.quantity_per_day is None) == (self.share is None):
            raise ValueError("give exactly one of quantity_per_day or share")
        if self.quantity_per_day is not None and not math.isfinite(self.quantity_per_day):
            raise ValueError("quantity_per_day must be finite")
        return self


class LinkCapex(_Model):
    """The investment a candidate link needs (pipe, conveyor, boiler conversion) and, if the
    park has agreed them, its terms: who builds it and the price per unit between the two."""

    from_meter: Id = Field(description="the supplier's out-meter")
    to_meter: Id = Field(description="the receiver's in-meter (another tenant's)")
    capex_vnd: float = Field(default=0.0, ge=0, description="the investment, VND")
    built_by: Literal["receiver", "supplier"] = Field(
        default="receiver",
        description="who invests and is repaid out of its side",
        json_schema_extra=_meanings(
            {"receiver": "the receiver builds and owns the link", "supplier": "the supplier does"}
        ),
    )
    transfer_vnd_per_unit: float | None = Field(
        default=None,
        description="the price the receiver pays the supplier per supplier unit (negative: a"
        " gate fee the supplier pays); without it the net benefit is split by the knowledge"
        " base's share",
    )

    @model_validator(mode="after")
    def _finite(self) -> LinkCapex:
        if not math.isfinite(self.capex_vnd):
            raise ValueError("capex_vnd must be finite")
        if self.transfer_vnd_per_unit is not None and not math.isfinite(self.transfer_vnd_per_unit):
            raise ValueError("transfer_vnd_per_unit must be finite")
        return self


class Park(_Model):
    """One industrial park: its tenants, the exchanges already running, candidate links' cost."""

    id: Id = Field(description="unique in the file; the first level of every topic")
    name: str = Field(description="the park's name, for people")
    timezone: str = Field(
        default="Asia/Ho_Chi_Minh",
        description="IANA zone; local days for rollups use its standard offset",
    )
    province: str | None = Field(
        default=None,
        description="the province or city, for tariffs set by province (water), e.g. Dong Nai",
    )
    tenants: list[Tenant] = Field(default_factory=list, description="the park's companies")
    exchanges: list[Exchange] = Field(
        default_factory=list, description="exchanges already running (see Exchange)"
    )
    link_capex: list[LinkCapex] = Field(
        default_factory=list, description="investment candidate links need (see LinkCapex)"
    )

    @model_validator(mode="after")
    def _unique(self) -> Park:
        problems = []
        tenants = [t.id for t in self.tenants]
        problems += [f"tenant id {d!r} is used twice" for d in _dupes(tenants)]
        meters = [m.id for t in self.tenants for m in t.meters]
        problems += [f"meter id {d!r} is used twice in the park" for d in _dupes(meters)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _links(self) -> Park:
        """Exchanges and capex entries must join an out-meter to another tenant's in-meter."""
        where: dict[str, tuple[str, Direction]] = {
            m.id: (t.id, m.direction) for t in self.tenants for m in t.meters
        }
        problems: list[str] = []
        entries: list[tuple[str, int, Exchange | LinkCapex]] = [
            ("exchanges", i, e) for i, e in enumerate(self.exchanges)
        ]
        entries += [("link_capex", i, c) for i, c in enumerate(self.link_capex)]
        for section, i, e in entries:
            label = f"{section}[{i}] ({e.from_meter} -> {e.to_meter})"
            src, dst = where.get(e.from_meter), where.get(e.to_meter)
            if src is None:
                problems.append(f"{label}: from_meter {e.from_meter!r} is not a meter of this park")
            elif src[1] is not Direction.OUT:
                problems.append(f"{label}: from_meter {e.from_meter!r} is not an out-meter")
            if dst is None:
                problems.append(f"{label}: to_meter {e.to_meter!r} is not a meter of this park")
            elif dst[1] is not Direction.IN:
                problems.append(f"{label}: to_meter {e.to_meter!r} is not an in-meter")
            if src is not None and dst is not None and src[0] == dst[0]:
                problems.append(f"{label}: both meters belong to tenant {src[0]!r}")
        pairs = [f"{c.from_meter} -> {c.to_meter}" for c in self.link_capex]
        problems += [f"link_capex: {d} is listed twice" for d in _dupes(pairs)]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class RegistryFile(_Model):
    """A registry file: the parks one deployment serves."""

    version: Literal[1] = Field(default=1, description="the file format's version")
    parks: list[Park] = Field(description="the parks")

    @model_validator(mode="after")
    def _unique(self) -> RegistryFile:
        dupes = _dupes([p.id for p in self.parks])
        if dupes:
            raise ValueError("; ".join(f"park id {d!r} is used twice" for d in dupes))
        return self


def _dupes(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for i in ids:
        if i in seen and i not in out:
            out.append(i)
        seen.add(i)
    return out
