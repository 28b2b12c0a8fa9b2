"""Units: canonical units by resource family, conversion factors, and what is refused."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parkflow.errors import UnitError
from parkflow.units import canonical_unit, convert, factor

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- units -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "rate", "unit"),
    [
        ("water.potable", False, "m3"),
        ("water.wastewater", True, "m3/h"),
        ("liquid.acid", False, "m3"),
        ("energy.electricity", False, "kWh"),
        ("energy.steam", True, "kWh/h"),
        ("waste.sludge", False, "t"),
        ("material.cement", False, "t"),
        ("byproduct.gypsum", True, "t/h"),
    ],
)
def test_canonical_unit_by_family(resource: str, rate: bool, unit: str) -> None:
    assert canonical_unit(resource, rate=rate) == unit


def test_canonical_unit_of_an_unknown_family() -> None:
    with pytest.raises(UnitError, match="unknown resource family 'gas'"):
        canonical_unit("gas.natural")


@pytest.mark.parametrize(
    ("unit", "target", "expected"),
    [
        ("m3", "m3", 1.0),
        ("L", "m3", 0.001),
        ("kL", "m3", 1.0),
        ("Nm3", "m3", 1.0),
        ("MWh", "kWh", 1000.0),
        ("GJ", "kWh", 1e9 / 3.6e6),
        ("kW", "kWh/h", 1.0),
        ("MW", "kWh/h", 1000.0),
        ("L/s", "m3/h", 3.6),
        ("m3/h", "m3/h", 1.0),
        ("kg", "t", 0.001),
        ("t", "kg", 1000.0),  # t is the metric tonne, not a ton
        ("t/h", "t/h", 1.0),
    ],
)
def test_factor(unit: str, target: str, expected: float) -> None:
    assert factor(unit, target) == pytest.approx(expected, rel=1e-12)
    assert convert(2.5, unit, target) == pytest.approx(2.5 * expected, rel=1e-12)


@pytest.mark.parametrize(
    ("unit", "target", "message"),
    [
        ("kWh", "m3", "does not convert"),
        ("kW", "kWh", "does not convert"),  # a rate is not a quantity
        ("m3", "m3/h", "does not convert"),
        ("bananas", "m3", "unknown unit"),
        ("", "m3", "unknown unit"),
        ("   ", "m3", "unknown unit"),
        ("m3", "", "unknown unit"),
    ],
)
def test_factor_errors(unit: str, target: str, message: str) -> None:
    with pytest.raises(UnitError, match=message):
        factor(unit, target)


@SETTINGS
@given(st.text(max_size=30))
def test_factor_of_any_text_is_a_positive_finite_number_or_a_unit_error(unit: str) -> None:
    for target in ("m3", "kWh/h"):
        try:
            f = factor(unit, target)
        except UnitError:
            continue
        assert math.isfinite(f) and f > 0, (unit, target, f)
