"""InfluxDB line protocol: the escaping rules, and readings and quarantined input. Pure
formatting, no I/O; the rollup worker's points are in ``rollup_lines``.

Schema (also in docs/schema.md; keep both in sync)::

    reading,direction=<d>,meter=<m>,park=<p>,resource=<r>,tenant=<t>
        value=<float>[,seq=<int>i] <ts_ms>
    quarantine,reason=<reason> topic="..",detail="..",rid="..",message_id="..",
        [index=<int>i,][park="..",][tenant="..",][meter="..",]received_ms=<int>i <ts_ns>
    quarantine_message topic="..",message_id="..",payload=".."|payload_b64="..",size=<int>i,
        [park="..",][tenant="..",][meter="..",]received_ms=<int>i <ts_ns>

* ``reading``: always all five tags, all low cardinality; ``value`` is always a float, ``seq`` an
  integer written only when the reading has one. The timestamp is the reading's ``ts_ms``, so
  these lines must be written with ``precision=ms``. A point's identity is therefore
  (park, tenant, meter, resource, direction, ts_ms); rewriting it replaces ``value`` (and
  ``seq`` when given), which is the store's idempotency.
* ``quarantine``: one point per rejection. The only tag is ``reason`` (a small set of stable
  codes). Everything taken from untrusted input (park, tenant, meter ids, topic) is a string
  field, so a flood of junk cannot blow up series cardinality. ``rid`` is the rejection's
  identity (``message_id:index``, index -1 for the whole message): a redelivered message writes
  the same rid again, and reads keep one point per rid.
* ``quarantine_message``: the raw message, once per message however many of its readings were
  rejected, capped (``size`` is the full length). The bytes are stored in ``payload`` when they
  are valid UTF-8 and base64-encoded in ``payload_b64`` otherwise: exactly one of the two is
  present and the bytes round-trip exactly.
* Both are stamped in nanoseconds (``precision=ns``): ``received_ms * 1_000_000`` plus a
  per-process counter modulo 1_000_000, so records that share a millisecond never overwrite
  each other (same series and timestamp means same point). The store stamps a record once and
  reuses the stamp when it writes the same record again (a retry, a bisection half).

All measurements are InfluxDB-3 friendly: a fixed tag set per measurement, no name used as
both tag and field, one type per field.

Escaping follows the InfluxDB 1.x rules, checked against a real influxd 1.6: in measurement
names ``,`` and space are backslash-escaped, in keys and tag values also ``=``, in string field
values ``\\`` and ``"``. What the protocol cannot carry is refused with ``LineProtocolError``
rather than silently written wrong: a newline outside a string field (it ends the line), an
empty tag value, a tag value ending in a backslash (it would escape the following separator),
backslashes in measurement names and keys, strings that are not valid Unicode, NaN/infinite
floats, integers outside int64 and timestamps outside InfluxDB's int64-nanosecond range.
CR and NUL are refused in names and tag values because InfluxQL cannot express them in a
query; a measurement name may not start with ``#`` (a comment line, silently skipped) or a tab.
"""

from __future__ import annotations

import base64
import functools
import itertools
import math
import random
import re
import threading
from collections.abc import Iterable, Mapping

from parkflow.model import QuarantinedMessage, Reading, Rejection
from parkflow.timeunits import HOURS_PER_DAY

READING = "reading"
QUARANTINE = "quarantine"
QUARANTINE_MESSAGE = "quarantine_message"
CHANGE = "change"
ROLLUP_DAY = "rollup_day"
ROLLUP_STATE = "rollup_state"  # checkpoints written before they had their own measurement
CHECKPOINT = "checkpoint"
READING_TAGS = ("park", "tenant", "meter", "resource", "direction")
METER_TAGS = ("park", "tenant", "meter")
PACKED_HOURS_CHARS = 4 * HOURS_PER_DAY * 8 // 3  # base64 of 24 float64, never padded

# InfluxDB stores int64 nanoseconds and reserves the two extreme values.
MIN_TIME_NS = -9_223_372_036_854_775_806
MAX_TIME_NS = 9_223_372_036_854_775_806
MIN_TIME_MS = -(-MIN_TIME_NS // 1_000_000)
MAX_TIME_MS = MAX_TIME_NS // 1_000_000

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_NS_PER_MS = 1_000_000
# Line feed ends a line; CR and NUL cannot be written inside an InfluxQL quoted string.
_UNQUERYABLE = re.compile("[\n\r\x00]")
_UNQUERYABLE_OR_BACKSLASH = re.compile("[\n\r\x00\\\\]")

FieldValue = str | int | float


class LineProtocolError(ValueError):
    """The value cannot be represented in line protocol; writing it would fail or corrupt it."""


def _check_text(what: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LineProtocolError(f"{what} is not valid Unicode: {text!r}") from exc


def _check_name(what: str, name: str) -> None:
    _check_text(what, name)
    if not name:
        raise LineProtocolError(f"{what} is empty")
    if _UNQUERYABLE_OR_BACKSLASH.search(name):
        raise LineProtocolError(f"{what} may not contain CR, LF, NUL or a backslash: {name!r}")


# The escapers are pure and see few distinct inputs (schema names, registry ids), so caching
# them is what makes formatting fast; exceptions are never cached.
@functools.lru_cache(maxsize=1024)
def escape_measurement(name: str) -> str:
    """Also refuses a leading ``#`` (influxd skips the line as a comment, answering 204) and
    a leading tab (stripped as whitespace)."""
    _check_name("measurement name", name)
    if name[0] in "#\t":
        raise LineProtocolError(f"measurement name may not start with '#' or a tab: {name!r}")
    return name.replace(",", r"\,").replace(" ", r"\ ")


@functools.lru_cache(maxsize=1024)
def escape_key(key: str) -> str:
    """Escape a tag or field key; ``time`` is refused because InfluxDB reserves it, and a
    leading tab because influxd strips it as whitespace (a field key ``\t`` is stored, with
    a 204, under a name no query can reach)."""
    _check_name("key", key)
    if key == "time":
        raise LineProtocolError("'time' cannot be a tag or field key")
    if key[0] == "\t":
        raise LineProtocolError(f"a key may not start with a tab: {key!r}")
    return key.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


@functools.lru_cache(maxsize=65536)
def escape_tag_value(value: str) -> str:
    """Also refuses CR and NUL: influxd stores them, but InfluxQL cannot quote them (its reader
    turns CR into LF and NUL into end-of-input), so the point could never be selected by this
    tag."""
    _check_text("tag value", value)
    if not value:
        raise LineProtocolError("tag value is empty (InfluxDB rejects empty tag values)")
    if _UNQUERYABLE.search(value):
        raise LineProtocolError(f"tag value contains CR, LF or NUL: {value!r}")
    if value.endswith("\\"):
        raise LineProtocolError(f"tag value ends with a backslash: {value!r}")
    return value.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def quote_string_field(value: str) -> str:
    _check_text("string field", value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format_int(value: int) -> str:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise LineProtocolError(f"integer field outside int64: {value}")
    return f"{value}i"


def format_float(value: float) -> str:
    if not math.isfinite(value):
        raise LineProtocolError(f"float field is not finite: {value!r}")
    return repr(value)


def format_field_value(value: FieldValue) -> str:
    if isinstance(value, bool):  # an int subclass: would silently become 1i/0i
        raise LineProtocolError("boolean fields are not part of the schema")
    if isinstance(value, int):
        return _format_int(value)
    if isinstance(value, float):
        return format_float(value)
    return quote_string_field(value)


def format_line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    timestamp: int,
) -> str:
    """One point; tags are sorted by key as InfluxDB recommends (it sorts them anyway)."""
    if not fields:
        raise LineProtocolError("a point needs at least one field")
    head = escape_measurement(measurement)
    for key in sorted(tags):
        head += f",{escape_key(key)}={escape_tag_value(tags[key])}"
    body = ",".join(f"{escape_key(k)}={format_field_value(v)}" for k, v in fields.items())
    return f"{head} {body} {timestamp}"


def reading_line(reading: Reading) -> str:
    """The ``reading`` point, timestamp in milliseconds (write with ``precision=ms``)."""
    return _reading_line(reading, "")


def reading_lines_ns(readings: Iterable[Reading]) -> list[str]:
    """Many ``reading`` points stamped in nanoseconds, for requests shared with other points."""
    return [_reading_line(r, "000000") for r in readings]


def reading_lines_by_meter(readings: Iterable[Reading], groups: int) -> list[list[str]]:
    """``reading_lines_ns`` split into ``groups`` lists, every meter's lines in one list, in
    order (one pass: this runs per reading on the ingest path)."""
    out: list[list[str]] = [[] for _ in range(groups)]
    for r in readings:
        out[hash(r[2]) % groups].append(_reading_line(r, "000000"))
    return [lines for lines in out if lines]


def _reading_line(reading: Reading, ts_suffix: str) -> str:
    park, tenant, meter, resource, direction, ts, value, seq = reading
    if type(ts) is not int or not MIN_TIME_MS <= ts <= MAX_TIME_MS:
        raise LineProtocolError(f"reading timestamp outside InfluxDB's range: {ts!r}")
    if type(value) is not float or not math.isfinite(value):
        value = _as_float(value)
        format_float(value)  # raises for NaN and infinities
    prefix = _reading_prefix(park, tenant, meter, resource, direction)
    if seq is None:
        return f"{prefix} value={value!r} {ts}{ts_suffix}"
    if type(seq) is not int or not _INT64_MIN <= seq <= _INT64_MAX:
        format_field_value(seq)  # raises with the reason
    return f"{prefix} value={value!r},seq={seq}i {ts}{ts_suffix}"


@functools.lru_cache(maxsize=65536)
def _reading_prefix(park: str, tenant: str, meter: str, resource: str, direction: object) -> str:
    """Measurement and tags of a meter's points: the same for every reading of the meter, so
    escaped once (format_line's layout, tags sorted by key)."""
    return (
        f"{READING},direction={escape_tag_value(str(direction))}"
        f",meter={escape_tag_value(meter)},park={escape_tag_value(park)}"
        f",resource={escape_tag_value(resource)},tenant={escape_tag_value(tenant)}"
    )


def _as_float(value: float) -> float:
    """Readings must always carry a float ``value``: an int would become a conflicting int field."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LineProtocolError(f"reading value is not a number: {value!r}")
    try:
        return float(value)
    except OverflowError as exc:
        raise LineProtocolError(f"reading value out of float range: {value!r}") from exc


def encode_payload(payload: bytes) -> tuple[str, str]:
    """(field name, field value) for raw bytes: text when it is UTF-8, base64 otherwise."""
    try:
        return "payload", payload.decode("utf-8")
    except UnicodeDecodeError:
        return "payload_b64", base64.b64encode(payload).decode("ascii")


def decode_payload(payload: str | None, payload_b64: str | None) -> bytes:
    """Inverse of ``encode_payload`` given the two stored fields (either may be missing)."""
    if payload_b64 is not None:
        return base64.b64decode(payload_b64)
    return (payload or "").encode("utf-8")


def _check_stamp(timestamp_ns: int) -> None:
    if not MIN_TIME_NS <= timestamp_ns <= MAX_TIME_NS:
        raise LineProtocolError(f"quarantine timestamp outside InfluxDB's range: {timestamp_ns}")


def _ids(fields: dict[str, FieldValue], record: Rejection | QuarantinedMessage) -> None:
    for name in ("park", "tenant", "meter"):
        value = getattr(record, name)
        if value is not None:
            fields[name] = value
    fields["received_ms"] = record.received_ms


def rejection_line(rejection: Rejection, timestamp_ns: int) -> str:
    """The ``quarantine`` point; ``timestamp_ns`` comes from ``QuarantineClock``."""
    _check_stamp(timestamp_ns)
    fields: dict[str, FieldValue] = {
        "topic": rejection.topic,
        "detail": rejection.detail,
        "rid": rejection.rid,
        "message_id": rejection.message_id,
    }
    if rejection.index is not None:
        fields["index"] = rejection.index
    _ids(fields, rejection)
    return format_line(QUARANTINE, {"reason": rejection.reason}, fields, timestamp_ns)


def message_line(message: QuarantinedMessage, timestamp_ns: int) -> str:
    """The ``quarantine_message`` point (no tags: every field comes from untrusted input)."""
    _check_stamp(timestamp_ns)
    payload_field, payload_value = encode_payload(message.payload)
    fields: dict[str, FieldValue] = {
        "topic": message.topic,
        "message_id": message.message_id,
        payload_field: payload_value,
        "size": message.size,
    }
    _ids(fields, message)
    return format_line(QUARANTINE_MESSAGE, {}, fields, timestamp_ns)


class QuarantineClock:
    """Hands out unique nanosecond timestamps for quarantine points.

    ``received_ms * 1_000_000 + (counter % 1_000_000)``: within one process two rejections only
    collide if a million others were stamped in between *and* they share ``received_ms``. The
    counter starts at a random offset so that two ingestor processes writing the same database
    are unlikely to collide either (not impossible: there is no coordination between them).
    Ordering by time still orders by ``received_ms``, and ``time >= since_ms * 1_000_000`` is
    exactly ``received_ms >= since_ms``.
    """

    def __init__(self, start: int | None = None) -> None:
        self._counter = itertools.count(random.randrange(_NS_PER_MS) if start is None else start)
        self._lock = threading.Lock()

    def stamp(self, received_ms: int) -> int:
        with self._lock:
            n = next(self._counter)
        return received_ms * _NS_PER_MS + n % _NS_PER_MS
