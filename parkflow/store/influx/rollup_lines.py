"""The points the rollup worker and the checkpoints keep in InfluxDB. Pure formatting.

Schema (docs/schema.md has the tables)::

    change,writer=<id> keys="{park: {tenant: {meter: [hour, ...]}}}" <ts_ns>
    rollup_day,meter=<m>,park=<p>,tenant=<t> resource="..",direction="..",total=<float>,
        coverage=<float>,hours="<base64 of 24 little-endian float64>" <day_ms>
    checkpoint,key=<name> value=<int>i <ts_ns>

* ``change``: the change markers of one write attempt, packed as JSON into as few points as
  the 64 KB string limit allows (one point per meter would double the points InfluxDB has to
  take in, and halved the ingest rate in a measurement). The timestamp is the write time
  (``QuarantineClock`` nanoseconds, unique within a store instance and stamped anew at each
  attempt), which is what ``changes_since`` selects on; the ``writer`` tag is random per store
  instance, so that two ingestors can never write a marker at the same series and timestamp
  (which would silently replace one). Pruning with ``DELETE`` also removes the series of
  writers that are gone.
* ``rollup_day``: one point per meter and park-local day, timestamp ``day_ms`` (precision ms).
  The 24 hours travel packed in one string field: InfluxDB 1.x answers a 5k-meter x 28-day
  read of 26 separate fields in tens of seconds, of one field in about two. NaN (no data)
  survives packing, and a rewrite replaces the whole day, where separate fields would keep a
  stale hour that became NaN. ``resource`` and ``direction`` are fields so that a registry
  change rewrites the day instead of creating a second series.
* ``checkpoint``: small named integers; the newest point of a key is its value (read
  together with ``rollup_state``, where they were kept before).

"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Callable, Iterable, Sequence

from parkflow.model import MeterKey, Reading
from parkflow.store.influx.lineprotocol import (
    CHANGE,
    CHECKPOINT,
    MAX_TIME_MS,
    MAX_TIME_NS,
    MIN_TIME_MS,
    MIN_TIME_NS,
    ROLLUP_DAY,
    LineProtocolError,
    escape_tag_value,
    format_float,
    format_line,
    quote_string_field,
)
from parkflow.store.rollup_rows import DayRollup
from parkflow.timeunits import HOUR_MS, HOURS_PER_DAY


def _meter_tags(key: MeterKey) -> str:
    """``,meter=..,park=..,tenant=..`` (sorted by key)."""
    return (
        f",meter={escape_tag_value(key.meter)},park={escape_tag_value(key.park)}"
        f",tenant={escape_tag_value(key.tenant)}"
    )


MAX_CHANGE_FIELD_CHARS = 32_000  # well under InfluxDB's 64 KB per string field


def change_lines(readings: Iterable[Reading], writer: str, stamp: Callable[[], int]) -> list[str]:
    """The ``change`` points for the readings of one write attempt (``precision=ns``).

    The field is JSON ``{park: {tenant: {meter: [hour, ...]}}}`` with hours counted since
    1970 (hour_ms / 3600000), to keep it short. ``stamp`` gives a fresh unique nanosecond
    timestamp per point. This runs on the ingest path, hence the plain loops.
    """
    hours_of: dict[tuple[str, str, str], set[int]] = {}
    for r in readings:
        key = (r.park, r.tenant, r.meter)
        hours = hours_of.get(key)
        if hours is None:
            hours_of[key] = hours = set()
        hours.add(r.ts_ms // HOUR_MS)
    Nested = dict[str, dict[str, dict[str, list[int]]]]
    nested: Nested = {}
    for (park, tenant, meter), hours in hours_of.items():
        nested.setdefault(park, {}).setdefault(tenant, {})[meter] = sorted(hours)
    lines: list[str] = []
    pending = [nested] if nested else []
    while pending:
        part = pending.pop()
        keys = json.dumps(part, ensure_ascii=False, separators=(",", ":"))
        meters = [(p, t, m) for p, ts in part.items() for t, ms in ts.items() for m in ms]
        if len(keys) > MAX_CHANGE_FIELD_CHARS and len(meters) > 1:
            half = len(meters) // 2
            for group in (meters[:half], meters[half:]):
                sub: Nested = {}
                for p, t, m in group:
                    sub.setdefault(p, {}).setdefault(t, {})[m] = part[p][t][m]
                pending.append(sub)
            continue
        ts = stamp()
        if not MIN_TIME_NS <= ts <= MAX_TIME_NS:
            raise LineProtocolError(f"change timestamp outside InfluxDB's range: {ts}")
        lines.append(
            f"{CHANGE},writer={escape_tag_value(writer)} keys={quote_string_field(keys)} {ts}"
        )
    return lines


def parse_change_keys(text: str) -> list[tuple[MeterKey, int]]:
    """Inverse of ``change_lines``' field: (meter, hour_ms) pairs."""
    return [
        (MeterKey(park, tenant, meter), int(hour) * HOUR_MS)
        for park, tenants in json.loads(text).items()
        for tenant, meters in tenants.items()
        for meter, hours in meters.items()
        for hour in hours
    ]


def pack_hours(hours: Sequence[float]) -> str:
    """24 float64, little-endian, base64: exact, NaN included."""
    if len(hours) != HOURS_PER_DAY:
        raise LineProtocolError(f"a day has {HOURS_PER_DAY} hours, got {len(hours)}")
    return base64.b64encode(struct.pack(f"<{HOURS_PER_DAY}d", *hours)).decode("ascii")


def unpack_hours(text: str) -> tuple[float, ...]:
    return struct.unpack(f"<{HOURS_PER_DAY}d", base64.b64decode(text, validate=True))


def rollup_line(row: DayRollup) -> str:
    """The ``rollup_day`` point, timestamp ``day_ms`` (write with ``precision=ms``)."""
    if not MIN_TIME_MS <= row.day_ms <= MAX_TIME_MS:
        raise LineProtocolError(f"rollup day outside InfluxDB's range: {row.day_ms}")
    for value in row.hours:
        if math.isinf(value):
            raise LineProtocolError(f"rollup hour is infinite: {value!r}")
    fields = (
        f"resource={quote_string_field(row.resource)}"
        f",direction={quote_string_field(str(row.direction))}"
        f",total={format_float(row.total)},coverage={format_float(row.coverage)}"
        f",hours={quote_string_field(pack_hours(row.hours))}"
    )
    return f"{ROLLUP_DAY}{_meter_tags(row.key)} {fields} {row.day_ms}"


def checkpoint_line(name: str, value: int, timestamp_ns: int) -> str:
    """A ``checkpoint`` point (write with ``precision=ns``)."""
    return format_line(CHECKPOINT, {"key": name}, {"value": value}, timestamp_ns)
