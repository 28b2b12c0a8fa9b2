"""Matching end to end: candidates, sizing, value, ranking and explanations, park by park."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from parkflow.registry.registry import Registry
from parkflow.registry.schema import LinkCapex, Meter, Park, Tenant
from parkflow.units import canonical_unit
from service.detect.panel import Panel
from service.detect.surplus import EPS, Surplus, available_streams
from service.detect.text import fmt_vnd
from service.knowledge import Knowledge, Rule
from service.knowledge.entries import LEGAL_STATUS_TEXT, TOU_BANDS, most_specific
from service.match.candidates import (
    Sides,
    barred_by_law,
    build_sides,
    candidate_pairs,
    checks_to_make,
    demand_mean,
    rule_uses,
    size_pairs,
)
from service.match.confidence import confidence
from service.match.displaced import Seller, displaced, displaced_phrase, sellers, tariff_for
from service.match.explain import explain, legal_text
from service.match.finance import Finance, Terms, split
from service.match.links import park_problem
from service.match.opportunity import Opportunity, opportunity_id
from service.match.value import SourceNotes, add_values, describe_value, value_sources
from service.plan import ParkProblem


@dataclass(frozen=True, slots=True)
class Matches:
    """The ranked alternatives, and per park the plan's input built from the same table."""

    opportunities: list[Opportunity]
    problems: list[ParkProblem]


def match(
    surpluses: Sequence[Surplus],
    panels: Mapping[str, Panel],
    registry: Registry,
    knowledge: Knowledge,
    now: pd.Timestamp,
    *,
    limit: int | None = None,
) -> list[Opportunity]:
    """Ranked opportunities for the given surpluses (``match_all`` without the plan's input)."""
    return match_all(surpluses, panels, registry, knowledge, now, limit=limit).opportunities


def match_all(
    surpluses: Sequence[Surplus],
    panels: Mapping[str, Panel],
    registry: Registry,
    knowledge: Knowledge,
    now: pd.Timestamp,
    *,
    limit: int | None = None,
) -> Matches:
    """Ranked opportunities for the given surpluses, best annual park value first, and each
    park's plan input over all of them (``limit`` cuts the list, not the plan).

    ``panels`` are the ones the surpluses were found in (``find_surpluses``): sizing reads the
    same hours the surpluses were judged on. Each receiver is sized independently for each
    surplus (no allocation of one stream among several receivers); the best
    ``matching.max_receivers_per_surplus`` are kept and ``competing_receivers`` counts the
    other viable ones; these are alternatives, which ``service.plan`` allocates. CO2e uses
    emission factors of ``now``'s year.
    """
    year = int(now.tz_convert("UTC").year)
    parks: list[Sides] = []
    tables: list[pd.DataFrame] = []
    problems: list[ParkProblem] = []
    for park_id in sorted({s.park for s in surpluses}):
        if park_id not in panels or park_id not in registry.parks:
            continue
        park = registry.parks[park_id]
        streams = available_streams(panels[park_id], park, knowledge)
        sides = build_sides(park, panels[park_id], streams, list(surpluses), knowledge)
        table = _park_table(sides, knowledge, year)
        if not table.empty:
            tables.append(table.assign(park_index=len(parks)))
            parks.append(sides)
            problems.append(park_problem(sides, table, knowledge))
    if not tables:
        return Matches([], [])
    ranked = pd.concat(tables, ignore_index=True)
    ranked["neg_value"] = -ranked["park_vnd"]
    ranked["neg_co2e"] = -ranked["co2e_t"]
    ranked = ranked.sort_values(["neg_value", "neg_co2e", "id"], kind="stable")
    if limit is not None:
        ranked = ranked.head(limit)
    cache: dict[tuple[object, ...], SourceNotes] = {}
    rules = knowledge.active_rules()
    columns = {c: ranked[c].to_numpy() for c in _ROW_COLUMNS}
    by_park = [sellers(p.park, knowledge, year) for p in parks]
    capex_of = [_link_capex(p.park) for p in parks]
    opportunities = [
        _opportunity(
            i + 1,
            parks[int(columns["park_index"][i])],
            _Row(columns, i),
            rules,
            knowledge,
            year,
            cache,
            by_park[int(columns["park_index"][i])],
            capex_of[int(columns["park_index"][i])],
        )
        for i in range(len(ranked))
    ]
    return Matches(opportunities, problems)


_ROW_COLUMNS = (
    "park_index", "id", "s", "d", "rule", "eff_ratio", "matched", "distance_m",
    "distance_assumed", "coupling", "demand_mean", "buckets_matched", "n_buckets",
    "days_matched", "competing", "supplier_vnd", "receiver_vnd", "park_vnd", "water_m3",
    "co2e_t", "landfill_t", "capex_vnd", "payback_years", "receiver_price", "band_off_peak",
    "band_normal", "band_peak", "purchase_vnd", "transport_vnd", "prep_vnd",
    "matched_p10_per_day", "matched_p90_per_day",
    "supply_per_year",
    "seller_vnd",
)  # fmt: skip


class _Row(Mapping[str, Any]):
    """One ranked candidate read straight from column arrays (no per-row dict or Series)."""

    __slots__ = ("_columns", "_i")

    def __init__(self, columns: dict[str, Any], i: int) -> None:
        self._columns = columns
        self._i = i

    def __getitem__(self, key: str) -> Any:
        return self._columns[key][self._i]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def _park_table(sides: Sides, knowledge: Knowledge, year: int) -> pd.DataFrame:
    """Sized, valued and filtered candidates of one park, one row each."""
    rules = knowledge.active_rules()
    cands = candidate_pairs(sides, knowledge)
    if cands.empty:
        return cands
    sized = size_pairs(cands, sides, knowledge)
    n_days = max(1, sides.panel.n_days)
    sized["matched_per_day"] = sized["matched"] / n_days
    minimum = np.array([r.min_matched_per_day for r in rules])[sized["rule"].to_numpy()]
    keep = (sized["matched"].to_numpy() > EPS) & (sized["matched_per_day"].to_numpy() >= minimum)
    sized = sized.iloc[np.flatnonzero(keep)]
    if sized.empty:
        return sized
    valued = add_values(sized, sides, knowledge, year)
    if knowledge.matching.require_positive_value:
        valued = valued.iloc[np.flatnonzero(valued["park_vnd"].to_numpy() > 0)]
    if valued.empty:
        return valued
    valued = valued.iloc[np.lexsort((-valued["park_vnd"].to_numpy(), valued["s"].to_numpy()))]
    valued["competing"] = valued.groupby("s")["d"].transform("count") - 1
    place = valued.groupby("s").cumcount().to_numpy()
    valued = valued.iloc[np.flatnonzero(place < knowledge.matching.max_receivers_per_surplus)]
    mean = demand_mean(sides)
    valued["demand_mean"] = mean[valued["d"].to_numpy()] * valued["share"].to_numpy()
    rule_ids = [r.id for r in rules]
    valued["id"] = [
        opportunity_id(sides.park.id, sides.surpluses[s].meter, sides.d_meters[d].id, rule_ids[r])
        for s, d, r in zip(valued["s"], valued["d"], valued["rule"], strict=True)
    ]
    return valued


def _link_capex(park: Park) -> dict[tuple[str, str], LinkCapex]:
    """A park's registered link terms by (from meter, to meter) (the registry lists a pair
    once): looked up once per park, not scanned for every ranked row (a park of thousands of
    meters registers hundreds)."""
    return {(c.from_meter, c.to_meter): c for c in park.link_capex}


def _finance(
    row: Mapping[str, Any],
    sides: Sides,
    resource: str,
    supply: Meter,
    demand: Meter,
    knowledge: Knowledge,
    capex_of: Mapping[tuple[str, str], LinkCapex],
) -> Finance:
    m = knowledge.matching
    terms_entry = capex_of.get((supply.id, demand.id))
    capex = float(row["capex_vnd"])
    n_days = max(1, sides.panel.n_days)
    mean = float(row["matched"]) / n_days
    p10, p90 = (float(row[f"matched_p{q}_per_day"]) / mean if mean > 0 else 1.0 for q in (10, 90))
    terms = Terms(
        supplier_share=most_specific(m.supplier_shares, resource, m.supplier_share),
        price_vnd_per_unit=terms_entry.transfer_vnd_per_unit if terms_entry else None,
        investor=terms_entry.built_by if terms_entry else "receiver",
        rate=m.capex_discount_rate,
        years=max(1, round(m.capex_life_years)),
        opex_share=m.opex_share,
    )
    return split(
        supplier_vnd=float(row["supplier_vnd"]),
        receiver_vnd=float(row["receiver_vnd"]),
        purchase_vnd=float(row["purchase_vnd"]),
        supply_per_year=float(row["supply_per_year"]),
        capex_vnd=None if np.isnan(capex) else capex,
        volume_p10=p10,
        volume_p90=p90,
        terms=terms,
    )


def _tou_phrase(
    row: Mapping[str, Any], receiver: Tenant, meter: Meter, knowledge: Knowledge
) -> str:
    matched = float(row["matched"])
    shares = [float(row[f"band_{b}"]) / matched if matched > 0 else 0.0 for b in TOU_BANDS]
    voltage = receiver.supply_voltage or f"{knowledge.matching.default_voltage} (default)"
    split = ", ".join(
        f"{share:.0%} {band.replace('_', '-')}"
        for band, share in zip(TOU_BANDS, shares, strict=True)
        if share >= 0.005
    )
    return (
        f"{knowledge.label(meter.resource)} valued at the {voltage} production tariff by time"
        f" of use over the hours exchanged ({split}): {fmt_vnd(float(row['receiver_price']))}"
        f"/{canonical_unit(meter.resource)} on average"
    )


def _opportunity(
    rank: int,
    sides: Sides,
    row: Mapping[str, Any],
    rules: list[Rule],
    knowledge: Knowledge,
    year: int,
    cache: dict[tuple[object, ...], SourceNotes],
    park_sellers: Mapping[str, Seller],
    capex_of: Mapping[tuple[str, str], LinkCapex],
) -> Opportunity:
    rule = rules[int(row["rule"])]
    surplus = sides.surpluses[int(row["s"])]
    supply_meter = sides.s_meta[int(row["s"])]
    demand_meter = sides.d_meters[int(row["d"])]
    receiver = sides.d_tenants[int(row["d"])]
    supplier = sides.tenant(surplus.tenant)
    n_days = max(1, sides.panel.n_days)
    eff = float(row["eff_ratio"])
    matched_per_day = float(row["matched"]) / n_days
    fields: dict[str, Any] = dict(
        id=str(row["id"]),
        rank=rank,
        park=sides.park.id,
        rule=rule.id,
        surplus_id=surplus.id,
        from_tenant=surplus.tenant,
        from_meter=surplus.meter,
        supply_resource=surplus.resource,
        supply_unit=surplus.unit,
        to_tenant=receiver.id,
        to_meter=demand_meter.id,
        demand_resource=demand_meter.resource,
        demand_unit=canonical_unit(demand_meter.resource),
        uses=tuple(u for u in (rule_uses(rule, receiver) or ()) if u in demand_meter.use_shares()),
        distance_m=float(row["distance_m"]),
        distance_assumed=bool(row["distance_assumed"]),
        coupling=str(row["coupling"]),
        days=sides.panel.n_days,
        supply_p50_per_day=surplus.p50_per_day,
        supply_days_present=surplus.days_present,
        demand_per_day=float(row["demand_mean"]),
        matched_per_day=matched_per_day,
        supply_used_per_day=matched_per_day / eff if eff > 0 else 0.0,
        buckets_matched=int(row["buckets_matched"]),
        n_buckets=int(row["n_buckets"]),
        days_matched=int(row["days_matched"]),
        competing_receivers=int(row["competing"]),
        value=describe_value(
            row,
            value_sources(
                rule,
                supply_meter,
                demand_meter,
                receiver,
                knowledge,
                year,
                cache,
                sides.park.province,
            ),
        ),
    )
    seller = park_sellers.get(demand_meter.id)
    fields["value"] = replace(
        fields["value"],
        finance=_finance(
            row, sides, surplus.resource, supply_meter, demand_meter, knowledge, capex_of
        ),
        seller=seller.tenant.id if seller else None,
        seller_vnd_per_year=round(float(row["seller_vnd"])),
    )
    seller_text = ""
    if seller is not None:
        lost = -round(float(row["seller_vnd"]))
        how = (
            f"net of the {knowledge.label(seller.cost.resource)} it no longer burns"
            if seller.cost is not None
            else "(its margin unknown: counted as none)"
        )
        seller_text = (
            f"{seller.tenant.name} loses {fmt_vnd(lost)}/yr of the"
            f" {knowledge.label(demand_meter.resource)} it sells {receiver.name} today, {how}"
        )
    fields["checks"] = checks_to_make(rule, supply_meter)
    fields["confidence"] = confidence(
        row, rule, supply_meter, demand_meter, receiver, knowledge, sides, year
    )
    if rule.legal is not None:
        fields["legal_status"] = rule.legal.status
        fields["legal"] = legal_text(rule.legal)
    if supply_meter.hazardous:
        # hazardous waste goes only to a licensed facility, whatever the rule says
        licensed = not barred_by_law(supply_meter, receiver)
        fields["legal_status"] = "permit" if licensed else "not_allowed"
        fields["legal"] = (
            LEGAL_STATUS_TEXT[fields["legal_status"]]
            + ": the stream is hazardous waste, which may go only to a facility holding the"
            " right environmental licence"
            + (
                f" ({receiver.name} holds one; the hand-over follows the hazardous-waste rules)"
                if licensed
                else f" ({receiver.name} holds none)"
            )
            + " [ref-lep-2020]"
        )
    draft = Opportunity(**fields, explanation="")
    purchase = displaced(demand_meter, receiver, knowledge, year, sides.park.province)
    if tariff_for(purchase, receiver, knowledge) is not None:
        bought = _tou_phrase(row, receiver, demand_meter, knowledge)
    else:
        bought = displaced_phrase(purchase, demand_meter, receiver, knowledge)
    if seller_text:
        bought = f"{bought}; {seller_text}" if bought else seller_text
    text = explain(
        draft, surplus, supplier, supply_meter, receiver, demand_meter, rule, knowledge, bought
    )
    # a second construction is cheaper than dataclasses.replace on the hot path
    return Opportunity(**fields, explanation=text)
