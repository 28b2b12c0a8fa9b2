"""Units are a short vocabulary, checked before pint sees them: a unit string once stalled the
ingestor for a minute."""

from __future__ import annotations

import time

import pytest

from parkflow.errors import UnitError
from parkflow.registry import SAMPLE_REGISTRY, load_registry
from parkflow.units import factor
from service.knowledge import load_knowledge

# --- units: a short vocabulary, checked before pint sees it -----------------------------------

# Every unit the registries, knowledge files, simulator and tests use, and the spellings of
# exponents and products the pattern promises.
PROJECT_UNITS = [
    ("m3", "m3", 1.0),
    ("L", "m3", 0.001),
    ("kL", "m3", 1.0),
    ("Nm3", "m3", 1.0),
    ("kWh", "kWh", 1.0),
    ("MWh", "kWh", 1000.0),
    ("GJ", "kWh", 1e9 / 3.6e6),
    ("kW", "kWh/h", 1.0),
    ("MW", "kWh/h", 1000.0),
    ("kWh/h", "kWh/h", 1.0),
    ("m3/h", "m3/h", 1.0),
    ("L/s", "m3/h", 3.6),
    ("Nm3/h", "m3/h", 1.0),
    ("t", "t", 1.0),
    ("kg", "t", 0.001),
    ("t/h", "t/h", 1.0),
    ("kg/h", "t/h", 0.001),
    ("m^3", "m3", 1.0),
    ("km^3", "m3", 1e9),
    ("m^3/h", "m3/h", 1.0),
    ("kW*h", "kWh", 1.0),
    ("kW.h", "kWh", 1.0),
    ("kW·h", "kWh", 1.0),
    ("MW·h", "kWh", 1000.0),
]


@pytest.mark.parametrize(("unit", "target", "expected"), PROJECT_UNITS)
def test_the_project_units_still_convert(unit: str, target: str, expected: float) -> None:
    assert factor(unit, target) == pytest.approx(expected, rel=1e-12)


def test_every_registered_and_knowledge_unit_passes_the_pattern() -> None:
    """The shipped files load: each meter unit and each ``per`` went through factor()."""
    reg = load_registry(SAMPLE_REGISTRY)
    units = {m.meter.unit for m in reg.meters()}
    assert {"m3", "L", "kW", "kWh", "t", "kg"} <= units
    knowledge = load_knowledge()
    assert knowledge.prices  # parsed and validated, every `per` included


PATHOLOGICAL_UNITS = [
    "10**10**7*m",  # stalled the ingestor up to a minute in big-integer arithmetic
    "L" * 40000,  # seconds to tens of seconds: quadratic in pint
    "m3\\",  # accepted as m3
    "m**3",
    "m3**2",
    "2*m",
    "1e3*L",
    "1000L",
    "m3.5",
    "m^-1",
    "m^33",
    "m33",
    "(m3)",
    "m3/",
    "/m3",
    "m3//h",
    "m3**",
    " m3",
    "m3 ",
    "m 3",
    "m3\n",
    "m3\t",
    "m\u00a03",  # a no-break space
    "ｍ3",  # full-width letter
    "m³",  # superscript digit
    "m3_h",
    "m3;h",
    "m3,h",
    "L" * 33,  # over the length limit, however innocent
    "",
    "   ",
]


def _unit_id(unit: str) -> str:
    return repr(unit) if len(unit) <= 20 else f"{unit[:8]!r}...({len(unit)} chars)"


@pytest.mark.parametrize("unit", PATHOLOGICAL_UNITS, ids=_unit_id)
def test_pathological_units_are_refused_before_pint(unit: str) -> None:
    start = time.perf_counter()
    with pytest.raises(UnitError, match=r"^unknown unit .*letters") as info:
        factor(unit, "m3")
    elapsed = time.perf_counter() - start
    print(f"{unit[:20]!r} (len {len(unit)}) refused in {elapsed * 1e3:.3f} ms")
    assert len(str(info.value)) < 400, "the message must not echo a huge unit"


def test_a_pathological_target_is_refused_too() -> None:
    with pytest.raises(UnitError, match=r"^unknown unit .*letters"):
        factor("m3", "10**10**7*m")


def test_factor_keeps_its_cache() -> None:
    factor("L", "m3")
    hits = factor.cache_info().hits
    factor("L", "m3")
    assert factor.cache_info().hits == hits + 1
