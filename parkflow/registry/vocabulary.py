"""What each allowed registry value means, and the words integrators reach for instead.

The meanings are published in the registry's JSON Schema (``x-meanings`` on the field) and in
the generated reference, so the schema, an editor's hover text and docs/registry.md say the
same thing from one source. The aliases turn a refused value into a suggestion ("did you mean
'cumulative'?"): words met in meter data sheets, park contracts and regulations that parkflow
spells differently. An alias is only offered when its target is allowed where it was written.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING

from parkflow.yamlfile import suggestion

if TYPE_CHECKING:
    from parkflow.registry.schema import RegistryFile

DIRECTION_MEANINGS: dict[str, str] = {
    "in": "consumption or intake: what the tenant takes; an in-meter can be a receiver",
    "out": "generation or discharge: what the tenant releases; an out-meter can be a supplier",
}

METER_KIND_MEANINGS: dict[str, str] = {
    "cumulative": "an ever-growing register (index, totaliser): the quantity between two"
    " readings is their difference. A drop is a new register at a declared `replaced`"
    " instant, a rollover when `rollover` explains it, and otherwise a reset to zero",
    "delta": "each reading is the quantity since the previous reading (a first reading counts"
    " at its own instant)",
    "rate": "an instantaneous rate per hour (kW, m3/h, t/h), integrated over time by"
    " `integration`; a gap longer than `max_gap_s` is no data, not zero",
}

INTEGRATION_MEANINGS: dict[str, str] = {
    "trapezoid": "linear between readings: the mean of the two rates times the time (default)",
    "previous": "a step: each reading's rate holds until the next reading",
}

DESTINATION_MEANINGS: dict[str, str] = {
    "sewer_to_wwtp": "to the park's central wastewater treatment plant through the sewer, for a"
    " fee",
    "discharged": "released to a river or drain after the tenant's own treatment",
    "landfill": "to a landfill (diverting it counts as landfill diverted)",
    "open_dump": "dumped on open ground (diverting it counts as landfill diverted)",
    "incineration": "burnt off-site or on site without energy recovery",
    "sold": "sold off-site (the sale price goes in destination_vnd_per_unit, negative)",
    "vented": "steam or heat released to air",
    "curtailed": "generation switched off because nobody takes it",
    "grid_export": "electricity sent to the grid (it already displaces grid electricity)",
    "self_use": "generated on site and used by the tenant itself: only the excess over its own"
    " use is a surplus",
    "other": "anywhere else",
}

COUPLING_MEANINGS: dict[str, str] = {
    "hour": "supply and demand must meet hour by hour (no storage: steam, electricity, heat)",
    "day": "a day's supply may meet the same day's demand (a tank buffers within the day)",
    "week": "a week's supply may meet the same week's demand (a yard or silo)",
    "month": "a month's supply may meet the same month's demand (long-term storage)",
}

QCVN40_COLUMN_MEANINGS: dict[str, str] = {
    "A": "QCVN 40:2011/BTNMT column A: may be discharged into waters used for domestic"
    " supply; the usual gate for reuse in cooling, irrigation and cleaning",
    "B": "QCVN 40:2011/BTNMT column B: may be discharged into other receiving waters; the"
    " usual inflow limit of a park's central wastewater plant",
    "C": "worse than column B: not a QCVN 40 column, but the class some parks' central plants"
    " accept at a higher fee",
}

# A word written in place of an allowed value -> the value meant. Keys are compared in lower
# case with spaces and hyphens read as underscores.
ALIASES: dict[str, str] = {
    # meter kinds
    "counter": "cumulative",
    "totaliser": "cumulative",
    "totalizer": "cumulative",
    "register": "cumulative",
    "index": "cumulative",
    "accumulated": "cumulative",
    "increment": "delta",
    "interval": "delta",
    "instantaneous": "rate",
    "flow_rate": "rate",
    # directions
    "input": "in",
    "intake": "in",
    "consumption": "in",
    "output": "out",
    "generation": "out",
    "discharge": "out",
    # destinations
    "sewer_to_central_wwtp": "sewer_to_wwtp",
    "central_wwtp": "sewer_to_wwtp",
    "wwtp": "sewer_to_wwtp",
    "sewer": "sewer_to_wwtp",
    "landfilled": "landfill",
    "dump": "open_dump",
    "incinerated": "incineration",
    "sale": "sold",
    "export": "grid_export",
    "own_use": "self_use",
    "self_consumption": "self_use",
    # integration
    "linear": "trapezoid",
    "step": "previous",
    # in-meter uses (only offered when the knowledge names the target)
    "cooling_tower_makeup": "cooling_makeup",
    "cooling_tower": "cooling_makeup",
    "cooling_water": "cooling_makeup",
}

# "QCVN40:2011-A", "QCVN 40:2011/BTNMT column A", "qcvn40 A": the class letter is what counts.
_QCVN = re.compile(
    r"^\s*qcvn[\s_]*40(?:[:/\-\s_]*2011)?(?:[/\-\s_]*btnmt)?[\s:/\-_]*"
    r"(?:col(?:umn)?|class|cot)?[\s:/\-_]*([abc])\s*$",
    re.IGNORECASE,
)


def alias_of(value: str) -> str | None:
    """The allowed value an integrator's word stands for, if it is a known synonym."""
    qcvn = _QCVN.match(value)
    if qcvn:
        return qcvn.group(1).upper()
    return ALIASES.get(_folded(value))


def _folded(value: str) -> str:
    return re.sub(r"[\s\-]+", "_", value.strip().lower())


def unknown_uses(registry: RegistryFile, known: Collection[str]) -> list[str]:
    """One warning per use name that the knowledge does not know, with the meters that name it
    and the nearest known name.

    A warning, not an error: a park may name its own uses (a rule it adds in its knowledge
    override can then replace them), but a near miss such as ``cooling_tower_makeup`` for
    ``cooling_makeup`` silently keeps every rule from seeing the intake.
    """
    meters: dict[str, list[str]] = {}
    for park in registry.parks:
        for tenant in park.tenants:
            for meter in tenant.meters:
                for use in meter.uses or ():
                    if use.name not in known:
                        meters.setdefault(use.name, []).append(f"{park.id}/{tenant.id}/{meter.id}")
    allowed = sorted(known)
    out = []
    for name, where in meters.items():
        line = f"use {name!r} ({', '.join(where)}) is unknown to the knowledge base:"
        line += " no substitution rule will replace it"
        guess = suggestion(name, allowed, alias_of)
        out.append(line + (f": did you mean {guess!r}?" if guess is not None else ""))
    return out


WOOD_TREATMENT_MEANINGS: dict[str, str] = {
    "untreated": "plain wood, never treated",
    "heat_treated": "heat-treated against pests (ISPM 15 stamp 'HT'): burns as clean wood",
    "chemically_treated": "fumigated or preserved (ISPM 15 'MB', CCA, creosote): not a clean fuel",
    "painted": "painted or coated: not a clean fuel",
}

VOLTAGE_MEANINGS: dict[str, str] = {
    ">=110kV": "connected at 110 kV or above",
    "22-110kV": "from 22 kV to under 110 kV (the default when none is given)",
    "6-22kV": "from 6 kV to under 22 kV",
    "<6kV": "under 6 kV",
}

EQUIPMENT_TYPE_MEANINGS: dict[str, str] = {
    "boiler": "raises steam (makes energy.steam unless `makes` says otherwise)",
    "water_heater": "heats water (makes energy.hot_water)",
    "furnace": "process heat: melting, heat treatment",
    "kiln": "firing bricks, cement, ceramics",
    "dryer": "drying product or sludge",
    "generator": "makes electricity on site (energy.electricity)",
    "chiller": "makes chilled water",
    "cooling_tower": "rejects heat to air; takes make-up water",
    "other": "anything else a rule may name",
}

FEED_MEANINGS: dict[str, str] = {
    "wood_waste": "clean, untreated wood: pallets, offcuts, chips",
    "biomass": "rice husk, bagasse, other solid biomass",
    "coal": "coal",
    "natural_gas": "pipeline or compressed natural gas",
    "lpg": "liquefied petroleum gas",
    "biogas": "biogas from anaerobic treatment",
    "fuel_oil": "fuel oil or diesel",
    "waste_oil": "used oil, where the law lets it be burnt",
    "waste_heat": "hot water or exhaust through a heat exchanger",
    "steam": "steam from a neighbour into its header",
}
