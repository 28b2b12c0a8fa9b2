"""The park's flows from the store's day rollups, as the overview and the tenant portal show
them. Pure: a ``day_rollups`` frame in, rows and series out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

# (tenant, meter) -> the unit its day totals are in
Units = Mapping[tuple[str, str], str]


@dataclass(frozen=True, slots=True)
class Flow:
    """What one tenant supplied (out) or used (in) of one resource over the period."""

    resource: str
    tenant: str
    direction: str
    unit: str
    total: float
    per_day: float  # the total over the days with data (a day without data is not a zero)
    coverage: float  # hours with data / the meters' hours in the elapsed days


def elapsed_days(frame: pd.DataFrame, end_ms: int, days: int, day_ms: int) -> int:
    """The period's days from the park's first day of data on, at most ``days``: a 90-day
    view of a park that has reported for 30 days has 30 days a meter could have covered, not
    90 (the days before its data began are not hours it missed)."""
    if frame.empty:
        return days
    first = int(frame["day"].min())
    return max(1, min(days, -(-(end_ms - first) // day_ms)))


def flows(frame: pd.DataFrame, units: Units, days: int) -> list[Flow]:
    """By resource, then largest first; a resource's flows in two units stay apart. ``days``
    is the period's elapsed days (``elapsed_days``), over which coverage is counted."""
    if frame.empty:
        return []
    f = frame[["resource", "tenant", "meter", "direction", "day", "total", "coverage"]].copy()
    f["unit"] = [units.get((t, m), "") for t, m in zip(f["tenant"], f["meter"], strict=True)]
    f["with_data"] = f["day"].where(f["coverage"] > 0)  # NaN: a day without any hour of data
    grouped = f.groupby(["resource", "tenant", "direction", "unit"], sort=False).agg(
        total=("total", "sum"),
        coverage=("coverage", "sum"),
        meters=("meter", "nunique"),
        days=("with_data", "nunique"),
    )
    out = []
    for key, row in grouped.iterrows():
        resource, tenant, direction, unit = (str(k) for k in key)  # type: ignore[attr-defined]
        total = float(row["total"])
        with_data = int(row["days"])
        out.append(
            Flow(
                resource=resource,
                tenant=tenant,
                direction=direction,
                unit=unit,
                total=total,
                per_day=total / with_data if with_data else 0.0,
                coverage=float(row["coverage"]) / (days * int(row["meters"])) if days else 0.0,
            )
        )
    return sorted(out, key=lambda x: (x.resource, x.unit, -x.total, x.tenant, x.direction))


def by_resource(rows: Sequence[Flow]) -> dict[tuple[str, str], list[Flow]]:
    """(resource, unit) -> its flows, in the order given."""
    out: dict[tuple[str, str], list[Flow]] = {}
    for r in rows:
        out.setdefault((r.resource, r.unit), []).append(r)
    return out


def coverage(frame: pd.DataFrame, meters: int, days: int) -> float | None:
    """Hours with data over the period's meter-hours (a meter with no row at all counts as
    no data): the overview's one data-quality figure beside quarantine."""
    if meters == 0 or days == 0:
        return None
    return float(frame["coverage"].sum()) / (meters * days) if not frame.empty else 0.0


def daily(
    frame: pd.DataFrame, tenant: str, meter: str, day_starts: Sequence[int]
) -> list[float | None]:
    """A meter's total on each of ``day_starts`` (None for a day without a row or any hour
    of data: missing is not zero)."""
    rows = frame[(frame["tenant"] == tenant) & (frame["meter"] == meter)]
    found: dict[int, float] = {}
    for d, total, cov in zip(rows["day"], rows["total"], rows["coverage"], strict=True):
        if cov > 0 and math.isfinite(total):
            found[int(d)] = float(total)
    return [found.get(d) for d in day_starts]


def day_starts(frame: pd.DataFrame, start_ms: int, end_ms: int, day_ms: int) -> list[int]:
    """The local midnights of the period, anchored on the rollups' own days (the park's
    offset is in them), else on ``start_ms``."""
    anchor = int(frame["day"].iloc[0]) if not frame.empty else start_ms
    first = anchor - ((anchor - start_ms) // day_ms) * day_ms
    while first - day_ms >= start_ms:
        first -= day_ms
    return list(range(first, end_ms, day_ms))


def series(values: Sequence[float | None], labels: Sequence[str]) -> list[tuple[str, float | None]]:
    return list(zip(labels, values, strict=True))
