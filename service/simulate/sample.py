"""The sample park's designed flows and the faults its gateways produce. Pure.

What ``parkflow/registry/sample_park.yaml`` describes in its comments, as flows: levels in
canonical units per hour, shaped by shifts, weekdays and seasons. The default scenario uses
them as they are; a seed redraws them (``variants``).
"""

from __future__ import annotations

from service.simulate.flows import Fault
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

DYEING_WEEK = (1.0,) * 6 + (0.3,)
MF_ELEC = hours_shape(range(6, 22), idle=0.33)
GS_USE = hours_shape(range(6, 22), idle=0.48)  # 2,500 kW by day, 1,200 kW at night
GS_BOILER = hours_shape(range(6, 22), idle=0.8, level=0.85)  # own boiler: 85% of the day load,
# turned down to 2,000 kW at night, which is more than the night shift uses


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
        # Bia Song Lam: brewing round the clock; its boiler's wood chips in t/h.
        p("bs-boiler-fuel", 0.1, CONTINUOUS, noise=0.05),
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
