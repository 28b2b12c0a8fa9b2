"""What matching hands back: a ranked, explained link from a surplus to a receiver."""

from __future__ import annotations

from dataclasses import dataclass

from service.match.finance import Finance


@dataclass(frozen=True, slots=True)
class Value:
    """Estimated annual benefits of one link, baseline minus alternative.

    Money per party is before any transfer price: the supplier's line is the disposal cost it
    stops paying (negative when it gives up a sale), the receiver's is the purchase it avoids
    less transport and pre-processing. A price between them moves money from one line to the
    other; the park total does not change.
    """

    # money in integer dong, as the parties book it (floats stay inside the sizing arrays)
    supplier_vnd_per_year: int
    receiver_vnd_per_year: int
    park_vnd_per_year: int
    water_saved_m3_per_year: float
    co2e_avoided_t_per_year: float
    landfill_diverted_t_per_year: float
    capex_vnd: int | None
    payback_years: float | None
    sources: tuple[str, ...]  # knowledge source ids behind the figures used
    assumptions: tuple[str, ...]  # those of them that are marked assumptions
    notes: tuple[str, ...]  # figures that were missing and counted as zero
    finance: Finance | None = None  # each party after the transfer price; the investor's NPV
    # a tenant whose registered sale to the receiver the link displaces, and what it loses
    seller: str | None = None
    seller_vnd_per_year: int = 0


@dataclass(frozen=True, slots=True)
class Confidence:
    """How far an opportunity's figures can be trusted, for a reader to weigh them.

    ``assumption_share``: the share of the value's parts (avoided purchase, avoided disposal,
    transport, pre-processing) whose figure is a marked assumption. The P10-P90 range is of
    the quantity matched per day (per coupling bucket, spread over its days) over the window,
    and the park value scaled by it. ``seasons``: the seasons the window's days fall in, of all
    the knowledge names; a window inside one season has not seen the other.
    """

    level: str  # high, medium or low
    assumption_share: float
    conversion_assumed: bool  # the quantity rests on an assumed ratio or blend share
    matched_p10_per_day: float
    matched_p90_per_day: float
    park_vnd_p10: float
    park_vnd_p90: float
    days: int
    seasons: tuple[str, ...]
    all_seasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Opportunity:
    """One candidate exchange; quantities per day are window averages in canonical units."""

    id: str  # park:from_meter>to_meter:rule, stable across runs
    rank: int
    park: str
    rule: str
    surplus_id: str
    from_tenant: str
    from_meter: str
    supply_resource: str
    supply_unit: str
    to_tenant: str
    to_meter: str
    demand_resource: str
    demand_unit: str
    uses: tuple[str, ...]  # receiver uses replaced; empty when the rule takes the whole meter
    distance_m: float
    distance_assumed: bool
    coupling: str  # hour, day, week or month
    days: int  # days in the window
    supply_p50_per_day: float
    supply_days_present: int
    demand_per_day: float  # mean daily intake for the uses the rule may replace
    matched_per_day: float  # receiver units replaced
    supply_used_per_day: float  # supplier units taken
    buckets_matched: int  # coupling buckets where both sides met
    n_buckets: int
    days_matched: int  # local days with a matched hour or day (0 for week and month coupling)
    competing_receivers: int  # other viable receivers of the same surplus (kept or not)
    value: Value
    explanation: str
    # what the law asks (the rule's legal screen): allowed, conditional, permit, not_allowed;
    # "unknown" when the rule states none
    legal_status: str = "unknown"
    legal: str = ""
    # quality the rule needs that the registry does not declare: to confirm before agreeing
    checks: tuple[str, ...] = ()
    confidence: Confidence | None = None


def opportunity_id(park: str, from_meter: str, to_meter: str, rule: str) -> str:
    return f"{park}:{from_meter}>{to_meter}:{rule}"
