"""The day rollups again as plain numbers, for dashboards. Pure formatting and InfluxQL text.

Schema (docs/schema.md has the tables)::

    flow_hour,direction=<d>,meter=<m>,park=<p>,resource=<r>,tenant=<t> quantity=<float> <hour_ms>
    flow_day,direction=<d>,meter=<m>,park=<p>,resource=<r>,tenant=<t>
        quantity=<float>,coverage=<float> <day_ms>

``rollup_day`` packs its 24 hours into one base64 string, which detection reads fast and no
other tool can read at all. Grafana charts these instead: written with every ``rollup_day``
point, never instead of it. ``flow_hour`` has one point per hour with data (line protocol has
no NaN); ``flow_day`` one per day row, ``quantity`` being the day's total. The tag set is the
readings' and fixed; no tag shares a name with a field (InfluxDB 3's rules).

A rewritten day may hold fewer hours with data than before, or a registry change may move a
meter to another resource or direction (another series): ``stale_deletes`` says which old
points to remove, given the stored row the new one replaces.
"""

from __future__ import annotations

import math

from parkflow.store.influx.influxql import ms_to_ns_bound, quote_ident, quote_literal
from parkflow.store.influx.lineprotocol import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    LineProtocolError,
    escape_tag_value,
    format_float,
)
from parkflow.store.rollup_rows import DayRollup
from parkflow.timeunits import DAY_MS, HOUR_MS

FLOW_HOUR = "flow_hour"
FLOW_DAY = "flow_day"
FLOW_TAGS = ("park", "tenant", "meter", "resource", "direction")


def _tags(row: DayRollup) -> str:
    """``,direction=..,meter=..,park=..,resource=..,tenant=..`` (sorted by key)."""
    return (
        f",direction={escape_tag_value(str(row.direction))}"
        f",meter={escape_tag_value(row.meter)},park={escape_tag_value(row.park)}"
        f",resource={escape_tag_value(row.resource)},tenant={escape_tag_value(row.tenant)}"
    )


def flow_lines(row: DayRollup) -> list[str]:
    """The ``flow_day`` point and one ``flow_hour`` point per hour with data (``precision=ms``)."""
    if not MIN_TIME_MS <= row.day_ms <= MAX_TIME_MS - DAY_MS:
        raise LineProtocolError(f"rollup day outside InfluxDB's range: {row.day_ms}")
    tags = _tags(row)
    lines = [
        f"{FLOW_DAY}{tags} quantity={format_float(row.total)}"
        f",coverage={format_float(row.coverage)} {row.day_ms}"
    ]
    for i, value in enumerate(row.hours):
        if not math.isnan(value):
            lines.append(
                f"{FLOW_HOUR}{tags} quantity={format_float(value)} {row.day_ms + i * HOUR_MS}"
            )
    return lines


def stale_deletes(old: DayRollup, new: DayRollup) -> list[str]:
    """``DELETE`` statements for the points of ``old`` that writing ``new`` does not replace.

    The same series: the hours that had data and have none now. Another series (the registry
    moved the meter to another resource or direction): the old day and all its hours. Exact
    tag equality, so no other meter's points are touched.
    """
    moved = (old.resource, old.direction) != (new.resource, new.direction)
    where = " AND ".join(
        f"{quote_ident(tag)} = {quote_literal(str(getattr(old, tag)))}" for tag in FLOW_TAGS
    )
    if moved:
        day = (
            f"time >= {ms_to_ns_bound(old.day_ms)} AND time < {ms_to_ns_bound(old.day_ms + DAY_MS)}"
        )
        return [
            f"DELETE FROM {quote_ident(m)} WHERE {where} AND {day}" for m in (FLOW_DAY, FLOW_HOUR)
        ]
    return [
        f"DELETE FROM {quote_ident(FLOW_HOUR)} WHERE {where}"
        f" AND time >= {ms_to_ns_bound(old.day_ms + i * HOUR_MS)}"
        f" AND time < {ms_to_ns_bound(old.day_ms + (i + 1) * HOUR_MS)}"
        for i, (was, now) in enumerate(zip(old.hours, new.hours, strict=True))
        if not math.isnan(was) and math.isnan(now)
    ]
