"""Unit normalisation through pint.

Every resource family has one canonical unit (m3 for water and liquids, kWh for energy, t for
solid waste and by-products); rate meters use that unit per hour. A fuel is energy but is
metered as it is bought, by mass or volume (a biomass boiler's wood in tonnes, gas in m3): an
energy meter in a mass or volume unit is stored in t or m3 (its *stored unit*), and detection
turns it into kWh with the fuel's heating value from the knowledge base. pint does the conversion; we
cache the resulting factor per (unit, target) because pint quantities are slow on the hot path.

A unit string comes from the gateway, so it is checked against a short vocabulary pattern before
pint sees it: pint evaluates what it is given, and the unit ``10**10**7*m`` in a 354-byte message
held the GIL for up to a minute in big-integer arithmetic, a long run of letters cost seconds
(its prefix search is quadratic), and junk such as ``m3\\`` read as m3. What the pattern admits
(a few unit names with single-digit exponents) pint parses in well under a millisecond.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pint

from parkflow.errors import UnitError

_UREG: pint.UnitRegistry[float] = pint.UnitRegistry()
_UREG.define("m3 = meter ** 3")
_UREG.define("Nm3 = meter ** 3")  # normal cubic metre, treated as a volume for gas flows

MAX_UNIT_LEN = 32
# A unit name of ASCII letters with an optional single exponent digit (m3, m^3), names joined
# by / * . or the middle dot: no number literals, no **, no spaces, nothing pint would evaluate.
_TERM = r"[A-Za-z]+(?:\^?[0-9])?"
_UNIT_PATTERN = re.compile(rf"{_TERM}(?:[/*.\u00b7]{_TERM})*")
UNIT_SYNTAX = (
    f"a unit is up to {MAX_UNIT_LEN} characters of unit names (letters, each with at most one"
    " exponent digit: m3 or m^3) joined by /, *, . or \u00b7 (m3/h, kW\u00b7h)"
)

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


# Stored units an energy meter may have besides kWh, and the basis a heating value is quoted on.
FUEL_BASES: dict[str, str] = {"t": "mass", "m3": "volume"}


def stored_unit(resource: str, unit: str, rate: bool = False) -> str:
    """The unit a meter's readings are stored in: the family's canonical unit, except that an
    energy meter reporting a mass or volume (a fuel) is stored in t or m3.

    Raises ``UnitError`` when ``unit`` fits none of them, naming what would.
    """
    _check_syntax(unit)
    canonical = canonical_unit(resource, rate=rate)
    candidates = [canonical]
    if resource.split(".", 1)[0] == "energy":
        candidates += [f"{u}/h" if rate else u for u in FUEL_BASES]
    for target in candidates:
        try:
            factor(unit, target)
        except UnitError:
            continue
        return target
    wanted = " or ".join(repr(c) for c in candidates)
    raise UnitError(f"{_shown(unit)} does not convert to {wanted}")


@lru_cache(maxsize=4096)
def factor(unit: str, target: str) -> float:
    """Multiply a value in ``unit`` by this to get it in ``target``."""
    _check_syntax(unit)
    _check_syntax(target)
    try:
        return float(_UREG.Quantity(1.0, _parse(unit)).to(_parse(target)).magnitude)
    except pint.DimensionalityError as exc:
        raise UnitError(f"{unit!r} does not convert to {target!r}") from exc
    except (pint.UndefinedUnitError, AttributeError, TypeError, ValueError, AssertionError) as exc:
        raise UnitError(f"unknown unit {unit!r}") from exc
    except Exception as exc:  # pint's parser raises assorted errors on garbage input
        raise UnitError(f"unparseable unit {unit!r}") from exc


def _check_syntax(unit: str) -> None:
    # The length test comes first so the regex never scans a huge string.
    if len(unit) > MAX_UNIT_LEN or _UNIT_PATTERN.fullmatch(unit) is None:
        raise UnitError(f"unknown unit {_shown(unit)}: {UNIT_SYNTAX}")


def _shown(unit: str) -> str:
    """The unit for a message: a hostile one can be 512 KiB long."""
    if len(unit) <= 2 * MAX_UNIT_LEN:
        return repr(unit)
    return f"{unit[:MAX_UNIT_LEN]!r}... ({len(unit)} characters)"


def _parse(unit: str) -> pint.Unit:
    return _UREG.Unit(unit)  # pint reads "t" as the metric tonne


def convert(value: float, unit: str, target: str) -> float:
    return value * factor(unit, target)
