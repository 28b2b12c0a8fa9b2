"""Matching and sizing on small synthetic parks with planted opportunities and non-opportunities.

The parks and the series they run on are shared by every test here, hence one file."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parkflow.registry import SAMPLE_REGISTRY, Registry, load_registry, parse_registry
from service.knowledge import DEFAULT_KNOWLEDGE, Knowledge, load_knowledge
from service.match import Opportunity
from tests.support.registries import build, changed, with_equipment, with_links
from tests.support.rollups import day_rollups, detect

TZ = "Asia/Ho_Chi_Minh"
NOW = pd.Timestamp("2026-11-28 10:30", tz=TZ)
START = pd.Timestamp("2026-10-31", tz=TZ)
DAYS = 28
N = DAYS * 24
CLOCK = np.tile(np.arange(24), DAYS)
DAY = np.repeat(np.arange(DAYS), 24)
Y320 = 320 / 1.2  # routed 320 m with the default routing factor 1.2

REGISTRY = f"""
version: 1
parks:
  - id: p
    name: P
    timezone: Asia/Ho_Chi_Minh
    province: Ho Chi Minh City
    tenants:
      - id: wwtp
        name: Central WWTP
        location: {{x_m: 0, y_m: 0}}
        meters:
          - {{id: eff, resource: water.treated_effluent, direction: out, unit: m3, kind: delta, quality: {{qcvn40_column: A}}, destination: discharged}}
          - {{id: raw, resource: water.wastewater, direction: out, unit: m3, kind: delta, quality: {{qcvn40_column: B}}, destination: sewer_to_wwtp}}
      - id: cool
        name: Cool Co
        location: {{x_m: 0, y_m: {Y320}}}
        meters:
          - {{id: cool-water, resource: water.potable, direction: in, unit: m3, kind: delta, uses: [{{name: cooling_makeup}}]}}
      - id: cool2
        name: Second Cooler
        location: {{x_m: 0, y_m: -{Y320}}}
        meters:
          - {{id: cool2-water, resource: water.potable, direction: in, unit: m3, kind: delta, uses: [{{name: cooling_makeup, share: 0.5}}, {{name: domestic}}]}}
      - id: boiler
        name: Boiler House
        location: {{x_m: 100, y_m: 0}}
        meters:
          - {{id: boiler-water, resource: water.potable, direction: in, unit: m3, kind: delta, uses: [{{name: boiler_feed}}]}}
      - id: far
        name: Far Away
        location: {{x_m: 5000, y_m: 0}}
        meters:
          - {{id: far-water, resource: water.potable, direction: in, unit: m3, kind: delta, uses: [{{name: cooling_makeup}}]}}
      - id: small
        name: Small Shop
        location: {{x_m: 0, y_m: 100}}
        meters:
          - {{id: small-water, resource: water.potable, direction: in, unit: m3, kind: delta, uses: [{{name: cleaning}}]}}
      - id: steamer
        name: Steamer Chemicals
        location: {{x_m: 0, y_m: 300}}
        meters:
          - {{id: vent, resource: energy.steam, direction: out, unit: kWh, kind: delta, quality: {{pressure_bar: 6, temperature_c: 165}}, destination: vented}}
      - id: paper
        name: Paper Mill
        location: {{x_m: 0, y_m: 500}}
        meters:
          - {{id: paper-steam, resource: energy.steam, direction: in, unit: kWh, kind: delta, quality: {{pressure_bar: 5, temperature_c: 160}}}}
      - id: food
        name: Food Co
        location: {{x_m: 100, y_m: 300}}
        meters:
          - {{id: food-steam, resource: energy.steam, direction: in, unit: kWh, kind: delta, quality: {{pressure_bar: 4, temperature_c: 152}}}}
      - id: dye
        name: Dye House
        location: {{x_m: 0, y_m: 200}}
        meters:
          - {{id: dye-steam, resource: energy.steam, direction: in, unit: kWh, kind: delta, quality: {{pressure_bar: 8, temperature_c: 175}}}}
      - id: mystery
        name: Mystery Steam User
        location: {{x_m: 200, y_m: 300}}
        meters:
          - {{id: myst-steam, resource: energy.steam, direction: in, unit: kWh, kind: delta}}
      - id: shop
        name: Pallet Shop
        location: {{x_m: 0, y_m: 1000}}
        meters:
          - {{id: pallets, resource: waste.wood_pallets, direction: out, unit: t, kind: delta, destination: landfill}}
      - id: laundry
        name: Laundry
        location: {{x_m: 0, y_m: 2000}}
        meters:
          - {{id: lpg, resource: energy.lpg, direction: in, unit: kWh, kind: delta, uses: [{{name: water_heating}}], quality: {{temperature_c: 80}}}}
      - id: woodfire
        name: Wood Boiler Co
        location: {{x_m: 0, y_m: 2000}}
        meters:
          - {{id: chips, resource: energy.biomass, direction: in, unit: kg, kind: delta, uses: [{{name: boiler_fuel}}]}}
        equipment:
          - {{id: wb-boiler, type: boiler, fuel: energy.biomass, efficiency: 0.8, accepts: [wood_waste], meters: [chips]}}
      - id: power
        name: Power Plant
        meters:
          - {{id: ash, resource: waste.fly_ash, direction: out, unit: t, kind: delta, destination: landfill}}
      - id: blocks
        name: Block Maker
        meters:
          - {{id: cement, resource: material.cement, direction: in, unit: t, kind: delta}}
    exchanges: []
    link_capex:
      - {{from_meter: eff, to_meter: cool-water, capex_vnd: 1500000000}}
"""


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return load_knowledge()


PARK = yaml.safe_load(REGISTRY)["parks"][0]


def registry(exchanges: str = "[]", vent_storage: str | None = None) -> Registry:
    """The test park with these registered exchanges (a YAML flow list), and storage declared
    on the vented steam if asked."""
    doc = with_links(PARK, yaml.safe_load(exchanges))
    if vent_storage:
        doc = changed(doc, "vent", storage=vent_storage)
    return build(doc)


def run(
    reg: Registry, series: dict[str, np.ndarray], k: Knowledge, limit: int | None = None
) -> list[Opportunity]:
    return detect(reg, day_rollups(reg, series, START), k, NOW, limit=limit)[1]


def flat(per_hour: float) -> np.ndarray:
    return np.full(N, per_hour)


def water_series() -> dict[str, np.ndarray]:
    eff = np.where(np.isin(DAY, [3, 9]), 0.0, 7.5)  # 180 m3/day on 26 of 28 days
    return {
        "eff": eff,
        "raw": flat(10.0),  # column B: never reused
        "cool-water": flat(6.25),  # 150 m3/day for cooling make-up, 320 m away
        "boiler-water": flat(10.0),  # boiler feed: not a use effluent may serve
        "far-water": flat(6.25),  # cooling, but over 3 km of pipe away
        "small-water": flat(0.2),  # 4.8 m3/day: below the 10 m3/day floor
    }


def test_column_a_effluent_to_cooling_make_up(knowledge: Knowledge) -> None:
    opps = run(registry(), water_series(), knowledge)
    assert [o.id for o in opps] == ["p:eff>cool-water:effluent_a_reuse"]
    o = opps[0]
    assert (o.rank, o.rule, o.surplus_id, o.coupling) == (
        1,
        "effluent_a_reuse",
        "p:eff:stream",
        "day",
    )
    assert o.uses == ("cooling_makeup",) and o.distance_m == pytest.approx(320.0)
    # day by day: min(180, 150) on 26 days, nothing on the 2 days without effluent
    assert o.matched_per_day == pytest.approx(26 * 150 / 28)
    assert o.supply_used_per_day == pytest.approx(26 * 150 / 28)
    assert (o.days_matched, o.supply_days_present, o.days) == (26, 26, 28)
    assert o.supply_p50_per_day == pytest.approx(180.0) and o.demand_per_day == pytest.approx(150.0)
    water_yr = 26 * 150 * 365 / 28
    # avoided potable water minus pumping (300 VND/m3-km x 0.32 km) and polishing (2,000 VND/m3)
    receiver = water_yr * (12100 - 300 * 0.32 - 2000)
    v = o.value
    assert v.water_saved_m3_per_year == pytest.approx(water_yr)
    assert v.receiver_vnd_per_year == pytest.approx(receiver)
    assert v.supplier_vnd_per_year == 0.0  # discharging costs the WWTP nothing today
    assert v.park_vnd_per_year == pytest.approx(receiver)
    # potable water carries no factor here; the polishing's electricity is counted against it
    assert v.co2e_avoided_t_per_year == pytest.approx(-water_yr * 0.00033)
    assert v.landfill_diverted_t_per_year == 0.0
    assert v.capex_vnd == 1.5e9 and v.payback_years == pytest.approx(1.5e9 / receiver)
    assert "ref-hcmc-water-2025" in v.sources and "ref-qcvn40" in v.sources
    assert "assume-transport-2026" in v.assumptions
    assert "ref-hcmc-water-2025" not in v.assumptions
    text = o.explanation
    for piece in (
        "Central WWTP discharges 180 m3/day of column-A treated effluent on 26 of 28 days",
        "Cool Co uses 150 m3/day of potable water for cooling make-up 320 m away",
        "139 m3/day can be exchanged day by day",
        "on 26 of 28 days",
        f"about {receiver / 1e6:.1f} million VND/yr for the park",
        f"{round(water_yr):,} m3/yr of water",
    ):
        assert piece in text, (piece, text)
    # each party's money: the net benefit after upkeep (3 % of the capex a year) and the
    # capex's annuity (10 years at 10 %) split half and half; the receiver builds the pipe
    f = v.finance
    assert f is not None and f.investor == "receiver"
    capex, opex = 1.5e9, 0.03 * 1.5e9
    annuity = capex * 0.1 / (1 - 1.1**-10)
    net = receiver - opex - annuity
    assert f.transfer_vnd_per_year == round(net / 2)  # the WWTP gave up nothing: half to it
    assert f.supplier_net_vnd_per_year == round(net / 2)
    assert f.receiver_net_vnd_per_year == round(net / 2)
    flow = net / 2 + annuity  # the receiver's yearly cash before repaying the pipe
    pv = (1 - 1.1**-10) / 0.1
    assert f.npv_vnd == round(-capex + flow * pv)
    assert f.irr is not None and f.discounted_payback_years is not None
    assert [s.case for s in f.sensitivity] == [
        "base", "price -20%", "price +20%", "volume P10", "volume P90",
    ]  # fmt: skip
    low = f.sensitivity[1]
    assert low.park_vnd_per_year == round(receiver - 0.2 * water_yr * 12100)
    assert f"Central WWTP gains +{net / 2 / 1e6:.1f} million VND/yr" in text
    assert "Cool Co invests 1.5 bn VND: NPV" in text and "over 10 years at 10%" in text


def test_only_the_cooling_share_of_a_mixed_meter_is_offered(knowledge: Knowledge) -> None:
    series = water_series() | {
        "eff": flat(20.0),
        "cool-water": flat(0.0),
        "cool2-water": flat(10.0),
    }
    opps = run(registry(), series, knowledge)
    o = next(o for o in opps if o.to_meter == "cool2-water")
    # 240 m3/day of which half is cooling make-up; the 480 m3/day of effluent covers it
    assert o.matched_per_day == pytest.approx(120.0)
    assert o.demand_per_day == pytest.approx(120.0)


def test_already_exchanged_pair_is_not_proposed_but_the_rest_is_offered(
    knowledge: Knowledge,
) -> None:
    reg = registry(
        "[{from_meter: eff, to_meter: cool-water, quantity_per_day: 20, since: 2020-01-01}]"
    )
    series = water_series() | {"cool2-water": flat(10.0)}
    opps = run(reg, series, knowledge)
    assert all(o.to_meter != "cool-water" for o in opps)
    o = next(o for o in opps if o.to_meter == "cool2-water")
    # 180 - 20 = 160 m3/day left on 26 days; cool2 may take half of 240 = 120
    assert o.matched_per_day == pytest.approx(26 * 120 / 28)
    assert o.competing_receivers == 0


def steam_series() -> dict[str, np.ndarray]:
    night = (CLOCK >= 22) | (CLOCK < 6)
    return {
        "vent": np.where(night, 500.0, 0.0),  # 4,000 kWh/day vented at night
        "paper-steam": flat(300.0),  # 24 h, 5 bar 160 °C: can take it
        "food-steam": np.where(night, 0.0, 300.0),  # day shift: no overlap with the venting
        "dye-steam": flat(300.0),  # needs 8 bar: the vented 6 bar steam does not pass
        "myst-steam": flat(300.0),  # no declared quality: unknown never passes a gate
    }


def test_vented_night_steam_goes_only_where_it_overlaps_and_qualifies(knowledge: Knowledge) -> None:
    opps = run(registry(), steam_series(), knowledge)
    assert [o.to_meter for o in opps] == ["paper-steam"]
    o = opps[0]
    assert o.coupling == "hour" and o.distance_m == pytest.approx(240.0)
    eff = 1 - 0.03 * 0.24  # steam line loses 3 %/km
    # each night hour: min(500 x eff, 300) = 300, over 8 hours
    assert o.matched_per_day == pytest.approx(2400.0)
    assert o.supply_used_per_day == pytest.approx(2400.0 / eff)
    assert o.days_matched == 28 and o.buckets_matched == 28 * 8 and o.n_buckets == N
    kwh_yr = 2400.0 * 365
    assert o.value.receiver_vnd_per_year == pytest.approx(kwh_yr * 750)
    assert o.value.co2e_avoided_t_per_year == pytest.approx(kwh_yr * 0.426e-3)
    assert o.value.water_saved_m3_per_year == 0.0 and o.value.capex_vnd is None
    assert "vents 4,000 kWh/day of steam at 6 bar, 165 °C on 28 of 28 days" in o.explanation
    assert "mostly 22:00-06:00" in o.explanation
    assert "2,400 kWh/day of steam can be exchanged hour by hour" in o.explanation


def test_declared_storage_lets_the_day_shift_take_night_steam(knowledge: Knowledge) -> None:
    opps = run(registry(vent_storage="day"), steam_series(), knowledge)
    by_to = {o.to_meter: o for o in opps}
    assert set(by_to) == {"paper-steam", "food-steam"}
    food = by_to["food-steam"]
    assert food.coupling == "day"
    # per day: min(4,000 x (1 - 0.03 x 0.12), 16 h x 300 = 4,800)
    assert food.matched_per_day == pytest.approx(4000 * (1 - 0.03 * 0.12))
    assert by_to["paper-steam"].matched_per_day == pytest.approx(4000 * (1 - 0.03 * 0.24))
    assert food.competing_receivers == 1 and by_to["paper-steam"].competing_receivers == 1


KWH_PER_T_WOOD = 15.6e3 / 3.6  # IPCC wood and wood waste, 15.6 MJ/kg


def pallet_series() -> dict[str, np.ndarray]:
    return {
        "pallets": flat(0.12 / 24),  # 0.12 t/day to landfill
        # the wood-fired boiler burns 0.4 t of chips a day on 3 days a week (stored in t)
        "chips": np.where(DAY % 7 < 3, 0.4 / 24, 0.0),
        "lpg": flat(1000.0 / 24),  # an LPG water heater: no grate for wood
    }


def test_pallets_fire_a_boiler_whose_fuel_is_weighed_in_tonnes(knowledge: Knowledge) -> None:
    """A fuel meter in kg is stored in t and matched in kWh through its heating value."""
    opps = run(registry(), pallet_series(), knowledge)
    assert [o.id for o in opps] == ["p:pallets>chips:pallets_to_biomass_fuel"]
    o = opps[0]
    assert o.demand_unit == "kWh" and o.supply_unit == "t"
    # per week: min(0.84 t x 4,333 kWh/t, 1.2 t x 4,333 kWh/t of chips) = 3,640 kWh; a day by
    # day match would only give 3 x min(520, 1,733)
    assert o.coupling == "week" and (o.buckets_matched, o.n_buckets) == (4, 4)
    assert o.matched_per_day == pytest.approx(0.84 * 4333 / 7)
    assert o.demand_per_day == pytest.approx(1.2 / 7 * KWH_PER_T_WOOD)
    assert o.supply_used_per_day == pytest.approx(0.12)
    kwh, t, km = 0.84 * 4333 / 7 * 365, 0.12 * 365, 1.2
    v = o.value
    assert v.receiver_vnd_per_year == pytest.approx(kwh * 346 - t * km * 3000 - t * 250000)
    assert v.supplier_vnd_per_year == pytest.approx(t * 700000)
    # wood for wood: no fossil CO2 avoided, only the landfill's methane, less the truck's and
    # the chipper's electricity
    assert v.co2e_avoided_t_per_year == pytest.approx(t * 0.3 - t * km * 1e-4 - t * 0.0165)
    assert v.landfill_diverted_t_per_year == pytest.approx(43.8)
    assert "ref-ipcc-2006-combustion" in v.sources and "assume-fuel-prices-2026" in v.sources
    assert "Wood Boiler Co uses 743 kWh/day of biomass fuel for boiler fuel" in o.explanation
    assert "0.12 t/day replacing 520 kWh/day of biomass fuel" in o.explanation


def test_a_receiver_without_the_equipment_a_rule_needs_is_never_proposed(
    knowledge: Knowledge,
) -> None:
    series = pallet_series()
    # the LPG heater needs wood-burning equipment the registry does not show: never proposed
    assert all(o.to_meter != "lpg" for o in run(registry(), series, knowledge))
    lpg_only = {"type": "water_heater", "fuel": "energy.lpg", "efficiency": 0.9}
    doc = with_equipment(PARK, "laundry", {"id": "lh", **lpg_only})
    assert all(o.to_meter != "lpg" for o in run(build(doc), series, knowledge))
    # a dual-fuel heater that accepts wood waste is a receiver
    dual = {"id": "lh", **lpg_only, "accepts": ["wood_waste"]}
    assert "lpg" in {
        o.to_meter for o in run(build(with_equipment(PARK, "laundry", dual)), series, knowledge)
    }
    # the same heater tied to another of the tenant's meters does not make this one a receiver
    doc = with_equipment(PARK, "laundry", dual | {"meters": ["lpg2"]})
    laundry = next(t for t in doc["tenants"] if t["id"] == "laundry")
    laundry["meters"].append(
        {"id": "lpg2", "resource": "energy.lpg", "direction": "in", "unit": "kWh", "kind": "delta"}
    )
    assert all(o.to_meter != "lpg" for o in run(build(doc), series, knowledge))


def test_a_gas_boiler_values_steam_at_its_gas(knowledge: Knowledge) -> None:
    """Steam a tenant raises itself saves its boiler's fuel / efficiency, not a coal default."""
    gas = {"id": "pm-boiler", "type": "boiler", "fuel": "energy.natural_gas", "efficiency": 0.9}
    reg = build(with_equipment(PARK, "paper", {**gas, "meters": ["paper-steam"]}))
    (o,) = run(reg, steam_series(), knowledge)
    kwh_yr = 2400.0 * 365
    gas_t_per_kwh = 56.1 * 3.6e-6  # IPCC 56.1 t CO2/TJ
    assert o.value.receiver_vnd_per_year == pytest.approx(kwh_yr * 1045 / 0.9)
    assert o.value.co2e_avoided_t_per_year == pytest.approx(kwh_yr * gas_t_per_kwh / 0.9)
    # against the default (steam from a coal boiler at 80%) it is about half
    assert o.value.co2e_avoided_t_per_year < 0.55 * kwh_yr * 0.426e-3
    assert "steam valued as the natural gas Paper Mill's pm-boiler (90% efficient)" in (
        o.explanation
    )
    assert not any("default" in n for n in o.value.notes)
    # no efficiency given: the stated default, and its assumption among the sources
    (o,) = run(
        build(with_equipment(PARK, "paper", gas | {"efficiency": None})), steam_series(), knowledge
    )
    assert o.value.receiver_vnd_per_year == pytest.approx(kwh_yr * 1045 / 0.85)
    assert "assume-equipment-2026" in o.value.sources and "(assumed)" in o.explanation


def test_steam_with_no_boiler_named_is_valued_at_the_stated_default(knowledge: Knowledge) -> None:
    (o,) = run(registry(), steam_series(), knowledge)
    assert o.value.receiver_vnd_per_year == pytest.approx(2400.0 * 365 * 750)
    assert "the registry names no boiler or fuel behind paper-steam" in o.explanation
    assert any("paper-steam" in n and "default" in n for n in o.value.notes)


def test_fly_ash_is_capped_at_the_blend_share(knowledge: Knowledge) -> None:
    series = {"ash": flat(10 / 24), "cement": flat(20 / 24)}
    opps = run(registry(), series, knowledge)
    assert len(opps) == 1
    o = opps[0]
    # no locations: the assumed 1,000 m applies and is said
    assert o.distance_assumed and o.distance_m == 1000.0
    assert o.matched_per_day == pytest.approx(6.0)  # 30% of 20 t/day
    assert o.value.co2e_avoided_t_per_year == pytest.approx(
        6 * 365 * 0.718 - 6 * 365 * 1.0 * 1e-4 - 6 * 365 * 0.0033  # inert ash: no methane
    )
    assert "(up to 30% of it replaceable)" in o.explanation
    assert "distance assumed" in o.explanation


def test_ranking_is_by_park_value_and_deterministic(knowledge: Knowledge) -> None:
    reg = registry(vent_storage="day")
    series = water_series() | steam_series() | {"ash": flat(10 / 24), "cement": flat(20 / 24)}
    first = run(reg, series, knowledge)
    assert [o.rank for o in first] == list(range(1, len(first) + 1))
    values = [o.value.park_vnd_per_year for o in first]
    assert values == sorted(values, reverse=True)
    assert {o.rule for o in first} == {"effluent_a_reuse", "steam_to_steam", "ash_slag_to_cement"}
    assert run(reg, series, knowledge) == first
    assert run(reg, series, knowledge, limit=2) == first[:2]


def test_sample_park_planted_opportunities(knowledge: Knowledge) -> None:
    reg = load_registry(SAMPLE_REGISTRY)
    night = (CLOCK >= 22) | (CLOCK < 6)
    midday = (CLOCK >= 9) & (CLOCK < 16)
    series = {
        "wwtp-effluent": flat(40.0),  # 960 m3/day, 300 already go to Thep An
        "hc-cooling": flat(8.0),
        "nd-makeup": flat(20.0),
        "mf-water": flat(10.0),
        "det-effluent": flat(20.0),
        "lv-water": flat(10.0),
        "hc-steam-vent": np.where(night, 800.0, 0.0),
        "gs-steam": np.where(night, 1200.0, 2500.0),
        "gs-boiler": flat(2000.0),
        "det-steam": flat(1500.0),
        "mf-steam": np.where(night, 0.0, 600.0),
        "nd-steam": flat(5000.0),
        "thep-heat": flat(3000.0),
        "nd-flyash": flat(0.5),
        "gx-cement": flat(1.0),
        "vt-plastic": flat(0.01),
        "tcn-feedstock": flat(0.05),
        "mf-pallets": flat(0.02),
        "cl-pallets": flat(0.001),
        "lv-boiler-fuel": flat(60.0),
        "bs-boiler-fuel": flat(0.1),  # t/h of wood chips
        "cl-solar": np.where(midday, 400.0, 0.0),
        "mf-elec": np.where(midday, 300.0, 100.0),
        "tcn-elec": flat(200.0),
    }
    opps = run(reg, series, knowledge)
    ids = {o.id for o in opps}
    for planted in (
        "songlam:wwtp-effluent>hc-cooling:effluent_a_reuse",
        "songlam:gs-boiler>det-steam:steam_to_steam",
        "songlam:nd-flyash>gx-cement:ash_slag_to_cement",
        "songlam:mf-pallets>bs-boiler-fuel:pallets_to_biomass_fuel",
        "songlam:vt-plastic>tcn-feedstock:scrap_plastic_to_recycler",
        "songlam:cl-solar>mf-elec:solar_to_neighbour",
    ):
        assert planted in ids, planted
    froms = {o.from_meter for o in opps}
    tos = {o.to_meter for o in opps}
    assert "det-effluent" not in froms  # column B
    assert "nd-steam" not in froms  # all of it already exchanged
    assert "thep-heat" not in froms  # no heat user within 500 m
    assert "cl-pallets" not in froms  # too small to be a surplus
    assert "lv-water" not in tos and "thep-water" not in tos  # too far; already exchanged
    pairs = {(o.from_meter, o.to_meter) for o in opps}
    assert ("hc-steam-vent", "det-steam") not in pairs  # 6 bar < 8 bar
    assert ("hc-steam-vent", "mf-steam") not in pairs  # vents at night, day shift
    assert ("mf-pallets", "lv-boiler-fuel") not in pairs  # an LPG water heater burns no wood
    assert ("wwtp-effluent", "mf-water") not in pairs  # a food plant never cleans with effluent
    # vented at night, when the paper mill's own boiler already makes more than it uses
    assert ("hc-steam-vent", "gs-steam") not in pairs
    nd = next(o for o in opps if o.to_meter == "nd-makeup")
    assert nd.uses == ("cooling_makeup",)  # never the boiler feed share
    assert nd.matched_per_day == pytest.approx(0.2 * 480)
    gs = next(o for o in opps if o.from_meter == "gs-boiler")
    assert gs.surplus_id == "songlam:gs-boiler:temporal"
    assert "beyond its own use" in gs.explanation


def _loose_knowledge() -> Knowledge:
    """Default knowledge with every threshold off, so the property sees every pairing."""
    data: dict[str, Any] = yaml.safe_load(DEFAULT_KNOWLEDGE.read_text(encoding="utf-8"))
    data["detection"] = {"min_present_share": 0.01, "min_hours_per_day": 1, "min_p50_per_day": {}}
    data["matching"]["require_positive_value"] = False
    for rule in data["rules"]:
        rule["min_matched_per_day"] = 0
    return Knowledge.model_validate(data)


LOOSE = _loose_knowledge()
SMALL = """
version: 1
parks:
  - id: q
    name: Q
    tenants:
      - id: a
        name: A
        location: {x_m: 0, y_m: 0}
        meters:
          - {id: s-steam, resource: energy.steam, direction: out, unit: kWh, kind: delta, quality: {pressure_bar: 9, temperature_c: 180}, destination: vented}
          - {id: s-water, resource: water.treated_effluent, direction: out, unit: m3, kind: delta, quality: {qcvn40_column: A}, destination: discharged}
      - id: b
        name: B
        location: {x_m: 0, y_m: 500}
        meters:
          - {id: d-steam, resource: energy.steam, direction: in, unit: kWh, kind: delta, quality: {pressure_bar: 5, temperature_c: 160}}
          - {id: d-water, resource: water.potable, direction: in, unit: m3, kind: delta, uses: [{name: cooling_makeup, share: 0.4}, {name: domestic}]}
"""
SMALL_REG = parse_registry(SMALL)


@st.composite
def hourly_values(draw: st.DrawFn) -> np.ndarray:
    """A day-by-day amount times an hour-of-day shape, with some hours missing: varied enough
    to put supply and demand out of step, small enough for hypothesis to shrink."""
    amount = st.floats(min_value=0, max_value=1000, allow_nan=False)
    days = np.array(draw(st.lists(amount, min_size=DAYS, max_size=DAYS)))
    shape = np.array(draw(st.lists(st.floats(0, 1), min_size=24, max_size=24)))
    values = np.outer(days, shape).ravel()
    missing = draw(st.lists(st.integers(0, N - 1), max_size=60))
    values[missing] = np.nan
    return values


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(supply=hourly_values(), demand=hourly_values(), kind=st.sampled_from(["steam", "water"]))
def test_matched_never_exceeds_either_side_in_any_bucket(
    supply: np.ndarray, demand: np.ndarray, kind: str
) -> None:
    series = {f"s-{kind}": supply, f"d-{kind}": demand}
    surpluses, opps = detect(SMALL_REG, day_rollups(SMALL_REG, series, START), LOOSE, NOW)
    if not surpluses:  # a median day of nothing is no surplus: nothing may be proposed
        assert opps == []
        return
    s = np.nan_to_num(supply)
    if kind == "steam":  # hourly coupling, 3 %/km line loss over 600 m routed
        offered, wanted = s * (1 - 0.03 * 0.6), np.nan_to_num(demand)
    else:  # daily coupling, lossless pipe, 40 % of the intake is cooling make-up
        offered = s.reshape(DAYS, 24).sum(axis=1)
        wanted = 0.4 * np.nan_to_num(demand).reshape(DAYS, 24).sum(axis=1)
    expected = np.minimum(offered, wanted).sum()
    total = sum(o.matched_per_day for o in opps) * DAYS
    assert total == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert total <= offered.sum() + 1e-6 and total <= wanted.sum() + 1e-6
    for o in opps:
        assert o.matched_per_day * DAYS <= np.minimum(offered, wanted).sum() + 1e-6
        assert o.supply_used_per_day * DAYS <= s.sum() + 1e-6


def test_exported_solar_sent_to_a_neighbour_gives_up_its_sale_to_evn(knowledge: Knowledge) -> None:
    """Decree 58/2025 lets rooftop solar sell part of its output to EVN: that sale is lost."""
    from tests.support.registries import meter, park, tenant

    reg = build(
        park(
            "p",
            tenant(
                "pv",
                meter(
                    "pv-out",
                    "energy.solar_export",
                    "out",
                    "kWh",
                    "delta",
                    destination="grid_export",
                ),
                location={"x_m": 0, "y_m": 0},
            ),
            tenant(
                "plant",
                meter("plant-elec", "energy.electricity", "in", "kWh", "delta"),
                location={"x_m": 0, "y_m": 500 / 1.2},
            ),
        )
    )
    midday = (CLOCK >= 9) & (CLOCK < 15)
    series = {"pv-out": np.where(midday, 100.0, 0.0), "plant-elec": flat(200.0)}
    (o,) = run(reg, series, knowledge)
    supply_yr = 600.0 * 365
    assert o.supply_used_per_day == pytest.approx(600.0)
    assert o.value.supplier_vnd_per_year == pytest.approx(-1000 * supply_yr)
    delivered = supply_yr * (1 - 0.01 * 0.5)  # the private line loses 1 %/km
    # the 22-110 kV production tariff (the default voltage) by hour: 09-15 on a weekday is
    # 2 h peak (09:30-11:30) and 4 h normal; the window's 4 Sundays have no peak
    weekday = 2 * 3398 + 4 * 1833
    sunday = 6 * 1833
    price = (24 * weekday + 4 * sunday) / (28 * 6)
    assert o.value.receiver_vnd_per_year == pytest.approx(delivered * price)
    assert "electricity valued at the 22-110kV (default) production tariff by time of use" in (
        o.explanation
    )
    assert "(71% normal, 29% peak): 2,280 VND/kWh on average" in o.explanation
    assert any("no supply_voltage" in n for n in o.value.notes)
    assert "ref-evn-1279-2025" in o.value.sources and "ref-evn-tou-hours" in o.value.sources
    # exported power already displaced grid power: only the line loss changes the CO2e
    ef = 0.6592e-3
    assert o.value.co2e_avoided_t_per_year == pytest.approx(delivered * ef - supply_yr * ef)
    assert "assume-solar-export-2026" in o.value.assumptions
    # the legal screen travels with the opportunity and its explanation
    assert o.legal_status == "permit"
    assert "Legal: needs a permit or an eligibility check: Tenant-to-tenant electricity" in (
        o.explanation
    )
    assert "ref-decree-57-2025, as of 2026-12-02" in o.legal


def test_electricity_is_valued_by_the_receivers_voltage_and_the_hours_it_flows(
    knowledge: Knowledge,
) -> None:
    """Night power at an off-peak tariff is worth far less than the all-customer average."""
    from tests.support.registries import meter, park, tenant

    def reg(voltage: str | None) -> Registry:
        extra = {"supply_voltage": voltage} if voltage else {}
        return build(
            park(
                "p",
                tenant(
                    "gen",
                    meter(
                        "gen-out",
                        "energy.solar_export",
                        "out",
                        "kWh",
                        "delta",
                        destination="curtailed",
                    ),
                    location={"x_m": 0, "y_m": 0},
                ),
                tenant(
                    "plant",
                    meter("plant-elec", "energy.electricity", "in", "kWh", "delta"),
                    location={"x_m": 0, "y_m": 0.1},
                    **extra,
                ),
            )
        )

    night = CLOCK < 4  # 00-04: off-peak every day
    series = {"gen-out": np.where(night, 100.0, 0.0), "plant-elec": flat(200.0)}
    (o,) = run(reg("<6kV"), series, knowledge)
    assert o.value.receiver_vnd_per_year == pytest.approx(o.matched_per_day * 365 * 1300)
    assert "(100% off-peak): 1,300 VND/kWh" in o.explanation
    assert not any("supply_voltage" in n for n in o.value.notes)
    (o,) = run(reg(">=110kV"), series, knowledge)
    assert o.value.receiver_vnd_per_year == pytest.approx(o.matched_per_day * 365 * 1146)


def _heat_park(exhaust_c: float, sector: str | None = None) -> Registry:
    from tests.support.registries import meter, park, tenant

    return build(
        park(
            "p",
            tenant(
                "mill",
                meter("exhaust", "energy.waste_heat", "out", "kWh", "delta", destination="vented",
                      quality={"temperature_c": exhaust_c}),
                location={"x_m": 0, "y_m": 0},
            ),
            tenant(
                "dye",
                meter("dye-steam", "energy.steam", "in", "kWh", "delta",
                      quality={"temperature_c": 175, "pressure_bar": 8}),
                meter("dye-water", "water.potable", "in", "m3", "delta", uses=[{"name": "cleaning"}]),
                location={"x_m": 0, "y_m": 100},
                **({"sector": sector} if sector else {}),
            ),
            tenant(
                "wwtp",
                meter("eff", "water.treated_effluent", "out", "m3", "delta",
                      quality={"qcvn40_column": "A"}, destination="discharged"),
                location={"x_m": 100, "y_m": 100},
            ),
        )
    )  # fmt: skip


def test_heat_recovered_is_bounded_by_the_temperatures(knowledge: Knowledge) -> None:
    """A 280 C exhaust raising 175 C steam gives about a third of its heat, not 80 %."""
    series = {"exhaust": flat(1000.0), "dye-steam": flat(2000.0)}
    (o,) = [o for o in run(_heat_park(280), series, knowledge) if o.rule == "waste_heat_to_steam"]
    share = 0.9 * (280 - 175 - 20) / (280 - 25)
    assert share == pytest.approx(0.3, abs=0.001)
    assert o.matched_per_day == pytest.approx(24_000 * share * (1 - 0.03 * 0.12))
    hotter = run(_heat_park(500), series, knowledge)
    (h,) = [o for o in hotter if o.rule == "waste_heat_to_steam"]
    # a hotter source gives more of its heat: (500 - 195) / (500 - 25)
    assert h.matched_per_day == pytest.approx(24_000 * 0.9 * 305 / 475 * (1 - 0.03 * 0.12))


def test_a_food_plant_is_never_offered_effluent_for_cleaning(knowledge: Knowledge) -> None:
    series = {
        "eff": flat(10.0),
        "dye-water": flat(10.0),
        "exhaust": flat(0.0),
        "dye-steam": flat(0.0),
    }
    plain = {o.to_meter for o in run(_heat_park(280), series, knowledge)}
    assert "dye-water" in plain  # cleaning with column-A effluent
    food = {o.to_meter for o in run(_heat_park(280, "food_beverage"), series, knowledge)}
    assert "dye-water" not in food


def test_fly_ash_properties_gate_the_cement_link_or_are_flagged_to_confirm(
    knowledge: Knowledge,
) -> None:
    """TCVN 10302:2014's properties: declared and out of limits, no link; undeclared, a link
    with the tests to make before agreeing."""
    series = {"ash": flat(10 / 24), "cement": flat(20 / 24)}
    (o,) = run(registry(), series, knowledge)  # the test park declares no ash properties
    assert "loss on ignition <= 12% (TCVN 10302:2014)" in o.checks and len(o.checks) == 5
    assert "To confirm before agreeing: loss on ignition <= 12%" in o.explanation
    good = {"loss_on_ignition_pct": 5, "so3_pct": 1, "free_cao_pct": 1, "moisture_pct": 0.5,
            "chloride_pct": 0.01}  # fmt: skip
    (o,) = run(build(changed(PARK, "ash", quality=good)), series, knowledge)
    assert o.checks == () and "To confirm" not in o.explanation
    high_loi = build(changed(PARK, "ash", quality={**good, "loss_on_ignition_pct": 15}))
    assert run(high_loi, series, knowledge) == []


def test_chemically_treated_pallets_are_not_fuel(knowledge: Knowledge) -> None:
    series = pallet_series()
    (o,) = run(registry(), series, knowledge)
    assert any("ISPM 15" in c for c in o.checks)  # undeclared: to confirm
    ht = build(changed(PARK, "pallets", quality={"wood_treatment": "heat_treated"}))
    (o,) = run(ht, series, knowledge)
    assert o.checks == ()
    treated = build(changed(PARK, "pallets", quality={"wood_treatment": "chemically_treated"}))
    assert run(treated, series, knowledge) == []


def test_literature_rules_waste_paper_and_biogas(knowledge: Knowledge) -> None:
    from tests.support.registries import meter, park, tenant

    def reg(accepts: list[str]) -> Registry:
        return build(
            park(
                "p",
                tenant(
                    "print",
                    meter("paper", "waste.paper", "out", "t", "delta", destination="landfill"),
                    meter("gas-out", "energy.biogas", "out", "kWh", "delta", destination="vented"),
                    location={"x_m": 0, "y_m": 0},
                ),
                tenant(
                    "mill",
                    meter("fibre", "material.recovered_paper", "in", "t", "delta"),
                    meter("ng", "energy.natural_gas", "in", "kWh", "delta", uses=[{"name": "boiler_fuel"}]),
                    location={"x_m": 0, "y_m": 500},
                    equipment=[{"id": "b", "type": "boiler", "fuel": "energy.natural_gas", "accepts": accepts}],
                ),
            )
        )  # fmt: skip

    series = {
        "paper": flat(1 / 24),
        "fibre": flat(5 / 24),
        "gas-out": flat(100.0),
        "ng": flat(500.0),
    }
    found = {o.rule: o for o in run(reg(["biogas"]), series, knowledge)}
    paper = found["waste_paper_to_paper_mill"]
    assert paper.matched_per_day == pytest.approx(0.9)  # 90% usable after sorting
    assert paper.legal_status == "conditional"
    gas = found["biogas_to_boiler_fuel"]
    assert gas.matched_per_day == pytest.approx(2400.0)
    # biogenic CO2 is not counted: the natural gas it displaces is all avoided
    assert gas.value.co2e_avoided_t_per_year == pytest.approx(2400 * 365 * 56.1 * 3.6e-6)
    without = {o.rule for o in run(reg([]), series, knowledge)}
    assert "biogas_to_boiler_fuel" not in without  # the boiler does not accept biogas


def test_each_opportunity_says_how_firm_its_figures_are(knowledge: Knowledge) -> None:
    (o,) = run(registry(), water_series(), knowledge)
    c = o.confidence
    assert c is not None
    water_yr = 26 * 150 * 365 / 28
    purchase, pipe, polish = water_yr * 12100, water_yr * 300 * 0.32, water_yr * 2000
    # HCMC's tariff is published; the pumping cost and the polishing are assumptions
    assert c.assumption_share == pytest.approx((pipe + polish) / (purchase + pipe + polish))
    assert not c.conversion_assumed  # effluent replaces water one for one
    # 150 m3 on 26 days, none on 2: the 10th percentile day still takes 150
    assert c.matched_p10_per_day == pytest.approx(150)
    assert c.matched_p90_per_day == pytest.approx(150)
    assert c.days == 28 and c.seasons == ("rainy",) and c.all_seasons == ("dry", "rainy")
    assert c.level == "medium"  # one season seen
    assert "Confidence medium: 15% of the value rests on assumed figures" in o.explanation
    assert "28 days of data, rainy season only" in o.explanation
    # fly ash: the 30% blend is an assumed conversion; undeclared quality, placeholder prices
    (ash,) = run(registry(), {"ash": flat(10 / 24), "cement": flat(20 / 24)}, knowledge)
    assert ash.confidence is not None and ash.confidence.conversion_assumed
    assert ash.confidence.level == "low"  # the cement price and disposal fee are assumptions


def test_displacing_a_registered_sale_debits_the_sellers_margin(knowledge: Knowledge) -> None:
    """Steam the paper mill buys from the park's utility today: vented steam replacing it costs
    the utility its margin, and the park saves only the coal the utility no longer burns."""
    from tests.support.registries import meter, park, tenant

    def reg(utility_boiler: bool) -> Registry:
        boiler = [{"id": "ub", "type": "boiler", "fuel": "energy.coal", "efficiency": 0.8}]
        return build(
            park(
                "p",
                tenant(
                    "steamer",
                    meter("vent", "energy.steam", "out", "kWh", "delta", destination="vented",
                          quality={"pressure_bar": 6, "temperature_c": 165}),
                    location={"x_m": 0, "y_m": 0},
                ),
                tenant(
                    "paper",
                    meter("paper-steam", "energy.steam", "in", "kWh", "delta",
                          quality={"pressure_bar": 5, "temperature_c": 160}),
                    location={"x_m": 0, "y_m": 100},
                ),
                tenant(
                    "utility",
                    meter("util-steam", "energy.steam", "out", "kWh", "delta", destination="sold"),
                    location={"x_m": 0, "y_m": 900},
                    equipment=boiler if utility_boiler else [],
                ),
                exchanges=[{"from_meter": "util-steam", "to_meter": "paper-steam", "share": 1.0,
                            "since": "2020-01-01"}],
            )
        )  # fmt: skip

    night = (CLOCK >= 22) | (CLOCK < 6)
    series = {
        "vent": np.where(night, 500.0, 0.0),
        "paper-steam": flat(300.0),
        "util-steam": flat(300.0),
    }
    (o,) = run(reg(True), series, knowledge)
    kwh_yr = o.matched_per_day * 365
    coal = 430 / 0.8  # the utility's cost of a kWh of steam
    v = o.value
    assert v.seller == "utility"
    assert v.receiver_vnd_per_year == round(kwh_yr * 750)  # it buys at the steam price
    assert v.seller_vnd_per_year == round(-kwh_yr * (750 - coal))  # the utility's lost margin
    assert v.park_vnd_per_year == pytest.approx(kwh_yr * coal, abs=2)  # the coal saved
    assert v.co2e_avoided_t_per_year == pytest.approx(kwh_yr * 94.6 * 3.6e-6 / 0.8)
    assert (
        "Utility loses" in o.explanation and "net of the coal it no longer burns" in o.explanation
    )
    # with no equipment named, the utility's margin is unknown and counted as none
    (o,) = run(reg(False), series, knowledge)
    assert o.value.seller_vnd_per_year == 0 and "margin unknown" in o.explanation


def test_a_tenants_own_contract_price_overrides_the_tariff(knowledge: Knowledge) -> None:
    from tests.support.registries import meter, park, tenant

    reg = build(
        park(
            "p",
            tenant(
                "pv",
                meter("pv-out", "energy.solar_export", "out", "kWh", "delta", destination="curtailed"),
                location={"x_m": 0, "y_m": 0},
            ),
            tenant(
                "plant",
                meter("plant-elec", "energy.electricity", "in", "kWh", "delta", price_vnd_per_unit=1500),
                location={"x_m": 0, "y_m": 100},
            ),
        )
    )  # fmt: skip
    midday = (CLOCK >= 9) & (CLOCK < 15)
    (o,) = run(reg, {"pv-out": np.where(midday, 100.0, 0.0), "plant-elec": flat(200.0)}, knowledge)
    assert o.value.receiver_vnd_per_year == round(o.matched_per_day * 365 * 1500)
    assert "electricity valued at Plant's contract price, 1,500 VND/kWh" in o.explanation
    assert "ref-evn-1279-2025" not in o.value.sources
    assert o.confidence is not None and o.confidence.assumption_share == 0.0


def test_hazardous_waste_goes_only_to_a_licensed_tenant(knowledge: Knowledge) -> None:
    """LEP 2020 Art. 83: shown as not allowed, and never in the plan, unless licensed."""
    from service.plan import make_plan
    from service.runs import findings_for_plan

    series = {"ash": flat(10 / 24), "cement": flat(20 / 24)}
    doc = changed(PARK, "ash", hazardous=True)
    reg = build(doc)
    (o,) = run(reg, series, knowledge)
    assert o.legal_status == "not_allowed" and "Block Maker holds none" in o.explanation
    _, matches, _ = findings_for_plan(day_rollups(reg, series, START), reg, knowledge, NOW, 28)
    plan, _ = make_plan(matches.problems)
    assert plan.links == ()  # the law forbids it: nothing planned
    blocks = next(t for t in doc["tenants"] if t["id"] == "blocks")
    blocks["licences"] = ["hazardous_waste"]
    (o,) = run(build(doc), series, knowledge)
    assert o.legal_status == "permit" and "Block Maker holds one" in o.explanation


def test_flue_heat_made_from_displaced_steam_is_not_planned_twice(knowledge: Knowledge) -> None:
    """The mill's vented steam could replace the paper mill's steam; the paper mill's flue heat,
    made at 0.3 kWh per kWh of that steam (``derived_from``), could heat the laundry's water.
    Ranked alone both rows stand; the plan holds the flue heat it hands out plus 0.3 x the
    steam it displaces within the flue surplus, which the same park without the declaration
    exceeds."""
    from service.plan import make_plan
    from service.runs import findings_for_plan
    from tests.support.registries import meter, park, tenant

    def reg(derived: bool) -> Registry:
        flue = meter(
            "paper-flue",
            "energy.waste_heat",
            "out",
            "kWh",
            "delta",
            destination="vented",
            quality={"temperature_c": 180},
        )
        if derived:
            flue["derived_from"] = {"meter": "paper-steam", "per_unit": 0.3}
        return build(
            park(
                "p",
                tenant(
                    "mill",
                    meter("vent", "energy.steam", "out", "kWh", "delta", destination="vented",
                          quality={"pressure_bar": 6, "temperature_c": 165}),
                    location={"x_m": 0, "y_m": 0},
                ),
                tenant(
                    "paper",
                    meter("paper-steam", "energy.steam", "in", "kWh", "delta",
                          quality={"pressure_bar": 5, "temperature_c": 160}),
                    flue,
                    location={"x_m": 0, "y_m": 100},
                ),
                tenant(
                    "laundry",
                    meter("laundry-hw", "energy.hot_water", "in", "kWh", "delta",
                          uses=[{"name": "water_heating"}], quality={"temperature_c": 60}),
                    location={"x_m": 0, "y_m": 200},
                ),
            )
        )  # fmt: skip

    series = {
        "vent": flat(100.0),
        "paper-steam": flat(100.0),
        "paper-flue": flat(30.0),
        "laundry-hw": flat(50.0),
    }
    chained = reg(True)
    opps = run(chained, series, knowledge)
    by_pair = {(o.from_meter, o.to_meter): o for o in opps}
    steam, flue = by_pair[("vent", "paper-steam")], by_pair[("paper-flue", "laundry-hw")]
    surpluses, matches, _ = findings_for_plan(
        day_rollups(chained, series, START), chained, knowledge, NOW, 28
    )
    (problem,) = matches.problems
    assert [(c.demand, c.per_unit) for c in problem.chains] == [("demand:paper-steam", 0.3)]
    flue_surplus = next(s for s in surpluses if s.meter == "paper-flue").mean_per_day

    def planned(plan_links: Any) -> tuple[float, float]:
        got = {pl.opportunity_id: pl for pl in plan_links}
        s, f = got.get(steam.id), got.get(flue.id)
        return (s.matched_per_day if s else 0.0, f.supply_used_per_day if f else 0.0)

    plan, _ = make_plan(matches.problems)
    steam_day, flue_day = planned(plan.links)
    assert flue_day + 0.3 * steam_day <= flue_surplus * (1 + 1e-6)
    assert steam_day > 0  # the plan still runs the better of the two
    # without the declaration the same park plans both in full, past what the boiler makes
    free = findings_for_plan(
        day_rollups(reg(False), series, START), reg(False), knowledge, NOW, 28
    )[1]
    unchained, _ = make_plan(free.problems)
    steam_day, flue_day = planned(unchained.links)
    assert flue_day + 0.3 * steam_day > flue_surplus * 1.05
