"""Benefit accounting for sized candidates: money per party and for the park, water, CO2e, landfill.

Savings are a baseline minus an alternative, not one factor times a quantity:
avoided virgin input (the receiver's purchase and its upstream emissions) plus avoided
disposal (the supplier's fee and the emissions where the stream goes today) minus transport,
pre-processing, and any credit the stream already earns where it goes (grid export already
displaces grid power, so moving it to a neighbour avoids nothing more).
All columns are computed over the whole candidate table at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from parkflow.registry.schema import Meter, Tenant
from parkflow.units import canonical_unit
from service.knowledge import Knowledge, Rule
from service.match.candidates import Sides
from service.match.displaced import displaced, sellers, tariff_for
from service.match.opportunity import Value


def add_values(cands: pd.DataFrame, sides: Sides, knowledge: Knowledge, year: int) -> pd.DataFrame:
    """Add annual value columns to sized candidates (``matched`` over a window of the panel's days)."""
    rules = knowledge.active_rules()
    out = cands.copy(deep=False)  # copy-on-write: new columns never reach the caller
    if out.empty:
        for col in _COLUMNS:
            out[col] = pd.Series(dtype=np.float64)
        return out
    s = out["s"].to_numpy()
    d = out["d"].to_numpy()
    r = out["rule"].to_numpy()
    per_year = knowledge.matching.days_per_year / max(1, sides.panel.n_days)
    eff = out["eff_ratio"].to_numpy()
    demand_yr = out["matched"].to_numpy() * per_year
    supply_yr = np.divide(demand_yr, eff, out=np.zeros_like(demand_yr), where=eff > 0)
    km = out["distance_m"].to_numpy() / 1000.0

    s_disposal = np.array([_disposal_vnd(i, sides, knowledge) for i in range(len(sides.surpluses))])
    s_disp_ef = np.array([_disposal_ef(i, sides, knowledge) for i in range(len(sides.surpluses))])
    s_displaced_ef = np.array(
        [_displaced_ef(i, sides, knowledge, year) for i in range(len(sides.surpluses))]
    )
    s_landfill = np.array(
        [
            bool(info.landfill) and canonical_unit(sur.resource) == "t"
            if (info := knowledge.destination(sur.destination)) is not None
            else False
            for sur in sides.surpluses
        ]
    )
    bought = [
        displaced(m, t, knowledge, year, sides.park.province)
        for m, t in zip(sides.d_meters, sides.d_tenants, strict=True)
    ]
    d_price = np.array([b.vnd_per_unit for b in bought])
    # a time-of-use tariff values what is exchanged by the band it falls in
    tariffs = [tariff_for(b, t, knowledge) for t, b in zip(sides.d_tenants, bought, strict=True)]
    d_tou = np.array([t.per_unit() if t is not None else (np.nan,) * 3 for t in tariffs])
    d_has_tou = np.array([t is not None for t in tariffs])
    d_ef = np.array([b.t_co2e_per_unit for b in bought])
    # a receiver buying the resource from another tenant today (a registered exchange): the
    # opportunity displaces that sale, the seller loses its margin, the avoided emissions are
    # the seller's
    by_meter = sellers(sides.park, knowledge, year)
    d_sellers = [by_meter.get(m.id) for m in sides.d_meters]
    d_has_seller = np.array([x is not None for x in d_sellers], dtype=bool)
    d_seller_cost = np.array(
        [np.nan if x is None or x.cost is None else x.cost.vnd_per_unit for x in d_sellers]
    )
    d_ef = np.array(
        [
            x.cost.t_co2e_per_unit if x is not None and x.cost is not None else ef
            for x, ef in zip(d_sellers, d_ef, strict=True)
        ]
    )
    d_water = np.array([m.resource.split(".", 1)[0] == "water" for m in sides.d_meters])
    modes = [knowledge.mode(rule.transport) for rule in rules]
    mode_vnd = np.array([mo.vnd_per_unit_km for mo in modes])[r]
    mode_ef = np.array([mo.t_co2e_per_unit_km for mo in modes])[r]
    prep = np.array([rule.preprocessing_vnd_per_unit for rule in rules])[r]
    prep_ef = np.array([rule.preprocessing_co2e_per_unit for rule in rules])[r]

    transport_vnd = supply_yr * km * mode_vnd
    prep_vnd = supply_yr * prep
    out["demand_per_year"] = demand_yr
    out["supply_per_year"] = supply_yr
    out["supplier_vnd"] = supply_yr * s_disposal[s]
    if len(d_has_tou) and d_has_tou.any():
        banded = out[["band_off_peak", "band_normal", "band_peak"]].to_numpy()
        matched = out["matched"].to_numpy()
        tou_price = np.divide(
            (banded * np.nan_to_num(d_tou[d])).sum(axis=1),
            matched,
            out=np.zeros_like(matched),
            where=matched > 0,
        )
        price = np.where(d_has_tou[d], tou_price, d_price[d])
    else:
        price = d_price[d]
    out["receiver_price"] = price
    out["receiver_vnd"] = demand_yr * price - transport_vnd - prep_vnd
    out["purchase_vnd"] = demand_yr * price
    out["transport_vnd"] = transport_vnd
    out["prep_vnd"] = prep_vnd
    if len(d_has_seller) and d_has_seller.any():
        # margin unknown (no equipment named for the seller): its cost taken as the price
        cost = np.where(np.isnan(d_seller_cost[d]), price, d_seller_cost[d])
        out["seller_vnd"] = np.where(d_has_seller[d], -demand_yr * (price - cost), 0.0)
    else:
        out["seller_vnd"] = 0.0
    out["park_vnd"] = out["supplier_vnd"] + out["receiver_vnd"] + out["seller_vnd"]
    out["water_m3"] = np.where(d_water[d], demand_yr, 0.0)
    out["co2e_t"] = (
        demand_yr * d_ef[d]
        + supply_yr * s_disp_ef[s]
        - supply_yr * s_displaced_ef[s]
        - supply_yr * km * mode_ef
        - supply_yr * prep_ef
    )
    out["landfill_t"] = np.where(s_landfill[s], supply_yr, 0.0)
    n_d = len(sides.d_meters)
    s_pos = {x.meter: i for i, x in enumerate(sides.surpluses)}
    d_pos = {m.id: i for i, m in enumerate(sides.d_meters)}
    capex = {
        s_pos[c.from_meter] * n_d + d_pos[c.to_meter]: c.capex_vnd
        for c in sides.park.link_capex
        if c.from_meter in s_pos and c.to_meter in d_pos
    }
    out["capex_vnd"] = pd.Series(s * n_d + d, index=out.index).map(capex).astype(np.float64)
    park_vnd = out["park_vnd"].to_numpy()
    out["payback_years"] = np.where(
        park_vnd > 0, out["capex_vnd"].to_numpy() / np.where(park_vnd > 0, park_vnd, 1.0), np.nan
    )
    return out


_COLUMNS = (
    "seller_vnd",
    "receiver_price",
    "purchase_vnd",
    "transport_vnd",
    "prep_vnd",
    "demand_per_year",
    "supply_per_year",
    "supplier_vnd",
    "receiver_vnd",
    "park_vnd",
    "water_m3",
    "co2e_t",
    "landfill_t",
    "capex_vnd",
    "payback_years",
)


def _disposal_vnd(i: int, sides: Sides, knowledge: Knowledge) -> float:
    meter = sides.s_meta[i]
    if meter.destination_vnd_per_unit is not None:
        return meter.destination_vnd_per_unit
    c = knowledge.disposal_cost(meter.destination, meter.resource)
    return c.vnd_per_unit if c is not None else 0.0


def _disposal_ef(i: int, sides: Sides, knowledge: Knowledge) -> float:
    meter = sides.s_meta[i]
    e = knowledge.disposal_emission(meter.destination, meter.resource)
    return e.per_unit if e is not None else 0.0


def _displaced_ef(i: int, sides: Sides, knowledge: Knowledge, year: int) -> float:
    info = knowledge.destination(sides.s_meta[i].destination)
    if info is None or info.displaces is None:
        return 0.0
    return knowledge.resource_emission(info.displaces, year)[0]


SourceNotes = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def value_sources(
    rule: Rule,
    supply: Meter,
    demand: Meter,
    receiver: Tenant,
    knowledge: Knowledge,
    year: int,
    cache: dict[tuple[object, ...], SourceNotes] | None = None,
    province: str | None = None,
) -> SourceNotes:
    """Source ids behind a link's figures, those that are assumptions, and notes on missing
    or defaulted figures; memoised on what decides them (many links share a rule and
    resources)."""
    bought = displaced(demand, receiver, knowledge, year, province)
    key = (
        province,
        receiver.supply_voltage,
        rule.id,
        supply.resource,
        supply.destination,
        supply.destination_vnd_per_unit is None,
        demand.resource,
        *bought.key(),
    )
    if cache is not None and key in cache:
        return cache[key]
    sources: list[str] = [rule.source, knowledge.mode(rule.transport).source]
    notes: list[str] = []
    if rule.preprocessing is not None:
        sources.append(rule.preprocessing.source)
    tariff = tariff_for(bought, receiver, knowledge)
    price = knowledge.price(bought.resource, province)
    if bought.contract:
        pass  # the registry states the tenant's own price: no knowledge figure behind it
    elif tariff is not None and knowledge.time_of_use is not None:
        sources += [tariff.source, knowledge.time_of_use.source]
        if receiver.supply_voltage is None and price is not None:
            sources.append(price.source)  # whose note states the default voltage
            notes.append(
                f"{receiver.id} gives no supply_voltage: billed at the"
                f" {knowledge.matching.default_voltage} production tariff"
            )
    elif price is not None:
        sources.append(price.source)
    else:
        notes.append(f"no price for {bought.resource}: its avoided purchase counted as 0")
    if bought.efficiency_assumed and knowledge.matching.equipment_source is not None:
        sources.append(knowledge.matching.equipment_source)
    if bought.default:
        notes.append(
            f"no boiler or fuel named behind {demand.id}: {demand.resource} valued at its"
            " default price and emission factor"
        )
        if knowledge.matching.equipment_source is not None:
            sources.append(knowledge.matching.equipment_source)
    if supply.destination_vnd_per_unit is None:
        cost = knowledge.disposal_cost(supply.destination, supply.resource)
        if cost is not None:
            sources.append(cost.source)
        else:
            notes.append(
                f"no disposal cost for {supply.resource} to {supply.destination or 'unknown'}:"
                " counted as 0"
            )
    _, ef, used_year = knowledge.resource_emission(bought.resource, year)
    if ef is not None:
        sources.append(ef.source)
        if used_year is not None and used_year != year:
            notes.append(f"{bought.resource} emission factor of {used_year} used for {year}")
    disp = knowledge.disposal_emission(supply.destination, supply.resource)
    if disp is not None:
        sources.append(disp.source)
    info = knowledge.destination(supply.destination)
    if info is not None and info.displaces is not None:
        _, lost, _ = knowledge.resource_emission(info.displaces, year)
        if lost is not None:
            sources.append(lost.source)
    unique = tuple(dict.fromkeys(sources))
    result = (unique, tuple(x for x in unique if knowledge.source(x).assumption), tuple(notes))
    if cache is not None:
        cache[key] = result
    return result


def describe_value(row: Mapping[str, Any], sources: SourceNotes) -> Value:
    """The Value of one valued candidate row."""
    capex = float(row["capex_vnd"])
    payback = float(row["payback_years"])
    return Value(
        supplier_vnd_per_year=round(float(row["supplier_vnd"])),
        receiver_vnd_per_year=round(float(row["receiver_vnd"])),
        park_vnd_per_year=round(float(row["park_vnd"])),
        water_saved_m3_per_year=float(row["water_m3"]),
        co2e_avoided_t_per_year=float(row["co2e_t"]),
        landfill_diverted_t_per_year=float(row["landfill_t"]),
        capex_vnd=None if np.isnan(capex) else round(capex),
        payback_years=None if np.isnan(payback) else payback,
        sources=sources[0],
        assumptions=sources[1],
        notes=sources[2],
    )
