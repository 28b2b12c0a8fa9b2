"""How far an opportunity's figures can be trusted: assumptions, spread, and what the window saw.

An operator putting a figure before a tenant or the park authority needs to say how firm it
is: a value that rests mostly on placeholder prices, a quantity that swings from day to day,
a month of data from one season. Pure: reads the valued row and the knowledge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parkflow.registry.schema import Meter, Tenant
from service.knowledge import Knowledge, Rule
from service.match.candidates import Sides
from service.match.displaced import displaced, tariff_for
from service.match.opportunity import Confidence

LOW_ABOVE = 0.5  # share of the value on assumptions above which confidence is low
HIGH_AT_MOST = 0.2
MIN_DAYS = 14


def confidence(
    row: Mapping[str, Any],
    rule: Rule,
    supply: Meter,
    demand: Meter,
    receiver: Tenant,
    knowledge: Knowledge,
    sides: Sides,
    year: int,
) -> Confidence:
    assumed = _assumed_parts(rule, supply, demand, receiver, knowledge, sides, year)
    parts = {
        "purchase": abs(float(row["purchase_vnd"])),
        "disposal": abs(float(row["supplier_vnd"])),
        "transport": abs(float(row["transport_vnd"])),
        "preprocessing": abs(float(row["prep_vnd"])),
    }
    total = sum(parts.values())
    share = sum(v for k, v in parts.items() if assumed[k]) / total if total > 0 else 0.0
    conversion = knowledge.source(rule.source).assumption and (
        rule.ratio != 1.0 or rule.max_demand_share < 1.0 or rule.heat_recovery is not None
    )
    n_days = max(1, sides.panel.n_days)
    mean = float(row["matched"]) / n_days
    park = float(row["park_vnd"])
    p10, p90 = float(row["matched_p10_per_day"]), float(row["matched_p90_per_day"])
    months = {d.month for d in sides.panel.days}
    seen = tuple(s.name for s in knowledge.seasons if months & set(s.months))
    every = tuple(s.name for s in knowledge.seasons)
    if share > LOW_ABOVE or sides.panel.n_days < MIN_DAYS:
        level = "low"
    elif share <= HIGH_AT_MOST and not conversion and len(seen) == len(every):
        level = "high"
    else:
        level = "medium"
    return Confidence(
        level=level,
        assumption_share=share,
        conversion_assumed=conversion,
        matched_p10_per_day=p10,
        matched_p90_per_day=p90,
        park_vnd_p10=park * p10 / mean if mean > 0 else 0.0,
        park_vnd_p90=park * p90 / mean if mean > 0 else 0.0,
        days=sides.panel.n_days,
        seasons=seen,
        all_seasons=every,
    )


def _assumed_parts(
    rule: Rule,
    supply: Meter,
    demand: Meter,
    receiver: Tenant,
    knowledge: Knowledge,
    sides: Sides,
    year: int,
) -> dict[str, bool]:
    """Whether each part of the value rests on a figure marked as an assumption."""

    def assumption(source: str | None) -> bool:
        return source is not None and knowledge.source(source).assumption

    province = sides.park.province
    bought = displaced(demand, receiver, knowledge, year, province)
    tariff = tariff_for(bought, receiver, knowledge)
    if bought.contract:
        purchase = False  # the tenant's own contract price, from the registry
    elif tariff is not None:
        purchase = assumption(tariff.source) or (
            receiver.supply_voltage is None and assumption(knowledge.matching.source)
        )
    else:
        price = knowledge.price(bought.resource, province)
        purchase = price is not None and assumption(price.source)
    if bought.default or bought.efficiency_assumed:
        purchase = True
    if supply.destination_vnd_per_unit is not None:
        disposal = False  # the registry states what the tenant pays
    else:
        cost = knowledge.disposal_cost(supply.destination, supply.resource)
        disposal = cost is not None and assumption(cost.source)
    return {
        "purchase": purchase,
        "disposal": disposal,
        "transport": assumption(knowledge.mode(rule.transport).source),
        "preprocessing": rule.preprocessing is not None and assumption(rule.preprocessing.source),
    }
