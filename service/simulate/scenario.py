"""Seeded scenarios of the fictional Song Lam park: registry, flow profiles, planted faults. Pure.

The default scenario is the sample registry (``parkflow/registry/sample_park.yaml``) as it is,
with the flows its comments promise: the planted opportunities flow, the planted
non-opportunities fail for their stated reason (quality, distance, timing, size, an exchange
already in place). A seed redraws what varies in a real park: levels, noise, weekly and
seasonal patterns, sites within the plan, and for each planted case which side of the line it
falls (steam pressure, shift pattern, an exchange registered or not, ...). The registry the
seed implies is part of the scenario, since detection reads locations, uses and quality from it.

Every design is judged by the oracle over four windows across the year; a design with any
case too close to a threshold to call, or whose answer changes with the season, is redrawn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import yaml

from parkflow.model import MeterKind
from parkflow.registry.schema import Park, RegistryFile
from service.detect.panel import window_bounds
from service.knowledge import Knowledge
from service.simulate.flows import Fault
from service.simulate.oracle import Verdict, classify
from service.simulate.profiles import (
    CONTINUOUS,
    NIGHT_VENT,
    SATURDAY_HALF,
    SOLAR,
    SUNDAY_LOW,
    SUNDAY_OFF,
    TWO_SHIFTS,
    TWO_SHIFTS_OFF,
    Profile,
    hours_shape,
)

PARK = "songlam"
DEFAULT_NOISE_SEED = 20261128
WINDOW_DAYS = 28
# Windows the design must give the same clear answer in: one per season.
CHECK_WINDOW_ENDS = ("2026-01-15", "2026-04-15", "2026-07-15", "2026-10-15")

DYEING_WEEK = (1.0,) * 6 + (0.3,)
MF_ELEC = hours_shape(range(6, 22), idle=0.33)
GS_USE = hours_shape(range(6, 22), idle=0.48)  # 2,500 kW by day, 1,200 kW at night
GS_BOILER = hours_shape(range(6, 22), idle=0.8, level=0.85)  # own boiler: 85% of the day load,
# turned down to 2,000 kW at night, which is more than the night shift uses


@dataclass(frozen=True)
class Scenario:
    """A park design: the registry, each meter's designed flow, the faults to plant."""

    name: str
    seed: int | None
    registry: RegistryFile
    profiles: Mapping[str, Profile]
    faults: tuple[Fault, ...]
    noise_seed: int
    variants: Mapping[str, str] = field(default_factory=dict)  # planted case -> variant drawn

    @property
    def park(self) -> Park:
        return self.registry.parks[0]

    def registry_yaml(self) -> str:
        """The registry as YAML, loadable by ``parkflow ingest`` and ``registry check``."""
        data = self.registry.model_dump(mode="json", exclude_none=True)
        head = (
            f"# Written by `parkflow simulate` ({self.name}). The park registry this scenario"
            " implies:\n# locations, uses, quality and exchanges are what detection reads.\n"
        )
        return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

    def verdicts(self, knowledge: Knowledge, start_ms: int, end_ms: int) -> list[Verdict]:
        return classify(self.park, self.profiles, knowledge, start_ms, end_ms)


def default_profiles() -> dict[str, Profile]:
    """The sample park's flows, canonical units per hour (kWh/h = kW, m3/h, t/h)."""
    p = Profile
    profiles = [
        # Thep An steel rolling: three shifts round the clock, maintenance eases Sundays.
        p("thep-elec", 20000, CONTINUOUS, SUNDAY_LOW),
        p("thep-water", 40, CONTINUOUS, SUNDAY_LOW, season_amplitude=0.1),
        p("thep-heat", 3000, CONTINUOUS, SUNDAY_LOW),
        p("thep-scale", 0.2, CONTINUOUS, SUNDAY_LOW, noise=0.1),
        # Det Phuoc dyeing: round the clock, a skeleton crew on Sundays.
        p("det-water", 80, CONTINUOUS, DYEING_WEEK, register_start=2.0e7),
        p("det-steam", 1500, CONTINUOUS, DYEING_WEEK),
        p("det-effluent", 60, CONTINUOUS, DYEING_WEEK),
        # Mekong Foods: two shifts 06-22, closed Sundays; steam only while lines run.
        p("mf-water", 30, TWO_SHIFTS, SUNDAY_OFF, register_start=52000),
        p("mf-elec", 300, MF_ELEC, (1.0,) * 6 + (0.33,)),
        p("mf-steam", 600, TWO_SHIFTS_OFF, SUNDAY_OFF),
        p("mf-pallets", 0.02, TWO_SHIFTS, SUNDAY_OFF, noise=0.15),
        # Viettronic: clean rooms never stop.
        p("vt-elec", 800, register_start=1.2e6),
        p("vt-water", 15),
        p("vt-plastic", 0.01, noise=0.15),
        # Giay Sai Gon paper: a 24 h line; its own boiler follows the load by day and is
        # turned down, not off, at night, when the line needs less than it makes.
        p("gs-water", 50),
        p("gs-steam", 2500, GS_USE, noise=0.03, day_noise=0.02),
        p("gs-sludge", 0.1, noise=0.1),
        p("gs-boiler", 2500, GS_BOILER, noise=0.03, day_noise=0.02),
        # Hoa Chat: a continuous process that vents steam when demand falls at night.
        p("hc-elec", 2000),
        p("hc-cooling", 8),
        p("hc-steam-vent", 800, NIGHT_VENT),
        # Cang logistics: two shifts, seven days; rooftop solar nobody takes is curtailed.
        p("cl-elec", 150, TWO_SHIFTS),
        p("cl-solar", 1200, SOLAR, season_amplitude=0.15, season_peak_doy=60, day_noise=0.15),
        p("cl-pallets", 0.001, TWO_SHIFTS, noise=0.15),
        # Central WWTP: column-A effluent, 300 m3/day of it already cools Thep An.
        p("wwtp-inflow", 45),
        p("wwtp-effluent", 40, register_start=734000),
        # Nhiet Dien: steam sold whole to two tenants; make-up water; fly ash to landfill.
        p("nd-steam", 5000),
        p("nd-makeup", 20),
        p("nd-flyash", 0.5, noise=0.08),
        # Gach Xanh: day work, half Saturdays.
        p("gx-cement", 1.0, TWO_SHIFTS_OFF, SATURDAY_HALF, noise=0.1),
        p("gx-elec", 400, TWO_SHIFTS, SATURDAY_HALF),
        # Tai Che Nhua: two shifts, closed Sundays.
        p("tcn-feedstock", 0.1, TWO_SHIFTS_OFF, SUNDAY_OFF, noise=0.1),
        p("tcn-elec", 250, TWO_SHIFTS, SUNDAY_OFF),
        # Lanh Viet: cold rooms round the clock, the laundry's water heater by day.
        p("lv-boiler-fuel", 60, TWO_SHIFTS),
        p("lv-elec", 300),
        p("lv-water", 10),
    ]
    return {x.meter: x for x in profiles}


def default_faults() -> tuple[Fault, ...]:
    """Faults a park's gateways produce, placed so most land in the detection window."""
    f = Fault
    return (
        f("reset", "mf-water", 9.3),  # water meter replaced
        f("rollover", "thep-water", 12.5),  # 6-digit register wraps
        f("gap", "det-effluent", 6.2, hours=3),
        f("gap", "hc-cooling", 14.1, hours=30),  # gateway down over a day and a night
        f("gap", "wwtp-effluent", 11.6, hours=5),
        f("gap", "vt-elec", 18.3, hours=26),
        f("spike", "thep-elec", 5.1, value=1e9),
        f("spike", "cl-solar", 3.4, value=99999),
        f("spike", "hc-cooling", 8.2, value=5000),
        f("spike", "thep-heat", 22.7, value=1e7),
        f("negative", "det-effluent", 4.05, value=12),
        f("negative", "mf-pallets", 16.4, value=0.3),
        f("not_finite", "gs-sludge", 7.5),
        f("future_ts", "nd-flyash", -2.0),  # gateway clock two days ahead
        f("duplicate", "gs-water", count=24),
        f("duplicate", "nd-makeup", count=96),
        f("resend", "wwtp-effluent", 20.0),
        f("resend", "mf-pallets", 3.0),
        f("out_of_order", "cl-solar"),
        f("out_of_order", "det-water"),
        f("late", "vt-plastic"),
    )


def default_scenario(base: RegistryFile) -> Scenario:
    """The sample park with the flows its comments describe."""
    _check_base(base)
    return Scenario(
        name="default",
        seed=None,
        registry=base,
        profiles=default_profiles(),
        faults=default_faults(),
        noise_seed=DEFAULT_NOISE_SEED,
        variants={name: options[0] for name, options, _ in VARIANTS},
    )


def build_scenario(base: RegistryFile, seed: int | None, knowledge: Knowledge) -> Scenario:
    """The default scenario without a seed, else a random one."""
    if seed is None:
        return default_scenario(base)
    return random_scenario(base, seed, knowledge)


def random_scenario(
    base: RegistryFile, seed: int, knowledge: Knowledge, *, attempts: int = 300
) -> Scenario:
    """A design drawn from ``seed``; designs the oracle cannot call clearly are redrawn."""
    _check_base(base)
    if seed < 0:
        raise ValueError("seed must be >= 0")
    rng = np.random.default_rng((seed, 1))
    last = ""
    for _ in range(attempts):
        scenario = _draw(base, seed, rng)
        problem = unclear(scenario, knowledge)
        if problem is None:
            return scenario
        last = problem
    raise ValueError(f"seed {seed}: no clear design in {attempts} draws (last: {last})")


def detection_window(now_ms: int, timezone: str, days: int = WINDOW_DAYS) -> tuple[int, int]:
    """The window detection looks at for ``now``: whole local days before today, UTC ms."""
    start, end = window_bounds(pd.Timestamp(now_ms, unit="ms", tz="UTC"), timezone, days)
    return int(start.value // 1_000_000), int(end.value // 1_000_000)


def check_windows(timezone: str) -> list[tuple[int, int]]:
    """Detection windows spread over a year, one per season."""
    return [
        detection_window(int(pd.Timestamp(day, tz="UTC").value // 1_000_000), timezone)
        for day in CHECK_WINDOW_ENDS
    ]


def unclear(scenario: Scenario, knowledge: Knowledge) -> str | None:
    """Why the design has no clear answer key, or None when it has one."""
    answers: dict[tuple[str, str, str], str | None] | None = None
    for start, end in check_windows(scenario.park.timezone):
        verdicts = scenario.verdicts(knowledge, start, end)
        for v in verdicts:
            if v.ambiguous is not None:
                return f"{v.id}: {v.ambiguous}"
        now: dict[tuple[str, str, str], str | None] = {v.key: v.reason for v in verdicts}
        if answers is not None and now != answers:
            changed = sorted(k for k in now if now[k] != answers.get(k))
            return f"answer changes with the season: {changed[:3]}"
        answers = now
    return None


def _check_base(base: RegistryFile) -> None:
    park = base.parks[0] if base.parks else None
    have = {m.id for t in park.tenants for m in t.meters} if park else set()
    missing = sorted(set(default_profiles()) - have)
    if park is None or park.id != PARK or missing:
        raise ValueError(
            f"the simulator models the sample park {PARK!r}; missing meters: {missing[:5]}"
        )


# --- random designs --------------------------------------------------------------------------

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


def _draw(base: RegistryFile, seed: int, rng: np.random.Generator) -> Scenario:
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
    return Scenario(
        name=f"seed-{seed}",
        seed=seed,
        registry=registry,
        profiles=profiles,
        faults=_random_faults(registry.parks[0], rng),
        noise_seed=seed,
        variants=variants,
    )


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
