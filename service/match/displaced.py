"""What a receiver stops buying when a substitute arrives, and what that is worth. Pure.

Steam or hot water a tenant raises itself saves the fuel its own boiler burns for it: the
fuel's price and emission factor divided by the boiler's efficiency, taken from the tenant's
equipment in the registry. Steam valued at a park-wide default would credit every boiler as if
it burned coal (a gas boiler emits about half as much per kWh of steam), so the default is used
only where the registry is silent, and the opportunity says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from parkflow.registry.schema import Meter, Park, Tenant
from parkflow.units import canonical_unit
from service.detect.text import fmt_vnd
from service.knowledge import Knowledge
from service.knowledge.entries import Tariff

# Heat a tenant may raise itself: valued from its equipment, else at a stated default.
HEAT_PRODUCTS = frozenset({"energy.steam", "energy.hot_water"})


@dataclass(frozen=True, slots=True)
class Displaced:
    """The purchase one receiver meter's intake stands for, per unit of that intake."""

    resource: str  # what is bought: the meter's resource, or the fuel its boiler burns
    vnd_per_unit: float
    t_co2e_per_unit: float
    equipment: str | None = None  # the boiler or heater behind the meter, when named
    efficiency: float | None = None
    efficiency_assumed: bool = False
    default: bool = False  # heat with no equipment named: the resource's default figures
    contract: bool = False  # the price is the tenant's own contract, from the registry

    def key(self) -> tuple[object, ...]:
        """What decides the sources and notes of a value (for memoising them)."""
        return (
            self.resource,
            self.equipment is None,
            self.efficiency_assumed,
            self.default,
            self.contract,
        )


def displaced(
    meter: Meter, tenant: Tenant, knowledge: Knowledge, year: int, province: str | None = None
) -> Displaced:
    made = displaced_made(meter, tenant, knowledge, year, province)
    if made is not None:  # heat it raises itself: its boiler's fuel
        return made
    if meter.price_vnd_per_unit is not None:
        return Displaced(
            resource=meter.resource,
            vnd_per_unit=meter.price_vnd_per_unit,
            t_co2e_per_unit=knowledge.resource_emission(meter.resource, year)[0],
            contract=True,
        )
    return Displaced(
        resource=meter.resource,
        vnd_per_unit=_price(meter.resource, knowledge, province),
        t_co2e_per_unit=knowledge.resource_emission(meter.resource, year)[0],
        default=meter.resource in HEAT_PRODUCTS,
    )


@dataclass(frozen=True, slots=True)
class Seller:
    """A tenant that sells the receiver this resource today through a registered exchange:
    what an opportunity delivers displaces that sale first. Its loss per unit is the price
    less what making the unit costs it (its equipment's fuel / efficiency); with no equipment
    named its margin is unknown and counted as none (said in the notes)."""

    tenant: Tenant
    meter: Meter
    cost: Displaced | None  # None: no equipment named, margin unknown


def sellers(park: Park, knowledge: Knowledge, year: int) -> dict[str, Seller]:
    """For each in-meter a registered exchange feeds, the tenant selling through it (the first
    such exchange), built once per park: matching asks for every candidate."""
    where = {m.id: (t, m) for t in park.tenants for m in t.meters}
    out: dict[str, Seller] = {}
    for e in park.exchanges:
        if e.to_meter in out or e.from_meter not in where:
            continue
        t, m = where[e.from_meter]
        out[e.to_meter] = Seller(t, m, displaced_made(m, t, knowledge, year, park.province))
    return out


def displaced_made(
    meter: Meter, tenant: Tenant, knowledge: Knowledge, year: int, province: str | None
) -> Displaced | None:
    """What making a unit of a meter's resource costs its tenant (its equipment's fuel over
    efficiency): a receiver's own steam, a seller's; None when no equipment with a fuel is
    named behind the meter."""
    for e in tenant.equipment_of(meter):
        if e.fuel is None or e.output != meter.resource:
            continue
        eff = e.efficiency if e.efficiency is not None else knowledge.matching.default_efficiency
        return Displaced(
            resource=e.fuel,
            vnd_per_unit=_price(e.fuel, knowledge, province) / eff,
            t_co2e_per_unit=knowledge.resource_emission(e.fuel, year)[0] / eff,
            equipment=e.id,
            efficiency=eff,
            efficiency_assumed=e.efficiency is None,
        )
    return None


def tariff_for(bought: Displaced, receiver: Tenant, knowledge: Knowledge) -> Tariff | None:
    """The time-of-use tariff a purchase is valued at: none for a contract price or a fuel its
    boiler burns instead."""
    if bought.contract:
        return None
    return knowledge.tariff(bought.resource, receiver.supply_voltage)


def displaced_phrase(d: Displaced, meter: Meter, tenant: Tenant, knowledge: Knowledge) -> str:
    """How the receiver's side was valued, for the explanation."""
    what = knowledge.label(meter.resource)
    if d.contract:
        return (
            f"{what} valued at {tenant.name}'s contract price,"
            f" {fmt_vnd(d.vnd_per_unit)}/{canonical_unit(meter.resource)}"
        )
    if d.equipment is not None and d.efficiency is not None:
        eff = f"{d.efficiency:.0%} efficient" + (" (assumed)" if d.efficiency_assumed else "")
        return (
            f"{what} valued as the {knowledge.label(d.resource)} {tenant.name}'s {d.equipment}"
            f" ({eff}) burns for it"
        )
    if d.default:
        return (
            f"{what} valued at the default for {what} bought in the park: the registry names"
            f" no boiler or fuel behind {meter.id}"
        )
    return ""


def _price(resource: str, knowledge: Knowledge, province: str | None) -> float:
    p = knowledge.price(resource, province)
    return p.vnd_per_unit if p is not None else 0.0
