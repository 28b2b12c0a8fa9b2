"""What each registered meter delivered over a period: ``parkflow meters``.

Totals come from the stored readings by the rollups' own meter maths (``MeterMaths``, so a
reset or rollover of a register is not negative consumption and a rate meter's gaps are not
integrated), over exactly the period asked, not from the day rollups: those cover whole local
days and lag the readings by a rollup cycle. The store is read through ``ReadingLog.
read_ranges``: the points in the period and the neighbour on each side, which is what an
interval straddling a boundary needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from parkflow.model import MeterKind
from parkflow.registry import ResolvedMeter
from parkflow.store.ports import MeterRange, RangeData, ReadingLog
from service.rollups.compute import MeterMaths, quantity_between

# How each kind's total is made, in the words the table shows.
TOTAL_BASIS = {
    MeterKind.CUMULATIVE: "register increase",
    MeterKind.DELTA: "sum of deltas",
    MeterKind.RATE: "integrated rate",
}


@dataclass(frozen=True, slots=True)
class MeterSummary:
    park: str
    tenant: str
    meter: str
    resource: str
    kind: MeterKind
    value_unit: str  # of the stored readings (per hour for rate meters)
    total_unit: str
    last_ms: int | None  # the last reading before the period's end
    last_value: float | None
    readings: int  # in the period
    total: float | None  # in the period; None: no data (not zero)
    stale_after_s: float
    stale: bool  # no reading within ``stale_after_s`` before the period's end

    @property
    def total_basis(self) -> str:
        return TOTAL_BASIS[self.kind]

    def as_dict(self) -> dict[str, Any]:
        return {
            "park": self.park,
            "tenant": self.tenant,
            "meter": self.meter,
            "resource": self.resource,
            "kind": str(self.kind),
            "value_unit": self.value_unit,
            "last_ms": self.last_ms,
            "last_value": self.last_value,
            "readings": self.readings,
            "total": self.total,
            "total_unit": self.total_unit,
            "total_basis": self.total_basis,
            "stale": self.stale,
            "stale_after_s": self.stale_after_s,
        }


def meter_summaries(
    log: ReadingLog,
    meters: Sequence[ResolvedMeter],
    start_ms: int,
    end_ms: int,
    stale_after_s: float | None = None,
) -> list[MeterSummary]:
    """One summary per meter, in the order given, over ``[start_ms, end_ms)``.

    A meter is stale when its last reading is older than ``stale_after_s`` at ``end_ms``; by
    default the meter's own ``max_gap_s`` (registry; one hour unless set), the gap beyond which
    its readings no longer make an interval."""
    ranges = [MeterRange(m.key, start_ms, end_ms) for m in meters]
    out: list[MeterSummary] = []
    for rm, data in zip(meters, log.read_ranges(ranges), strict=True):
        m = rm.meter
        last = data.points[-1] if data.points else data.before
        threshold = m.max_gap_s if stale_after_s is None else stale_after_s
        total = quantity_between(
            MeterMaths.of(m), data.before, data.points, data.after, start_ms, end_ms
        )
        out.append(
            MeterSummary(
                park=rm.park.id,
                tenant=rm.tenant.id,
                meter=m.id,
                resource=m.resource,
                kind=m.kind,
                value_unit=m.canonical_unit,
                total_unit=m.canonical_unit.removesuffix("/h"),
                last_ms=None if last is None else last[0],
                last_value=None if last is None else last[1],
                readings=len(data.points),
                total=total,
                stale_after_s=threshold,
                stale=last is None or end_ms - last[0] > threshold * 1000,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Bucket:
    start_ms: int
    readings: int
    total: float | None  # what flowed in the bucket; None: no data (not zero)
    last_value: float | None  # the last reading in the bucket


def bucket_quantities(
    maths: MeterMaths, data: RangeData, bucket_ms: int, start_ms: int, end_ms: int
) -> list[Bucket]:
    """A meter's readings over ``[start_ms, end_ms)`` as consecutive buckets of ``bucket_ms``
    (the last one cut at ``end_ms``), each total by the rollups' meter maths: an interval that
    straddles a bucket's edge counts in proportion on each side, as in a period total
    (``quantity_between`` of each bucket, to the last bit: the intervals are made once for the
    whole range and each bucket adds its shares in the same order)."""
    points = data.points
    n = max(0, -(-(end_ms - start_ms) // bucket_ms))
    edges = [start_ms + k * bucket_ms for k in range(n)] + [end_ms]
    totals: list[float | None] = [None] * n
    series = ([data.before] if data.before is not None else []) + list(points)
    if data.after is not None:
        series.append(data.after)
    for iv in maths.intervals(series):
        if iv.end_ms <= iv.start_ms:  # instantaneous: where its time falls
            if start_ms <= iv.end_ms < end_ms:
                k = (iv.end_ms - start_ms) // bucket_ms
                totals[k] = (totals[k] or 0.0) + iv.quantity
            continue
        lo, hi = max(iv.start_ms, start_ms), min(iv.end_ms, end_ms)
        if hi <= lo:
            continue
        span = iv.end_ms - iv.start_ms
        for k in range((lo - start_ms) // bucket_ms, (hi - 1 - start_ms) // bucket_ms + 1):
            overlap = min(iv.end_ms, edges[k + 1]) - max(iv.start_ms, edges[k])
            if overlap > 0:
                totals[k] = (totals[k] or 0.0) + iv.quantity * (overlap / span)
    out: list[Bucket] = []
    i = 0  # the first point at or after the bucket's start
    for k in range(n):
        j = i
        while j < len(points) and points[j][0] < edges[k + 1]:
            j += 1
        out.append(
            Bucket(
                start_ms=edges[k],
                readings=j - i,
                total=totals[k],
                last_value=points[j - 1][1] if j > i else None,
            )
        )
        i = j
    return out
