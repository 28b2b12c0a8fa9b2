"""The planted cases: every link a rule of the rule book could make in the sample park, and what
the design makes of it. Pure declarations.

Each case names a supply out-meter, a receiver in-meter and a rule, and says, for the design's
variants (``variants``), whether it is an opportunity or why not, in a sentence. An opportunity
also states how its quantity is to be reckoned: the time bucket within which supply may meet
demand (``coupling``), the share of the receiver's intake it may replace (``share``: the use's
share in the registry, or how much of a blend may change) and how many receiver units one unit
of supply replaces (``per_unit``). ``oracle`` turns these into figures from the designed flows
by plain arithmetic and checks each figure is well clear of the rule book's thresholds.

Only vocabulary is shared with matching: rule ids, coupling names, resource and use names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from parkflow.registry.schema import Coupling

Reason = Literal[
    "already_exchanged",
    "use_not_replaceable",
    "quality_mismatch",
    "too_far",
    "too_small",
    "no_temporal_overlap",
    "equipment_missing",  # the receiver's registered equipment cannot take the supply
    "own_generation",  # the receiver makes more than it uses whenever the supply flows
]
Variants = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Case:
    """One planted link; ``reason`` None is an opportunity."""

    supply: str  # out-meter
    demand: str  # in-meter of another tenant
    rule: str
    reason: Reason | None
    why: str  # the design's reason, for a reader
    coupling: Coupling = "hour"
    share: float = 1.0  # of the receiver's intake the supply may replace
    per_unit: float = 1.0  # receiver units one unit of supply replaces
    own_use: str | None = None  # the supply is generation beyond this in-meter's use, by hour
    demand_scale: float = 1.0  # receiver units per unit its meter stores (a fuel's kWh per t)
    # the receiver's own generation meter: in hours it makes more than the demand meter uses,
    # the receiver needs nothing from outside
    receiver_generation: str | None = None
    # the tenant whose registered sale to the receiver this link displaces (it loses a margin)
    displaces_sale_of: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.supply, self.demand, self.rule)


def planted_cases(v: Variants) -> tuple[Case, ...]:
    """Every case of the sample park under the variants ``v`` (``variants.VARIANTS``)."""
    return (*_effluent(v), *_steam(v), *_waste_heat(v), *_materials(v), *_solar(v))


# --- effluent reuse: a day tank between supply and use ---------------------------------------


# Potable intakes and the one use effluent may replace there, with its share in the registry;
# None: no use the rule may replace.
def _reusable(v: Variants) -> dict[str, tuple[str, float] | None]:
    return {
        "thep-water": ("cooling_makeup", 0.6),
        "det-water": ("cleaning", 0.15),
        "mf-water": None,  # product water, and cleaning in a food plant: never effluent
        "vt-water": None,  # process water only
        "gs-water": ("cleaning", 0.2) if v["gs_water_use"] == "cleaning" else None,
        "hc-cooling": ("cooling_makeup", 1.0),
        "nd-makeup": ("cooling_makeup", 0.2) if v["nd_makeup_use"] == "some_cooling" else None,
        "lv-water": ("cooling_makeup", 0.5),
    }


def _effluent(v: Variants) -> list[Case]:
    rule = "effluent_a_reuse"
    lv_far = v["lanh_viet_site"] == "far"
    out: list[Case] = []
    for source in ("wwtp-effluent", "det-effluent"):
        for to, use in _reusable(v).items():
            if source == "det-effluent" and to == "det-water":
                continue  # the dye house's own intake
            if (
                source == "wwtp-effluent"
                and to == "thep-water"
                and (v["thep_water_exchange"] == "registered")
            ):
                why = "300 m3/day of WWTP effluent already cools the mill (registered exchange)"
                out.append(Case(source, to, rule, "already_exchanged", why))
            elif use is None:
                why = f"{to} takes water only for uses effluent may not replace"
                out.append(Case(source, to, rule, "use_not_replaceable", why))
            elif source == "det-effluent" and v["det_effluent_column"] == "B":
                why = "the dye house's effluent meets column B only; reuse needs column A"
                out.append(Case(source, to, rule, "quality_mismatch", why))
            elif to == "lv-water" and lv_far:
                why = "the cold store is over 3 km of pipe away"
                out.append(Case(source, to, rule, "too_far", why))
            else:
                name, share = use
                why = f"column-A effluent for {to}'s {name.replace('_', ' ')}"
                out.append(Case(source, to, rule, None, why, "day", share))
    return out


# --- steam: no storage, supply must meet demand hour by hour ---------------------------------


def _steam(v: Variants) -> list[Case]:
    rule = "steam_to_steam"
    mf_all_day = v["mf_steam_shift"] == "round_the_clock"
    mf_night = "Mekong Foods' third shift takes steam at night too"
    mf_day = "steam spare at night only; Mekong Foods' lines take steam 06-22"
    boiler = "gs-boiler", "gs-steam"  # generation, own use
    vent = "hc-steam-vent"
    out = [
        Case(boiler[0], "det-steam", rule, None, "the paper mill's boiler makes more than its"
             " night shift uses; the dye house takes steam round the clock (and buys less from"
             " the utility)", own_use=boiler[1], displaces_sale_of="nhiet-dien"),
        Case(boiler[0], "mf-steam", rule, None if mf_all_day else "no_temporal_overlap",
             mf_night if mf_all_day else mf_day, own_use=boiler[1]),
        Case(vent, "gs-steam", rule, "own_generation", "steam is vented at night, when the"
             " paper mill's own boiler already makes more than its line uses",
             receiver_generation=boiler[0]),
        Case(vent, "mf-steam", rule, None if mf_all_day else "no_temporal_overlap",
             mf_night if mf_all_day else mf_day),
    ]  # fmt: skip
    if v["det_steam_pressure"] == "8_bar":
        out.append(Case(vent, "det-steam", rule, "quality_mismatch", "6 bar vented steam; the"
                        " dye house needs 8 bar"))  # fmt: skip
    else:
        out.append(Case(vent, "det-steam", rule, None, "the new dye machines run on 5 bar: the"
                        " 6 bar vented steam serves them at night"))  # fmt: skip
    sold = "registered exchange: the utility sells its steam to this tenant"
    out += [
        Case("nd-steam", "det-steam", rule, "already_exchanged", sold),
        Case("nd-steam", "mf-steam", rule, "already_exchanged", sold),
    ]
    if v["nd_steam_committed"] == "all":
        why = "all of the utility's steam is already sold to the dye house and the food plant"
        out.append(
            Case(
                "nd-steam",
                "gs-steam",
                rule,
                "already_exchanged",
                why,
                receiver_generation=boiler[0],
            )
        )
    else:
        why = "contracts take 80% of the utility's steam; the rest could feed the paper mill"
        out.append(
            Case(
                "nd-steam",
                "gs-steam",
                rule,
                None,
                why + " by day (at night its own boiler makes more than it uses)",
                receiver_generation=boiler[0],
            )
        )
    return out


def _waste_heat(v: Variants) -> list[Case]:
    central = v["thep_site"] == "central"
    far = "no steam user within 500 m of the mill"
    # 280 C exhaust cooled to the steam's temperature plus 20 K, against 25 C, less 10% boiler
    # losses: the design's steam temperatures are 175 C (dye house) and 152 C (food plant)
    recovered = {
        to: 0.9 * (280 - t - 20) / (280 - 25) for to, t in (("det-steam", 175), ("mf-steam", 152))
    }
    out = [
        Case("thep-heat", to, "waste_heat_to_steam", None,
             f"a waste-heat boiler at the mill, next to {to}, raises"
             f" {recovered[to]:.2f} kWh steam per kWh of exhaust heat", per_unit=recovered[to])
        if central else Case("thep-heat", to, "waste_heat_to_steam", "too_far", far)
        for to in ("det-steam", "mf-steam")
    ]  # fmt: skip
    out.append(Case("thep-heat", "gs-steam", "waste_heat_to_steam", "too_far", far))
    out.append(
        Case("thep-heat", "lv-boiler-fuel", "waste_heat_to_fuel", "too_far", "the laundry's"
             " water heater is far over 500 m from the mill")
    )  # fmt: skip
    return out


# --- solid streams: a yard stores them, trucks take them across the park --------------------


def _materials(v: Variants) -> list[Case]:
    pallets = "pallets_to_biomass_fuel"
    wood = 4333.0  # kWh of fuel a tonne of pallet wood replaces (15.6 MJ/kg)
    chips = 15.6e3 / 3.6  # kWh in a tonne of the brewery's wood chips (15.6 MJ/kg)
    lpg_heater = "Lanh Viet's water heater burns LPG and cannot take wood"
    out = [
        Case("nd-flyash", "gx-cement", "ash_slag_to_cement", None, "fly ash replaces up to"
             " 30% of the cement in Gach Xanh's blocks", "week", share=0.3),
        Case("mf-pallets", "bs-boiler-fuel", pallets, None, "the food plant's pallets go into"
             " the brewery's wood-chip boiler", "week", per_unit=wood, demand_scale=chips),
        Case("mf-pallets", "lv-boiler-fuel", pallets, "equipment_missing", lpg_heater),
        Case("cl-pallets", "lv-boiler-fuel", pallets, "equipment_missing", lpg_heater),
    ]  # fmt: skip
    if v["cang_pallets"] == "tiny":
        why = "the logistics hub breaks a few pallets a week: not worth a truck"
        out.append(Case("cl-pallets", "bs-boiler-fuel", pallets, "too_small", why))
    else:
        why = "the logistics hub's broken pallets go into the brewery's wood-chip boiler"
        out.append(
            Case("cl-pallets", "bs-boiler-fuel", pallets, None, why, "week", per_unit=wood,
                 demand_scale=chips)
        )  # fmt: skip
    plastic = "scrap_plastic_to_recycler"
    if v["vt_plastic"] == "normal":
        why = "Viettronic's scrap plastic, 90% of it usable after sorting, feeds the recycler"
        out.append(Case("vt-plastic", "tcn-feedstock", plastic, None, why, "month", per_unit=0.9))
    else:
        why = "Viettronic makes too little scrap plastic to be worth collecting"
        out.append(Case("vt-plastic", "tcn-feedstock", plastic, "too_small", why))
    return out


# --- rooftop solar: no battery, generation meets daytime loads hour by hour -----------------


def _solar(v: Variants) -> list[Case]:
    rule = "solar_to_neighbour"
    reach = {
        "thep-elec": v["thep_site"] == "central",
        "mf-elec": True,
        "vt-elec": True,
        "hc-elec": True,
        "gx-elec": False,
        "tcn-elec": True,
        "lv-elec": v["lanh_viet_site"] == "near",
    }
    return [
        Case("cl-solar", to, rule, None, f"curtailed solar by day for {to}'s daytime load")
        if near
        else Case("cl-solar", to, rule, "too_far", "over 1.5 km of private line away")
        for to, near in reach.items()
    ]
