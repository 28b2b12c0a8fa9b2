"""Unit normalisation through pint.

Every resource family has one canonical unit (m3 for water and liquids, kWh for energy, t for
solid waste and by-products); rate meters use that unit per hour. pint does the conversion; we
cache the resulting factor per (unit, target) because pint quantities are slow on the hot path.
"""

from __future__ import annotations

from functools import lru_cache

import pint

from ingest.errors import UnitError

_UREG: pint.UnitRegistry[float] = pint.UnitRegistry()
_UREG.define("m3 = meter ** 3")
_UREG.define("Nm3 = meter ** 3")  # normal cubic metre, treated as a volume for gas flows

CANONICAL_BY_FAMILY: dict[str, str] = {
    "water": "m3",
    "liquid": "m3",
    "energy": "kWh",
    "waste": "t",
    "material": "t",
    "byproduct": "t",
}


def canonical_unit(resource: str, rate: bool = False) -> str:
    """The canonical unit of a dotted resource name such as ``water.potable``."""
    family = resource.split(".", 1)[0]
    try:
        unit = CANONICAL_BY_FAMILY[family]
    except KeyError:
        known = ", ".join(sorted(CANONICAL_BY_FAMILY))
        raise UnitError(f"unknown resource family {family!r} (known: {known})") from None
    return f"{unit}/h" if rate else unit


@lru_cache(maxsize=4096)
def factor(unit: str, target: str) -> float:
    """Multiply a value in ``unit`` by this to get it in ``target``."""
    try:
        return float(_UREG.Quantity(1.0, _parse(unit)).to(_parse(target)).magnitude)
    except pint.DimensionalityError as exc:
        raise UnitError(f"{unit!r} does not convert to {target!r}") from exc
    except (pint.UndefinedUnitError, AttributeError, TypeError, ValueError, AssertionError) as exc:
        raise UnitError(f"unknown unit {unit!r}") from exc
    except Exception as exc:  # pint's parser raises assorted errors on garbage input
        raise UnitError(f"unparseable unit {unit!r}") from exc


def _parse(unit: str) -> pint.Unit:
    if not unit or not unit.strip():
        raise ValueError("empty unit")
    return _UREG.Unit(unit)  # pint reads "t" as the metric tonne


def convert(value: float, unit: str, target: str) -> float:
    return value * factor(unit, target)
