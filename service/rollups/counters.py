"""Meter maths: readings of the three meter kinds turned into interval quantities.

Pure functions over complete, sorted series. Nothing here depends on arrival order or on state
kept by one process: the store holds every raw reading, and quantities are derived from the
sorted series, so late, out-of-order or duplicated readings (and several ingestors sharing one
meter's stream) give the same answer.

- cumulative: an ever-growing register. Across a declared replacement the readings come from
  two registers, and the quantity is what each counted (``Replacement``). Otherwise a drop is
  a rollover when the meter declares the modulus it wraps at and the wrap explains the drop,
  or a reset (counting restarts from 0). Never negative consumption.
- delta: each reading is the quantity since the previous reading.
- rate: an instantaneous rate (per hour), integrated by the trapezoid or the step ("previous")
  rule; gaps longer than ``max_gap_ms`` are no data, not zero.

A step beyond ``PHYSICAL_LIMIT`` (or not finite) is no data either: stored values from before
the ingestor refused them, two extreme register values, cannot make a quantity no meter could
have measured, nor an infinity that would stop the rollups of the whole park.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from parkflow.model import PHYSICAL_LIMIT, MeterKind, dedupe_points
from parkflow.timeunits import HOUR_MS

ROLLOVER_PLAUSIBLE = 0.5  # a wrap may not account for more than half the register


@dataclass(frozen=True, slots=True)
class Replacement:
    """A register replaced at ``at_ms``: readings from then on are the new register's, which
    started at ``initial``; ``final`` is the old register's last value, when known (both in the
    stored unit)."""

    at_ms: int
    initial: float = 0.0
    final: float | None = None


@dataclass(frozen=True, slots=True)
class Interval:
    """``quantity`` (canonical unit) flowed during (start_ms, end_ms]."""

    start_ms: int
    end_ms: int
    quantity: float


ROLLOVER = "rollover"
RESET = "reset"


def _wrapped(previous: float, current: float, rollover: float | None) -> float | None:
    """What a register that wrapped at ``rollover`` counted, when the wrap explains the drop."""
    if rollover is not None and previous <= rollover:
        wrapped = rollover - previous + current
        if 0 <= wrapped <= rollover * ROLLOVER_PLAUSIBLE:
            return wrapped
    return None


def counter_step(previous: float, current: float, rollover: float | None = None) -> float:
    """Consumption between two register values; a drop is a rollover or a reset, never negative."""
    diff = current - previous
    if diff >= 0:
        return diff
    wrapped = _wrapped(previous, current, rollover)
    if wrapped is not None:
        return wrapped
    return max(current, 0.0)  # reset: the register restarted from zero and counted to `current`


@dataclass(frozen=True, slots=True)
class Drop:
    """A cumulative register read lower than before, between the readings at ``start_ms`` and
    ``end_ms``: a ``ROLLOVER`` (the declared modulus explains it) or a ``RESET``. The
    quantities derived across it are the rule's guess, which is why operators hear of it."""

    start_ms: int
    end_ms: int
    kind: str
    previous: float
    current: float


def drops(
    points: Iterable[tuple[int, float]],
    *,
    rollover: float | None = None,
    replacements: Sequence[Replacement] = (),
) -> list[Drop]:
    """The drops of a cumulative meter's readings that ``counter_step`` took for a rollover or
    a reset; a drop across a declared replacement is the new register's start, not one."""
    instants = sorted(r.at_ms for r in replacements)
    out: list[Drop] = []
    for (t0, v0), (t1, v1) in pairwise(dedupe_points(points)):
        if v1 >= v0 or bisect_left(instants, t0 + 1) < bisect_left(instants, t1 + 1):
            continue
        kind = ROLLOVER if _wrapped(v0, v1, rollover) is not None else RESET
        out.append(Drop(t0, t1, kind, v0, v1))
    return out


def replaced_step(
    previous: float,
    current: float,
    between: Sequence[Replacement],
    rollover: float | None = None,
) -> float:
    """Consumption between two readings with the registers replaced in between (sorted by
    time): what the first register counted after ``previous`` up to its final value (nothing
    when that is not known), what any register read by no stored reading counted, and what the
    last one counted from its initial value to ``current``.

    The old register's part is never negative (a final value below the last reading counts
    nothing); the new register's follows the usual maths from its initial value, so a new
    register that wraps or resets before its first stored reading is still counted.
    """
    total = 0.0
    start = previous
    for r in between:
        if r.final is not None:
            total += max(r.final - start, 0.0)
        start = r.initial
    return total + counter_step(start, current, rollover)


def intervals(
    kind: MeterKind,
    points: Iterable[tuple[int, float]],
    *,
    rollover: float | None = None,
    integration: str = "trapezoid",
    max_gap_ms: int = HOUR_MS,
    replacements: Sequence[Replacement] = (),
) -> list[Interval]:
    """The intervals between consecutive readings and what flowed in each; ``replacements``
    (cumulative meters) are the instants a new register started."""
    series = dedupe_points(points)
    out: list[Interval] = []
    if kind is MeterKind.CUMULATIVE:
        swaps = sorted(replacements, key=lambda r: r.at_ms)
        instants = [r.at_ms for r in swaps]
        for (t0, v0), (t1, v1) in pairwise(series):
            # A replacement at t belongs to the interval (t0, t1] that holds it: a reading at
            # the replacement instant is the new register's.
            between = swaps[bisect_left(instants, t0 + 1) : bisect_left(instants, t1 + 1)]
            if between:
                out.append(Interval(t0, t1, replaced_step(v0, v1, between, rollover)))
            else:
                out.append(Interval(t0, t1, counter_step(v0, v1, rollover)))
    elif kind is MeterKind.DELTA:
        previous_ts: int | None = None
        for ts, value in series:
            out.append(Interval(ts if previous_ts is None else previous_ts, ts, value))
            previous_ts = ts
    elif kind is MeterKind.RATE:
        for (t0, v0), (t1, v1) in pairwise(series):
            if t1 - t0 > max_gap_ms:
                continue
            hours = (t1 - t0) / HOUR_MS
            rate = (v0 + v1) / 2 if integration == "trapezoid" else v0
            out.append(Interval(t0, t1, rate * hours))
    else:
        raise ValueError(f"unknown meter kind {kind!r}")
    return [iv for iv in out if plausible(iv.quantity)]


def plausible(quantity: float) -> bool:
    """Within what a meter can measure (NaN and infinities are not)."""
    return -PHYSICAL_LIMIT <= quantity <= PHYSICAL_LIMIT


def bucketize(items: Sequence[Interval], bucket_ms: int = HOUR_MS) -> dict[int, float]:
    """Spread each interval's quantity over the buckets it overlaps, in proportion to time.

    An instantaneous interval (start == end, e.g. a first delta reading) goes to the bucket
    that holds its end; a quantity at a bucket boundary belongs to the bucket that ends there
    (intervals are open at the start and closed at the end).
    """
    out: dict[int, float] = {}
    for iv in items:
        if iv.end_ms <= iv.start_ms:
            b = _bucket_of_end(iv.end_ms, bucket_ms)
            out[b] = out.get(b, 0.0) + iv.quantity
            continue
        span = iv.end_ms - iv.start_ms
        cursor = iv.start_ms
        while cursor < iv.end_ms:
            b = cursor - cursor % bucket_ms
            stop = min(b + bucket_ms, iv.end_ms)
            out[b] = out.get(b, 0.0) + iv.quantity * (stop - cursor) / span
            cursor = stop
    return out


def _bucket_of_end(ts: int, bucket_ms: int) -> int:
    b = ts - ts % bucket_ms
    return b - bucket_ms if b == ts else b
