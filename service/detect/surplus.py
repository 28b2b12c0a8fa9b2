"""Surplus detection: out-streams that persist, minus what registered exchanges already take.

Two kinds, one pipeline:

- ``stream``: an out-meter measures what leaves the tenant (effluent, vented steam, pallets,
  curtailed solar): all of it, less registered exchanges, is available.
- ``temporal``: an out-meter with destination ``self_use`` measures generation the tenant
  mostly uses itself (own boiler, rooftop solar): only the hours where generation exceeds the
  tenant's own metered consumption of that resource leave a surplus (solar at midday, boiler
  steam at night).

A stream is a surplus when it persists (knowledge ``detection``): it flows on enough of the
window's days and its median daily quantity is worth reporting. Days with too few hours of
data are days without data: they count against persistence and are left out of percentiles.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from parkflow.model import Direction
from parkflow.registry.registry import Registry
from parkflow.registry.schema import Meter, Park, Tenant
from parkflow.units import canonical_unit
from service.detect.panel import FloatArray, IntArray, Panel
from service.detect.text import fmt_hours, fmt_qty
from service.knowledge import Knowledge

SurplusKind = Literal["stream", "temporal"]
EPS = 1e-9  # below this a day's quantity counts as nothing (float dust from subtraction)
ACTIVE_HOUR_SHARE = 0.1  # an hour of day is "active" above this share of the peak hour


@dataclass(frozen=True, slots=True)
class Surplus:
    """A persistent surplus with its evidence; figures per day are in ``unit`` (canonical)."""

    id: str  # park:meter:kind, stable across runs
    kind: SurplusKind
    park: str
    tenant: str
    meter: str
    resource: str
    unit: str
    destination: str | None
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    days: int
    days_with_data: int
    days_present: int
    present_share: float
    p10_per_day: float
    p50_per_day: float
    p90_per_day: float
    mean_per_day: float
    exchanged_per_day: float  # mean per day already taken by registered exchanges
    hourly_profile: tuple[float, ...]  # mean available per local clock hour 0-23
    active_hours: tuple[int, ...]  # local clock hours carrying the surplus
    explanation: str


@dataclass(frozen=True, eq=False)
class Streams:
    """Every out-stream of one park with what is available of it, hour by hour and per day."""

    panel: Panel
    tenants: tuple[Tenant, ...]
    meters: tuple[Meter, ...]
    kinds: tuple[SurplusKind, ...]
    row: Mapping[str, int]
    hourly: FloatArray  # (n_streams, n_hours) available; NaN = no data
    daily: FloatArray  # (n_streams, n_days) available on days with enough data, else NaN
    exchanged: FloatArray  # (n_streams, n_days) taken by registered exchanges


def surplus_id(park: str, meter: str, kind: str) -> str:
    return f"{park}:{meter}:{kind}"


def find_surpluses(
    panels: Mapping[str, Panel], registry: Registry, knowledge: Knowledge
) -> list[Surplus]:
    """Persistent surpluses of every park over its panel's window; stream and temporal
    surpluses in one list, ordered by park, meter and kind.

    Takes the panels (``build_panels_from_days``), not the rollups, so that a run pivots its
    window once and ``match`` sizes the surpluses on the very matrices they were found in.
    """
    out: list[Surplus] = []
    for park_id, panel in panels.items():
        streams = available_streams(panel, registry.parks[park_id], knowledge)
        out += _persistent(streams, registry.parks[park_id], knowledge)
    return sorted(out, key=lambda s: (s.park, s.meter, s.kind))


def available_streams(panel: Panel, park: Park, knowledge: Knowledge) -> Streams:
    """What each out-meter offers: its flow (or generation beyond own use) less exchanges."""
    tenants: list[Tenant] = []
    meters: list[Meter] = []
    kinds: list[SurplusKind] = []
    rows: list[FloatArray] = []
    empty = np.full(panel.n_hours, np.nan)
    for t in park.tenants:
        for m in t.meters:
            if m.direction is not Direction.OUT:
                continue
            gen = panel.values[panel.row[m.id]]
            kind: SurplusKind = "stream"
            if m.destination == "self_use":
                kind = "temporal"
                offsets = m.offsets or m.resource
                own = [
                    panel.row[i.id]
                    for i in t.meters
                    if i.direction is Direction.IN and i.resource == offsets
                ]
                # Without a consumption meter the excess is unknown: no data, not all of it.
                if own:
                    excess = gen - panel.values[own].sum(axis=0)
                    band = knowledge.detection.temporal_deadband * gen
                    gen = np.where(excess > band, excess, np.where(np.isnan(excess), np.nan, 0.0))
                else:
                    gen = empty
            tenants.append(t)
            meters.append(m)
            kinds.append(kind)
            rows.append(gen)
    flows = np.vstack(rows) if rows else np.zeros((0, panel.n_hours))
    totals, counts = panel.daily_sums(flows)
    day_len = np.diff(np.r_[panel.day_starts, panel.n_hours])
    valid = counts >= np.minimum(knowledge.detection.min_hours_per_day, day_len)

    row = {m.id: i for i, m in enumerate(meters)}
    shares = np.zeros_like(totals)
    fixed = np.zeros_like(totals)
    days = np.array(panel.days, dtype="datetime64[D]")
    for e in park.exchanges:
        r = row.get(e.from_meter)
        if r is None:
            continue
        active = days >= np.datetime64(e.since, "D")
        if e.share is not None:
            shares[r, active] += e.share
        else:
            fixed[r, active] += e.quantity_per_day or 0.0
    avail_day = np.maximum(totals * (1.0 - np.minimum(shares, 1.0)) - fixed, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(totals > 0, avail_day / totals, 0.0)
    hourly = flows * scale[:, panel.day_of_hour] if len(flows) else flows
    return Streams(
        panel=panel,
        tenants=tuple(tenants),
        meters=tuple(meters),
        kinds=tuple(kinds),
        row=row,
        hourly=hourly,
        daily=np.where(valid, avail_day, np.nan),
        exchanged=np.where(valid, totals - avail_day, 0.0),
    )


def hour_of_day_profile(matrix: FloatArray, hour_of_day: IntArray) -> FloatArray:
    """Mean of each row per local clock hour (hours without data left out), shape (rows, 24)."""
    present = ~np.isnan(matrix)
    onehot = (hour_of_day[:, None] == np.arange(24)[None, :]).astype(np.float64)
    sums = np.where(present, matrix, 0.0) @ onehot
    counts = present.astype(np.float64) @ onehot
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1.0), 0.0)


def daily_percentiles(daily: FloatArray) -> FloatArray:
    """P10, P50, P90 of each row over its days with data (0 for rows without any), (rows, 3).

    Linear interpolation as numpy's default, done for all rows at once: np.nanpercentile
    loops over rows in Python.
    """
    rows = daily.shape[0]
    if rows == 0 or daily.shape[1] == 0:
        return np.zeros((rows, 3))
    ordered = np.sort(daily, axis=1)  # NaN sorts last
    n = (~np.isnan(daily)).sum(axis=1)
    out = np.zeros((rows, 3))
    has = n > 0
    for j, q in enumerate((0.1, 0.5, 0.9)):
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        frac = pos - lo
        a = np.take_along_axis(ordered, lo[:, None], axis=1)[:, 0]
        b = np.take_along_axis(ordered, hi[:, None], axis=1)[:, 0]
        out[:, j] = np.where(has, a + (b - a) * frac, 0.0)
    return out


def _persistent(streams: Streams, park: Park, knowledge: Knowledge) -> list[Surplus]:
    panel = streams.panel
    n = len(streams.meters)
    if n == 0 or panel.n_days == 0:
        return []
    daily = streams.daily
    has_data = ~np.isnan(daily)
    present = has_data & (daily > EPS)
    days_present = present.sum(axis=1)
    days_with_data = has_data.sum(axis=1)
    share = days_present / panel.n_days
    pct = daily_percentiles(daily)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.where(days_with_data > 0, np.nanmean(daily, axis=1), 0.0)
        exchanged = np.where(
            days_with_data > 0,
            np.nanmean(np.where(has_data, streams.exchanged, np.nan), axis=1),
            0.0,
        )
    min_p50 = np.array([knowledge.detection.min_p50(m.resource) for m in streams.meters])
    keep = (
        (share >= knowledge.detection.min_present_share)
        & (pct[:, 1] >= min_p50)
        & (pct[:, 1] > EPS)
    )
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return []
    profiles = hour_of_day_profile(streams.hourly[idx], panel.hour_of_day)
    out: list[Surplus] = []
    for j, i in enumerate(idx):
        t, m, kind = streams.tenants[i], streams.meters[i], streams.kinds[i]
        profile = profiles[j]
        peak = float(profile.max()) if len(profile) else 0.0
        active = (
            tuple(int(h) for h in np.flatnonzero(profile > ACTIVE_HOUR_SHARE * peak))
            if peak > 0
            else ()
        )
        fields: dict[str, Any] = dict(
            id=surplus_id(park.id, m.id, kind),
            kind=kind,
            park=park.id,
            tenant=t.id,
            meter=m.id,
            resource=m.resource,
            unit=canonical_unit(m.resource),
            destination=m.destination,
            window_start=panel.start,
            window_end=panel.end,
            days=panel.n_days,
            days_with_data=int(days_with_data[i]),
            days_present=int(days_present[i]),
            present_share=float(share[i]),
            p10_per_day=float(pct[i, 0]),
            p50_per_day=float(pct[i, 1]),
            p90_per_day=float(pct[i, 2]),
            mean_per_day=float(mean[i]),
            exchanged_per_day=float(exchanged[i]),
            hourly_profile=tuple(float(x) for x in profile),
            active_hours=active,
        )
        text = _explanation(Surplus(**fields, explanation=""), t, m, park, knowledge)
        out.append(Surplus(**fields, explanation=text))
    return out


def stream_phrase(meter: Meter, knowledge: Knowledge) -> str:
    """'column-A treated effluent', 'steam at 6 bar, 165 °C', 'waste heat at 280 °C'."""
    label = knowledge.label(meter.resource)
    q = meter.quality
    if q is None:
        return label
    if q.qcvn40_column is not None:
        label = f"column-{q.qcvn40_column} {label}"
    conditions = []
    if q.pressure_bar is not None:
        conditions.append(f"{fmt_qty(q.pressure_bar)} bar")
    if q.temperature_c is not None:
        conditions.append(f"{fmt_qty(q.temperature_c)} °C")
    return f"{label} at {', '.join(conditions)}" if conditions else label


def _explanation(s: Surplus, t: Tenant, m: Meter, park: Park, knowledge: Knowledge) -> str:
    stream = stream_phrase(m, knowledge)
    when = f", mostly {fmt_hours(s.active_hours)}" if 0 < len(s.active_hours) < 24 else ""
    spread = f"P10 {fmt_qty(s.p10_per_day)}, P90 {fmt_qty(s.p90_per_day)} {s.unit}/day"
    info = knowledge.destination(m.destination)
    what = f"a median {fmt_qty(s.p50_per_day)} {s.unit}/day of {stream}"
    said = info.verb.replace("{what}", what) if info is not None else f"releases {what}"
    text = f"{t.name} ({m.id}) {said} on {s.days_present} of {s.days} days{when} ({spread})"
    if s.exchanged_per_day > EPS:
        takers = sorted({e.to_meter for e in park.exchanges if e.from_meter == m.id})
        text += (
            f"; {fmt_qty(s.exchanged_per_day)} {s.unit}/day already goes to"
            f" {', '.join(takers)} under registered exchanges and is not counted"
        )
    if s.days_with_data < s.days:
        text += f"; {s.days - s.days_with_data} days without enough data count as absent"
    return text + "."
