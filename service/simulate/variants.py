"""Random designs of the sample park: what a seed redraws. Pure.

A seed redraws what varies in a real park: levels, noise, weekly and seasonal patterns, sites
within the plan, and for each planted case which side of the line it falls (steam pressure,
shift pattern, an exchange registered or not, ...). The registry the seed implies is part of
the design, since detection reads locations, uses and quality from it; ``cases`` declares
what each variant makes of the planted cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from parkflow.model import MeterKind
from parkflow.registry.schema import Park, RegistryFile
from service.simulate.flows import Fault
from service.simulate.profiles import CONTINUOUS, SUNDAY_LOW, Profile, hours_shape
from service.simulate.sample import default_profiles

Data = dict[str, Any]
Profiles = dict[str, Profile]
Apply = Callable[[Data, Profiles, str], None]


def _meter(data: Data, meter_id: str) -> Data:
    for t in data["parks"][0]["tenants"]:
        for m in t["meters"]:
            if m["id"] == meter_id:
                return m  # type: ignore[no-any-return]
    raise KeyError(meter_id)


def _tenant(data: Data, tenant_id: str) -> Data:
    for t in data["parks"][0]["tenants"]:
        if t["id"] == tenant_id:
            return t  # type: ignore[no-any-return]
    raise KeyError(tenant_id)


def _mf_steam(data: Data, profiles: Profiles, variant: str) -> None:
    if variant == "round_the_clock":  # a third shift: steam at night too, overlapping the vents
        profiles["mf-steam"] = replace(profiles["mf-steam"], shape=CONTINUOUS, week=SUNDAY_LOW)


def _det_steam(data: Data, profiles: Profiles, variant: str) -> None:
    if variant == "5_bar":  # new dye machines run on low-pressure steam: vented steam qualifies
        _meter(data, "det-steam")["quality"] = {"pressure_bar": 5, "temperature_c": 158}


def _lanh_viet(data: Data, profiles: Profiles, variant: str) -> None:
    if variant == "near":  # the cold store moved into phase 1, within pipe reach
        _tenant(data, "lanh-viet")["location"] = {"x_m": 1500, "y_m": 900}


def _thep_exchange(data: Data, profiles: Profiles, variant: str) -> None:
    if variant == "none":  # effluent reuse at the mill was never built
        ex = data["parks"][0]["exchanges"]
        data["parks"][0]["exchanges"] = [e for e in ex if e["to_meter"] != "thep-water"]


def _cang_pallets(data: Data, profiles: Profiles, variant: str) -> None:
    if variant == "larger":
        profiles["cl-pallets"] = replace(profiles["cl-pallets"], level=0.01)


def _det_effluent(data: Data, profiles: Profiles, variant: str) -> None:
    if variant == "A":  # the dye house's own treatment plant was upgraded
        _meter(data, "det-effluent")["quality"] = {"qcvn40_column": "A"}


def _vt_plastic(data: Data, profiles: Profiles, variant: str) -> None:
    if variant == "tiny":
        profiles["vt-plastic"] = replace(profiles["vt-plastic"], level=0.001)


def _nd_steam(data: Data, profiles: Profiles, variant: str) -> None:
    if variant == "part":  # contracts take 80% of the utility's steam
        for e in data["parks"][0]["exchanges"]:
            if e["from_meter"] == "nd-steam":
                e["share"] = 0.5 if e["to_meter"] == "det-steam" else 0.3


def _gs_water(data: Data, profiles: Profiles, variant: str) -> None:
    if variant == "process_only":
        _meter(data, "gs-water")["uses"] = [{"name": "process_water"}]


def _nd_makeup(data: Data, profiles: Profiles, variant: str) -> None:
    if variant == "boiler_only":
        _meter(data, "nd-makeup")["uses"] = [{"name": "boiler_feed"}]


def _thep_site(data: Data, profiles: Profiles, variant: str) -> None:
    if variant == "central":  # the mill sits next to the dye house and the food plant
        _tenant(data, "thep-an")["location"] = {"x_m": 480, "y_m": 430}


def _hc_vent(data: Data, profiles: Profiles, variant: str) -> None:
    if variant == "early_hours":
        profiles["hc-steam-vent"] = replace(
            profiles["hc-steam-vent"], shape=hours_shape(range(0, 5))
        )


# name, variants (the first is the default scenario's), how to apply one
VARIANTS: tuple[tuple[str, tuple[str, ...], Apply], ...] = (
    ("mf_steam_shift", ("day_shift", "round_the_clock"), _mf_steam),
    ("det_steam_pressure", ("8_bar", "5_bar"), _det_steam),
    ("lanh_viet_site", ("far", "near"), _lanh_viet),
    ("thep_water_exchange", ("registered", "none"), _thep_exchange),
    ("cang_pallets", ("tiny", "larger"), _cang_pallets),
    ("det_effluent_column", ("B", "A"), _det_effluent),
    ("vt_plastic", ("normal", "tiny"), _vt_plastic),
    ("nd_steam_committed", ("all", "part"), _nd_steam),
    ("gs_water_use", ("cleaning", "process_only"), _gs_water),
    ("nd_makeup_use", ("some_cooling", "boiler_only"), _nd_makeup),
    ("thep_site", ("north", "central"), _thep_site),
    ("hc_vent_hours", ("night", "early_hours"), _hc_vent),
)

# Pairs whose relation is the design (own use vs own boiler): scaled together.
LINKED = {"gs-boiler": "gs-steam"}


@dataclass(frozen=True)
class Design:
    """One draw: the registry it implies, its flows, faults and the variant of each case."""

    registry: RegistryFile
    profiles: dict[str, Profile]
    faults: tuple[Fault, ...]
    variants: dict[str, str]


def default_variants() -> dict[str, str]:
    """The sample park's own variant of every case (each list's first)."""
    return {name: options[0] for name, options, _ in VARIANTS}


def draw(base: RegistryFile, rng: np.random.Generator) -> Design:
    """One random design of the sample park ``base``: a variant of every case, levels scaled
    by up to about +-40%, fresh noise and seasons, sites moved up to 100 m, random faults."""
    data: Data = base.model_dump(mode="json", exclude_none=True)
    profiles = default_profiles()
    variants: dict[str, str] = {}
    for name, options, apply in VARIANTS:
        choice = options[int(rng.integers(len(options)))]
        variants[name] = choice
        apply(data, profiles, choice)
    meters = {m["id"]: m for t in data["parks"][0]["tenants"] for m in t["meters"]}
    factors = {mid: float(np.exp(rng.normal(0.0, 0.2))) for mid in sorted(profiles)}
    for follower, leader in LINKED.items():
        factors[follower] = factors[leader]
    for mid, prof in sorted(profiles.items()):
        factor = factors[mid]
        level = prof.level * factor
        top = meters[mid].get("max")
        if top is not None:  # rate meters: keep the peak (with noise) well inside the range
            unit_per_canonical = _to_meter_unit(base, mid)
            level = min(level, 0.5 * top / unit_per_canonical / max(prof.shape))
        profiles[mid] = replace(
            prof,
            level=level,
            noise=float(rng.uniform(0.02, 0.06)) if prof.noise <= 0.04 else prof.noise,
            day_noise=prof.day_noise if prof.day_noise > 0.04 else float(rng.uniform(0.02, 0.05)),
            season_amplitude=float(rng.uniform(0.0, 0.15)),
            season_peak_doy=int(rng.integers(1, 366)),
            register_start=float(rng.uniform(0, 5e5)) if prof.register_start == 0 else
            prof.register_start * float(rng.uniform(0.5, 1.5)),
        )  # fmt: skip
    for prof_id, like in LINKED.items():  # the linked pair keeps one noise level
        lead = profiles[like]
        profiles[prof_id] = replace(
            profiles[prof_id],
            noise=lead.noise,
            day_noise=lead.day_noise,
            season_amplitude=lead.season_amplitude,
            season_peak_doy=lead.season_peak_doy,
        )
    for t in data["parks"][0]["tenants"]:
        loc = t.get("location")
        if loc is not None:
            loc["x_m"] = round(loc["x_m"] + float(rng.uniform(-100, 100)))
            loc["y_m"] = round(loc["y_m"] + float(rng.uniform(-100, 100)))
    registry = RegistryFile.model_validate(data)
    return Design(registry, profiles, _random_faults(registry.parks[0], rng), variants)


def _to_meter_unit(base: RegistryFile, meter_id: str) -> float:
    for t in base.parks[0].tenants:
        for m in t.meters:
            if m.id == meter_id:
                return 1.0 / m.to_canonical
    raise KeyError(meter_id)


def _random_faults(park: Park, rng: np.random.Generator) -> tuple[Fault, ...]:
    meters = [m for t in park.tenants for m in t.meters]
    # resets only where the register cannot also wrap: on a rolling register a reset from
    # above half the modulus reads as a wrap-around (counters cannot tell them apart)
    plain = [m.id for m in meters if m.kind is MeterKind.CUMULATIVE and m.rollover is None]
    wrapping = [m.id for m in meters if m.rollover is not None]
    ranged = [m.id for m in meters if m.max is not None]
    non_negative = [m.id for m in meters if m.kind is MeterKind.DELTA and m.min == 0]
    every = [m.id for m in meters]

    def when() -> float:
        return round(float(rng.uniform(1.0, 27.0)), 2)

    def pick(ids: list[str], n: int) -> list[str]:
        n = min(n, len(ids))
        return [ids[i] for i in rng.choice(len(ids), size=n, replace=False)]

    out: list[Fault] = []
    out += [Fault("reset", m, when()) for m in pick(plain, 2)]
    out += [Fault("rollover", m, when()) for m in pick(wrapping, 1)]
    out += [
        Fault("gap", m, when(), hours=round(float(rng.uniform(1, 30)), 1)) for m in pick(every, 4)
    ]
    top = {m.id: m.max or 0.0 for m in meters}
    out += [Fault("spike", m, when(), value=top[m] * 1000) for m in pick(ranged, 3)]
    out += [Fault("negative", m, when(), value=1.0) for m in pick(non_negative, 2)]
    out += [Fault("not_finite", m, when()) for m in pick(every, 1)]
    out += [Fault("future_ts", m, -round(float(rng.uniform(0.5, 3)), 2)) for m in pick(every, 1)]
    out += [Fault("duplicate", m, count=int(rng.integers(1, 100))) for m in pick(every, 2)]
    out += [Fault("resend", m, when()) for m in pick(every, 2)]
    out += [Fault("out_of_order", m) for m in pick(every, 2)]
    out += [Fault("late", m) for m in pick(every, 1)]
    return tuple(out)
