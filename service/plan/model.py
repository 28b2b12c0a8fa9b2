"""What the plan takes (a park's candidate links and what each side holds, bucket by bucket)
and what it gives back (the links it runs, with quantities and value, and the park's totals)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

COUPLINGS = ("hour", "day", "week", "month")  # finest first; each is made of whole finer buckets


@dataclass(frozen=True, eq=False)
class Node:
    """One side that links share: a surplus (supplier units) or a receiver's replaceable
    demand (receiver units), as a quantity per bucket of each coupling its links use."""

    key: str
    side: Literal["supply", "demand"]
    capacity: Mapping[str, FloatArray]  # coupling -> quantity per bucket


@dataclass(frozen=True, eq=False)
class LinkInput:
    """A candidate link as matching sized it alone, with its per-unit value.

    ``bounds`` is what the link could carry alone in each bucket of its coupling (receiver
    units); values are per receiver unit delivered; ``annual_capex_vnd`` is the investment
    spread over its life (0 when the link needs none, then it is no yes/no decision).
    """

    id: str
    supply: str  # Node key
    demand: str  # Node key
    coupling: str
    ratio: float  # receiver units per supplier unit, transport losses included
    bounds: FloatArray
    vnd_per_unit: float
    co2e_t_per_unit: float
    water_m3_per_unit: float
    landfill_t_per_unit: float
    capex_vnd: float | None
    annual_capex_vnd: float


@dataclass(frozen=True, slots=True)
class Chain:
    """A surplus made from a receiver's own intake (``Meter.derived_from``): each receiver unit
    the plan delivers into ``demand`` takes ``per_unit`` supplier units out of ``supply``.

    Held as: what the surplus's links take plus ``per_unit`` times what the demand's links
    deliver stays within the surplus, bucket by bucket. It is conservative where the surplus
    is not handed out: displacing more of the intake than the stream's surplus would leave
    the tenant's own use of that stream short, which the plan does not assume it can cover.
    """

    supply: str  # Node key of the derived surplus
    demand: str  # Node key of the intake it is made from
    per_unit: float


@dataclass(frozen=True, eq=False)
class ParkProblem:
    """Everything the plan needs of one park; ``starts`` are the first panel hour of each
    bucket per coupling, ``per_year`` scales the window to a year."""

    park: str
    starts: Mapping[str, IntArray]
    nodes: Mapping[str, Node]
    links: tuple[LinkInput, ...]
    n_days: int
    per_year: float
    chains: tuple[Chain, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanLink:
    """A link the plan runs; quantities per day are window averages in canonical units."""

    opportunity_id: str
    park: str
    matched_per_day: float  # receiver units delivered
    supply_used_per_day: float  # supplier units taken
    alone_per_day: float  # what the link would carry with no competitor
    built: bool | None  # None when the link needs no investment
    # money in integer dong, as reported (the solver works in floats)
    capex_vnd: int | None
    annual_capex_vnd: int  # charged only when built
    park_vnd_per_year: int  # flow value less the annualised investment
    co2e_avoided_t_per_year: float
    water_saved_m3_per_year: float
    landfill_diverted_t_per_year: float


@dataclass(frozen=True, slots=True)
class Plan:
    """The park's plan: the links it runs and the totals every report shows."""

    links: tuple[PlanLink, ...]
    park_vnd_per_year: int
    co2e_avoided_t_per_year: float
    water_saved_m3_per_year: float
    landfill_diverted_t_per_year: float
    capex_vnd: int  # investment of the links built
    status: str  # optimal, or what kept a component from it
    components: int  # independent groups of links (sharing a surplus or a receiver)
    solver_calls: int
    seconds: float
    # how firm the totals are, from the links' own confidence (``with_confidence``): the
    # value-weighted share resting on assumed figures, and the park value at each link's
    # P10 and P90 quantity
    assumption_share: float | None = None
    park_vnd_p10: int | None = None
    park_vnd_p90: int | None = None


class _Confident(Protocol):
    """What the plan reads of a ranked opportunity (the plan room does not import matching)."""

    @property
    def id(self) -> str: ...

    @property
    def matched_per_day(self) -> float: ...

    @property
    def confidence(self) -> Any: ...


def with_confidence(plan: Plan, opportunities: Sequence[_Confident]) -> Plan:
    """The plan with its confidence: each planned link weighs its opportunity's assumption
    share by the value the plan gives it, and scales to its P10 and P90 days."""
    by_id = {o.id: o for o in opportunities}
    weight = share = p10 = p90 = 0.0
    for link in plan.links:
        o = by_id.get(link.opportunity_id)
        c = o.confidence if o is not None else None
        if o is None or c is None:
            continue
        value = float(link.park_vnd_per_year)
        weight += abs(value)
        share += abs(value) * c.assumption_share
        mean = o.matched_per_day
        p10 += value * (c.matched_p10_per_day / mean if mean > 0 else 1.0)
        p90 += value * (c.matched_p90_per_day / mean if mean > 0 else 1.0)
    return replace(
        plan,
        assumption_share=share / weight if weight > 0 else None,
        park_vnd_p10=round(p10),
        park_vnd_p90=round(p90),
    )
