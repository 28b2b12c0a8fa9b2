"""One park's window of hourly rollups as a meter x hour numpy matrix, built from the day
rollups the stores keep (one row per meter and local day, its 24 hours side by side).

Detection and matching both work on these matrices: a 5k-meter park over 28 days is a
5,000 x 672 float array, so every statistic is a vectorised reduction, never a loop over meters
or pairs. The window is whole local days (the park's timezone), ending at the local midnight
before ``now``: daily figures then cover complete days, and "hour of day" means local time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd

from parkflow.registry.registry import Registry

HOUR_S = 3600
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Panel:
    """Hourly quantities of one park's meters over the window; NaN means no data."""

    park: str
    timezone: str
    start: pd.Timestamp  # UTC, local midnight of the first day
    end: pd.Timestamp  # UTC, local midnight after the last day (exclusive)
    meters: tuple[str, ...]
    row: Mapping[str, int]
    values: FloatArray  # (n_meters, n_hours)
    day_of_hour: IntArray  # (n_hours,) local day index of each hour column
    hour_of_day: IntArray  # (n_hours,) local clock hour 0-23 of each hour column
    day_starts: IntArray  # (n_days,) first hour column of each local day
    days: tuple[date, ...]

    @property
    def n_hours(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_days(self) -> int:
        return len(self.days)

    def daily_sums(self, matrix: FloatArray) -> tuple[FloatArray, IntArray]:
        """Per-row sums over each local day (NaN counted as 0) and the hours with data."""
        return bucket_sums(matrix, self.day_starts)


def bucket_sums(matrix: FloatArray, starts: IntArray) -> tuple[FloatArray, IntArray]:
    """Sums of each row over column buckets beginning at ``starts``, NaN as 0, plus counts."""
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        shape = (matrix.shape[0], len(starts))
        return np.zeros(shape), np.zeros(shape, dtype=np.int64)
    present = ~np.isnan(matrix)
    sums = np.add.reduceat(np.where(present, matrix, 0.0), starts, axis=1)
    counts = np.add.reduceat(present.astype(np.int64), starts, axis=1)
    return sums, counts


def window_bounds(
    now: pd.Timestamp, timezone: str, window_days: int
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """UTC start and end of the ``window_days`` whole local days before ``now``'s local date."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    end_local = now.tz_convert(timezone).normalize()
    start_local = end_local - pd.DateOffset(days=window_days)
    return pd.Timestamp(start_local).tz_convert("UTC"), end_local.tz_convert("UTC")


def build_panels_from_days(
    days: pd.DataFrame,
    registry: Registry,
    now: pd.Timestamp,
    window_days: int,
    scale: Mapping[str, float] | None = None,
) -> dict[str, Panel]:
    """One Panel per registry park from the ``day_rollups`` frame the stores return (columns
    park, meter, day in epoch ms, h00..h23; rows of unknown meters and hours outside the
    window are dropped). ``scale`` multiplies meters' rows (fuel meters' t or m3 into kWh,
    ``fuels.kwh_factors``; NaN leaves a meter without data).

    The day rows are scattered straight into the matrices, never expanded to one row per
    meter-hour: at 20k meters such a long frame would be most of a detection run's memory.
    """
    parks = list(registry.parks.values())
    bounds = {p.id: window_bounds(now, p.timezone, window_days) for p in parks}
    if days.empty or not parks:
        return {p.id: _panel(p.id, p.timezone, *bounds[p.id], registry, None, scale) for p in parks}
    out: dict[str, Panel] = {}
    hour_columns = [f"h{i:02d}" for i in range(24)]
    values = days[hour_columns].to_numpy(dtype=np.float64, na_value=np.nan)
    day_s = days["day"].to_numpy(dtype=np.int64) // 1000
    offsets = np.arange(24, dtype=np.int64) * HOUR_S
    park_codes = codes_of(days["park"], [p.id for p in parks])
    for i, p in enumerate(parks):
        rows = np.flatnonzero(park_codes == i)
        data = None
        if len(rows):
            meters = [m.id for t in p.tenants for m in t.meters]
            secs = (day_s[rows][:, None] + offsets).ravel()
            mcode = np.repeat(codes_of(days["meter"], meters, rows), 24)
            data = (secs, mcode, values[rows].ravel())
        out[p.id] = _panel(p.id, p.timezone, *bounds[p.id], registry, data, scale)
    return out


def _panel(
    park: str,
    timezone: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    registry: Registry,
    data: tuple[IntArray, IntArray, FloatArray] | None,
    scale: Mapping[str, float] | None = None,
) -> Panel:
    meters = tuple(m.id for t in registry.parks[park].tenants for m in t.meters)
    hours = pd.date_range(start, end, freq="h", inclusive="left")
    local = hours.tz_convert(timezone)
    local_days = local.normalize()
    day_codes, uniques = pd.factorize(local_days, sort=True)
    day_of_hour = day_codes.astype(np.int64)
    day_starts = np.flatnonzero(np.r_[True, np.diff(day_of_hour) != 0]).astype(np.int64)
    n_m, n_h = len(meters), len(hours)
    values = np.full((n_m, n_h), np.nan)
    if data is not None and n_m and n_h:
        secs, mcode, qty = data
        # flat cell index, computed in the meter-code buffer (ours) to spare a copy
        hidx = (secs - int(start.value // 10**9)) // HOUR_S
        ok = (mcode >= 0) & (hidx >= 0) & (hidx < n_h) & ~np.isnan(qty)
        flat = mcode
        flat *= n_h
        flat += hidx
        del hidx
        if not ok.all():
            flat, qty = flat[ok], qty[ok]
        sums = np.bincount(flat, weights=qty, minlength=n_m * n_h)
        seen = np.bincount(flat, minlength=n_m * n_h)
        del flat
        sums[seen == 0] = np.nan
        values = sums.reshape(n_m, n_h)
    row = {m: i for i, m in enumerate(meters)}
    for m, f in (scale or {}).items():
        if m in row:
            values[row[m]] *= f  # values is this panel's own array
    return Panel(
        park=park,
        timezone=timezone,
        start=start,
        end=end,
        meters=meters,
        row=row,
        values=values,
        day_of_hour=day_of_hour,
        hour_of_day=np.asarray(local.hour, dtype=np.int64),
        day_starts=day_starts,
        days=tuple(d.date() for d in uniques),
    )


def codes_of(column: pd.Series, ids: list[str], rows: IntArray | None = None) -> IntArray:
    """Position in ``ids`` of each value (of the given row positions), -1 when absent.

    The column is factorised first, so each distinct id is looked up once, not once per row.
    """
    values = column.iloc[rows] if rows is not None else column
    codes, uniques = pd.factorize(values)
    mapping = np.append(pd.Index(ids).get_indexer(uniques), -1).astype(np.int64)
    found: IntArray = mapping[codes]  # code -1 (missing) picks the appended -1
    return found
