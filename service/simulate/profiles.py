"""Designed flow profiles: what a meter would measure without noise, faults or gateways.

A profile is a level (canonical units per hour) shaped by the local clock hour (shifts), the
weekday (idle Sundays, half Saturdays) and the season (dry and rainy season in the south of
Viet Nam). The noise-free rate is what the scenario's ground truth is computed from, and what
the noisy readings scatter around; keeping both in one place keeps them consistent. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from parkflow.timeunits import DAY_MS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

YEAR_DAYS = 365.25


def hours_shape(
    active: range | list[int], idle: float = 0.0, level: float = 1.0
) -> tuple[float, ...]:
    """24 multipliers: ``level`` in the active local hours, ``idle`` in the others."""
    on = set(active)
    return tuple(level if h in on else idle for h in range(24))


# Shift patterns by local clock hour. Shift changes at 06, 14 and 22 (three shifts) are the
# common pattern in Vietnamese parks; two shifts run 06-22.
CONTINUOUS = tuple(0.93 if h in (6, 14, 22) else 1.0 for h in range(24))
TWO_SHIFTS = hours_shape(range(6, 22), idle=0.05)
TWO_SHIFTS_OFF = hours_shape(range(6, 22), idle=0.0)  # valve shut outside the shifts
DAY_SHIFT = hours_shape(range(7, 17), idle=0.1)
NIGHT_VENT = hours_shape([23, 0, 1, 2, 3, 4])  # process steam demand falls at night
SOLAR = tuple(
    float(max(0.0, np.sin(np.pi * (h + 0.5 - 6) / 12))) if 6 <= h < 18 else 0.0 for h in range(24)
)

SEVEN_DAYS = (1.0,) * 7
SUNDAY_LOW = (1.0,) * 6 + (0.7,)
SUNDAY_OFF = (1.0,) * 6 + (0.0,)
SATURDAY_HALF = (1.0,) * 5 + (0.5, 0.0)


@dataclass(frozen=True, slots=True)
class Profile:
    """The designed flow through one meter, in the unit its readings are stored in per hour
    (canonical; t/h or m3/h for a fuel metered by mass or volume)."""

    meter: str
    level: float  # per hour at shape 1, weekday 1, mid-season
    shape: tuple[float, ...] = CONTINUOUS  # 24 multipliers by local clock hour
    week: tuple[float, ...] = SEVEN_DAYS  # 7 multipliers, Monday first
    season_amplitude: float = 0.05  # +- share over the year
    season_peak_doy: int = 100  # day of year of the peak (April: end of the dry season)
    noise: float = 0.04  # sd of each reading's multiplicative noise
    day_noise: float = 0.04  # sd of each day's level (weather, orders)
    register_start: float = 0.0  # cumulative meters: the register at the first reading

    def __post_init__(self) -> None:
        if len(self.shape) != 24 or len(self.week) != 7:
            raise ValueError(f"{self.meter}: shape needs 24 hours and week 7 days")
        if self.level < 0 or min(self.shape) < 0 or min(self.week) < 0:
            raise ValueError(f"{self.meter}: a designed flow is never negative")

    def scaled(self, factor: float) -> Profile:
        return replace(self, level=self.level * factor)


@dataclass(frozen=True, slots=True)
class Clock:
    """Local calendar facts of a set of instants, computed once for all meters."""

    hour: IntArray  # local clock hour 0-23
    weekday: IntArray  # 0 = Monday
    doy: IntArray  # day of year 1-366
    day: IntArray  # local day number since 1970-01-01 (seeds each day's noise)
    ms_in_day: IntArray  # milliseconds since local midnight


def clock(ts_ms: IntArray, timezone: str) -> Clock:
    local = pd.DatetimeIndex(pd.to_datetime(ts_ms, unit="ms", utc=True)).tz_convert(timezone)
    naive = local.tz_localize(None).as_unit("ms").asi8  # local wall time as epoch ms
    return Clock(
        hour=np.asarray(local.hour, dtype=np.int64),
        weekday=np.asarray(local.day_of_week, dtype=np.int64),
        doy=np.asarray(local.day_of_year, dtype=np.int64),
        day=np.asarray(naive // DAY_MS, dtype=np.int64),
        ms_in_day=np.asarray(naive % DAY_MS, dtype=np.int64),
    )


def expected_rate(p: Profile, c: Clock) -> FloatArray:
    """Noise-free rate (canonical units per hour) at the given local instants."""
    shape = np.asarray(p.shape, dtype=np.float64)[c.hour]
    week = np.asarray(p.week, dtype=np.float64)[c.weekday]
    season = 1.0 + p.season_amplitude * np.cos(2 * np.pi * (c.doy - p.season_peak_doy) / YEAR_DAYS)
    out: FloatArray = p.level * shape * week * season
    return out
