"""Readings as tenants' gateways would send them, with the faults real gateways produce. Pure.

Each meter reports every ``step_ms`` (15 minutes by default) in its registered kind and unit:
cumulative meters a growing register (which wraps at its ``rollover`` and may be reset),
delta meters the quantity since the previous reading, rate meters the instantaneous rate.
Noise is drawn per meter and local day from the scenario's seed, so any time range (a 60-day
backfill, a live tick) gives the same values for the same instants.

Faults come in two layers, as in a park: reading faults (counter resets, forced rollovers,
gaps, spikes, negative values, NaN, a clock running ahead) change what a gateway reads;
message faults (re-sent tails, a message sent twice, shuffled and late batches) change how it
sends: ``service.simulate.messages`` applies those.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from parkflow.model import MeterKind
from parkflow.registry.schema import Meter, Park
from parkflow.timeunits import DAY_MS, HOUR_MS
from service.simulate.profiles import (
    Clock,
    FloatArray,
    IntArray,
    Profile,
    clock,
    expected_rate,
)

STEP_MS = 15 * 60 * 1000
MAX_BATCH = 1000  # readings per message: the wire contract's limit

OUT_OF_RANGE = "out_of_range"
NOT_FINITE = "not_finite"
FUTURE_TS = "future_ts"

ReadingFault = Literal["reset", "rollover", "gap", "spike", "negative", "not_finite", "future_ts"]
MessageFault = Literal["duplicate", "resend", "out_of_order", "late"]
READING_FAULTS: tuple[str, ...] = (
    "reset", "rollover", "gap", "spike", "negative", "not_finite", "future_ts",
)  # fmt: skip
MESSAGE_FAULTS: tuple[str, ...] = ("duplicate", "resend", "out_of_order", "late")


@dataclass(frozen=True, slots=True)
class Fault:
    """A planted fault on one meter, ``days_before_end`` before the end of the simulated range
    (negative: after it, for a clock running ahead).

    ``hours``: how long a gap lasts. ``value``: the spike or negative value, in the meter's
    unit. ``count``: readings a gateway re-sends at the start of each next batch (duplicate).
    """

    kind: ReadingFault | MessageFault
    meter: str
    days_before_end: float = 0.0
    hours: float = 0.0
    value: float | None = None
    count: int = 0


@dataclass(frozen=True, slots=True)
class AppliedFault:
    """A fault as it landed in the simulated range, for the ground truth."""

    kind: str
    meter: str
    start_ms: int
    end_ms: int
    readings: int  # readings affected (removed, replaced, re-sent, reordered)
    expect: str  # what parkflow must make of it


@dataclass(frozen=True, slots=True)
class Series:
    """One meter's readings, ascending in time, values in the meter's unit."""

    park: str
    tenant: str
    meter: str
    ts: IntArray
    values: FloatArray
    bad: Mapping[int, str]  # position -> reason the ingestor must quarantine it with


@dataclass(frozen=True, slots=True)
class Generated:
    series: tuple[Series, ...]
    registers: Mapping[str, float]  # cumulative meters' registers after the last reading
    faults: tuple[AppliedFault, ...]


def reading_times(start_ms: int, end_ms: int, step_ms: int = STEP_MS) -> IntArray:
    """Reading instants in (start, end] on the step grid: each closes the slot before it."""
    first = (start_ms // step_ms + 1) * step_ms
    return np.arange(first, end_ms + 1, step_ms, dtype=np.int64)


def generate(
    park: Park,
    profiles: Mapping[str, Profile],
    start_ms: int,
    end_ms: int,
    *,
    noise_seed: int,
    step_ms: int = STEP_MS,
    faults: Sequence[Fault] = (),
    registers: Mapping[str, float] | None = None,
    noisy: bool = True,
) -> Generated:
    """Readings of every profiled meter of ``park`` for (start_ms, end_ms].

    ``registers`` carries cumulative registers over from a previous range (live mode);
    without it they start at each profile's ``register_start``. ``noisy=False`` gives the
    designed flow itself.
    """
    ts = reading_times(start_ms, end_ms, step_ms)
    at_reading = clock(ts, park.timezone)
    at_middle = clock(ts - step_ms // 2, park.timezone)
    step_h = step_ms / HOUR_MS
    out: list[Series] = []
    applied: list[AppliedFault] = []
    regs: dict[str, float] = {}
    meters = [(t, m) for t in park.tenants for m in t.meters]
    for index, (tenant, meter) in enumerate(meters):
        profile = profiles.get(meter.id)
        if profile is None:
            continue
        mine = [f for f in faults if f.meter == meter.id and f.kind in READING_FAULTS]
        rate_meter = meter.kind is MeterKind.RATE
        c = at_reading if rate_meter else at_middle
        rate = expected_rate(profile, c)
        if noisy:
            rate = rate * _noise(profile, c, noise_seed, index, step_ms)
        per_unit = 1.0 / meter.to_canonical  # canonical -> the meter's unit
        if rate_meter:
            values = rate * per_unit
        elif meter.kind is MeterKind.DELTA:
            values = rate * step_h * per_unit
        else:
            start_reg = (registers or {}).get(meter.id, profile.register_start)
            values, final, notes = _register(
                meter, rate * step_h * per_unit, ts, start_reg, mine, end_ms
            )
            regs[meter.id] = final
            applied += notes
        values = _clip_to_range(meter, values)
        series, notes = _reading_faults(park, tenant.id, meter, ts, values, mine, end_ms, step_ms)
        out.append(series)
        applied += notes
    return Generated(tuple(out), regs, tuple(applied))


def _noise(p: Profile, c: Clock, seed: int, index: int, step_ms: int) -> FloatArray:
    """Multiplicative noise: a level per local day times a factor per reading, both drawn
    from (seed, meter, day) so every range sees the same draws for the same instants."""
    out = np.ones(len(c.day))
    if len(c.day) == 0 or (p.noise == 0 and p.day_noise == 0):
        return out
    per_day = -(-DAY_MS // step_ms)
    cuts = np.flatnonzero(np.diff(c.day)) + 1
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(c.day)], strict=True):
        rng = np.random.default_rng((seed, index, int(c.day[lo])))
        level = max(0.3, 1.0 + p.day_noise * float(rng.standard_normal()))
        each = rng.standard_normal(per_day)
        slot = c.ms_in_day[lo:hi] // step_ms
        out[lo:hi] = level * np.clip(1.0 + p.noise * each[slot], 0.0, 2.0)
    return out


def _clip_to_range(meter: Meter, values: FloatArray) -> FloatArray:
    """Good readings stay inside the registered range (noise must not look like a fault)."""
    lo = meter.min if meter.min is not None else -math.inf
    hi = meter.max * 0.98 if meter.max is not None else math.inf
    if meter.kind is MeterKind.CUMULATIVE:
        return values
    return np.clip(values, lo, hi)


def _index_at(ts: IntArray, when_ms: int) -> int | None:
    """Position of the first reading at or after ``when_ms``; None when outside the range."""
    if len(ts) == 0 or when_ms < ts[0] or when_ms > ts[-1]:
        return None
    return int(np.searchsorted(ts, when_ms))


def fault_time(f: Fault, end_ms: int, step_ms: int = STEP_MS) -> int:
    at = end_ms - int(f.days_before_end * DAY_MS)
    return at - at % step_ms


def _register(
    meter: Meter,
    quantities: FloatArray,
    ts: IntArray,
    start: float,
    faults: Sequence[Fault],
    end_ms: int,
) -> tuple[FloatArray, float, list[AppliedFault]]:
    """A cumulative register over the slot quantities. A reset restarts it at zero; a planted
    rollover picks the starting value so the register wraps at the chosen reading."""
    notes: list[AppliedFault] = []
    total = np.cumsum(quantities)
    wrap = next((f for f in faults if f.kind == "rollover"), None)
    if wrap is not None and meter.rollover is not None:
        i = _index_at(ts, fault_time(wrap, end_ms))
        if i is not None and i > 0:
            candidate = meter.rollover - float(total[i - 1]) - 0.5 * float(quantities[i])
            if candidate >= 0:
                start = candidate
    values = start + total
    for f in faults:
        if f.kind != "reset":
            continue
        i = _index_at(ts, fault_time(f, end_ms))
        if i is None or i == 0:
            continue
        values[i:] = values[i:] - values[i - 1]  # counting restarts from zero in slot i
        notes.append(
            AppliedFault(
                "reset",
                meter.id,
                int(ts[i]),
                int(ts[i]),
                1,
                "register restarts at zero: consumption counted from zero, never negative",
            )
        )
    final = float(values[-1]) if len(values) else start
    if meter.rollover is not None:
        turns = np.floor(values / meter.rollover)
        for w in np.flatnonzero(np.diff(turns) > 0) + 1:
            notes.append(
                AppliedFault(
                    "rollover",
                    meter.id,
                    int(ts[w]),
                    int(ts[w]),
                    1,
                    f"register wraps at {meter.rollover:g}: counted across the wrap",
                )
            )
        values = values - turns * meter.rollover
    return values, final, notes


def _reading_faults(
    park: Park,
    tenant: str,
    meter: Meter,
    ts: IntArray,
    values: FloatArray,
    faults: Sequence[Fault],
    end_ms: int,
    step_ms: int,
) -> tuple[Series, list[AppliedFault]]:
    keep = np.ones(len(ts), dtype=bool)
    values = values.copy()
    bad: dict[int, str] = {}
    notes: list[AppliedFault] = []
    extra: list[tuple[int, float, str]] = []
    typical = float(np.nanmedian(values)) if len(values) else 1.0
    for f in faults:
        at = fault_time(f, end_ms, step_ms)
        if f.kind == "future_ts":
            extra.append((at, typical, FUTURE_TS))
            notes.append(AppliedFault(f.kind, meter.id, at, at, 1, f"quarantined: {FUTURE_TS}"))
            continue
        i = _index_at(ts, at)
        if i is None:
            continue
        if f.kind == "gap":
            stop = at + int(f.hours * HOUR_MS)
            lost = (ts >= at) & (ts < stop)
            keep &= ~lost
            what = {
                MeterKind.CUMULATIVE: "the next reading covers it: spread over the gap",
                MeterKind.DELTA: "readings lost: their quantities are missing",
                MeterKind.RATE: "hours without data (longer than max_gap_s)",
            }[meter.kind]
            notes.append(AppliedFault(f.kind, meter.id, at, stop, int(lost.sum()), what))
        elif f.kind in ("spike", "negative", "not_finite"):
            if f.kind == "not_finite":
                values[i], reason = math.nan, NOT_FINITE
            elif f.kind == "negative":
                values[i], reason = -abs(f.value or typical or 1.0), OUT_OF_RANGE
            else:
                values[i], reason = f.value if f.value is not None else 1e9, OUT_OF_RANGE
            bad[i] = reason
            notes.append(
                AppliedFault(f.kind, meter.id, int(ts[i]), int(ts[i]), 1, f"quarantined: {reason}")
            )
    kept = np.flatnonzero(keep)
    positions = {int(old): new for new, old in enumerate(kept)}
    out_ts = ts[kept]
    out_values = values[kept]
    out_bad = {positions[i]: r for i, r in bad.items() if i in positions}
    if extra:
        out_ts = np.r_[out_ts, [e[0] for e in extra]].astype(np.int64)
        out_values = np.r_[out_values, [e[1] for e in extra]]
        for k, e in enumerate(extra):
            out_bad[len(kept) + k] = e[2]
    return Series(park.id, tenant, meter.id, out_ts, out_values, out_bad), notes


# --- messages -------------------------------------------------------------------------------


# --- what the ingest path should derive without noise or faults ------------------------------


def expected_hourly(
    park: Park,
    profiles: Mapping[str, Profile],
    start_ms: int,
    end_ms: int,
    step_ms: int = STEP_MS,
) -> dict[str, FloatArray]:
    """Noise-free hourly quantities (canonical units) of each profiled meter over the hours of
    [start_ms, end_ms), as the counters derive them from fault-free readings: slot quantities
    for cumulative and delta meters, trapezoid or step integration for rate meters."""
    if start_ms % HOUR_MS or end_ms % HOUR_MS:
        raise ValueError("expected_hourly takes whole hours")
    n_hours = (end_ms - start_ms) // HOUR_MS
    ts = reading_times(start_ms - step_ms, end_ms, step_ms)  # one slot before, for rates
    at_reading = clock(ts, park.timezone)
    at_middle = clock(ts - step_ms // 2, park.timezone)
    step_h = step_ms / HOUR_MS
    out: dict[str, FloatArray] = {}
    for t in park.tenants:
        for m in t.meters:
            p = profiles.get(m.id)
            if p is None:
                continue
            if m.kind is MeterKind.RATE:
                r = expected_rate(p, at_reading)
                if m.integration_rule == "previous":
                    q = r[:-1] * step_h
                else:
                    q = (r[:-1] + r[1:]) / 2 * step_h
                slot_start = ts[:-1]
            else:
                q = expected_rate(p, at_middle)[1:] * step_h
                slot_start = ts[1:] - step_ms
            bucket = (slot_start - start_ms) // HOUR_MS
            ok = (bucket >= 0) & (bucket < n_hours)
            out[m.id] = np.bincount(bucket[ok], weights=q[ok], minlength=n_hours).astype(np.float64)
    return out
