"""Fuels metered by mass or volume, the equipment that burns them, and the heating values that
turn them into kWh: the registry's and the knowledge base's checks, and the conversion."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from parkflow.errors import UnitError
from parkflow.registry.schema import Meter, Tenant
from parkflow.units import stored_unit
from service.detect import kwh_factors
from service.knowledge import DEFAULT_KNOWLEDGE, Knowledge, load_knowledge
from tests.support.registries import build, meter, park, tenant


@pytest.mark.parametrize(
    ("resource", "unit", "rate", "stored"),
    [
        ("energy.biomass", "t", False, "t"),
        ("energy.biomass", "kg", False, "t"),
        ("energy.natural_gas", "m3", False, "m3"),
        ("energy.diesel", "L", False, "m3"),
        ("energy.natural_gas", "m3/h", True, "m3/h"),
        ("energy.coal", "kg/h", True, "t/h"),
        ("energy.steam", "GJ", False, "kWh"),
        ("water.potable", "L", False, "m3"),
    ],
)
def test_a_meter_is_stored_in_its_family_unit_or_its_fuel_basis(
    resource: str, unit: str, rate: bool, stored: str
) -> None:
    assert stored_unit(resource, unit, rate=rate) == stored


@pytest.mark.parametrize(
    ("resource", "unit", "rate"),
    [("water.potable", "kg", False), ("energy.steam", "kW", False), ("waste.sludge", "kWh", False)],
)
def test_a_unit_outside_the_family_and_its_fuel_bases_is_refused(
    resource: str, unit: str, rate: bool
) -> None:
    with pytest.raises(UnitError, match="does not convert"):
        stored_unit(resource, unit, rate=rate)


def test_a_fuel_meter_says_its_basis() -> None:
    m = Meter(id="f", resource="energy.biomass", direction="in", unit="kg", kind="delta")
    assert (m.canonical_unit, m.fuel_basis) == ("t", "mass")
    assert m.to_canonical == pytest.approx(1e-3)
    steam = Meter(id="s", resource="energy.steam", direction="in", unit="MWh", kind="delta")
    assert steam.fuel_basis is None


def _tenant(**equipment: Any) -> dict[str, Any]:
    return {
        "id": "t",
        "name": "T",
        "meters": [meter("fuel", "energy.coal", "in", "t", "delta")],
        "equipment": [{"id": "b", "type": "boiler", **equipment}],
    }


@pytest.mark.parametrize(
    ("equipment", "problem"),
    [
        ({"meters": ["nope"]}, "meter 'nope' is not a meter of tenant 't'"),
        ({"fuel": "waste.sludge"}, "is not an energy resource"),
        ({"type": "rocket"}, "boiler"),
        ({"accepts": ["plutonium"]}, "wood_waste"),
        ({"accepts": ["coal", "coal"]}, "accepts lists a feed twice"),
        ({"efficiency": 0}, "greater than 0"),
    ],
)
def test_equipment_is_checked(equipment: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Tenant.model_validate(_tenant(**equipment))


def test_equipment_serves_its_meters_or_what_it_makes() -> None:
    t = Tenant.model_validate(_tenant(fuel="energy.coal", meters=["fuel"]))
    fuel = t.meters[0]
    assert [e.id for e in t.equipment_of(fuel)] == ["b"]
    untied = Tenant.model_validate(_tenant(fuel="energy.coal"))
    steam = Meter(id="st", resource="energy.steam", direction="in", unit="kWh", kind="delta")
    assert untied.equipment[0].serves(steam) and untied.equipment[0].serves(fuel)
    assert untied.equipment[0].output == "energy.steam"


def _knowledge(**entry: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_KNOWLEDGE.read_text(encoding="utf-8"))
    data["heating_values"].append(entry)
    return data


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"resource": "energy.peat", "basis": "mass", "value": 9.8, "unit": "MJ/m3"}, "per mass"),
        ({"resource": "waste.peat", "basis": "mass", "value": 9.8, "unit": "MJ/kg"}, "energy"),
        ({"resource": "energy.lpg", "basis": "mass", "value": 46, "unit": "MJ/kg"}, "twice"),
    ],
)
def test_heating_values_are_checked(entry: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Knowledge.model_validate(_knowledge(**entry, source="ref-ipcc-2006-ncv"))


def test_fuel_meters_get_kwh_factors_or_are_named_as_left_out() -> None:
    reg = build(
        park(
            "p",
            tenant(
                "a",
                meter("wood", "energy.biomass", "in", "kg", "delta"),
                meter("gas", "energy.natural_gas", "in", "m3", "cumulative"),
                meter("heat", "energy.steam", "in", "MWh", "delta"),
            ),
        )
    )
    factors, problems = kwh_factors(reg, load_knowledge())
    assert factors["wood"] == pytest.approx(15.6e3 / 3.6)  # kWh per stored t
    assert "heat" not in factors
    # natural gas by volume has no heating value shipped: left out, and said so
    assert factors["gas"] != factors["gas"]  # NaN
    assert problems == [
        "meter gas (p/a): energy.natural_gas metered in m3 needs a heating value by volume in"
        " the knowledge (heating_values); left out of detection"
    ]
