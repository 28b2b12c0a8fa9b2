"""The JSON wire format: one reading object, or an array of them (see docs/wire-contract.md).

Whole-message problems raise ``PayloadError``; a bad element of a batch comes back as a
``PayloadError`` in its place so the good elements can still be stored. Only ``PayloadError``
ever leaves this module (property-tested).
"""

from __future__ import annotations

import json
import math
import re
from datetime import date
from typing import NamedTuple

import orjson

from parkflow.errors import PayloadError

# Stable reason codes, also the Prometheus label values and the quarantine tag.
NOT_UTF8 = "not_utf8"
MALFORMED_JSON = "malformed_json"
PAYLOAD_TOO_LARGE = "payload_too_large"
BATCH_TOO_LARGE = "batch_too_large"
BAD_SHAPE = "bad_shape"
BAD_TS = "bad_ts"
BAD_VALUE = "bad_value"
NOT_FINITE = "not_finite"
BAD_UNIT = "bad_unit"
BAD_SEQ = "bad_seq"

MIN_TS_MS = 0
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_EXACT = 2**53  # integers a float holds exactly
_SEQ_LIMIT = 2**63
_DAY_S = 86_400
# RFC 3339 section 5.6 date-time, exactly: ASCII digits only (``\d`` would take any script's),
# T, t or a space between date and time, any length of fraction, Z, z or +HH:MM / -HH:MM.
_DATE_TIME = r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
_RFC3339 = re.compile(_DATE_TIME + r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))")
_NO_OFFSET = re.compile(_DATE_TIME)  # only to word the refusal of the commonest mistake
_RFC3339_EXAMPLES = "2026-11-28T10:15:00+07:00 or 2026-11-28T03:15:00.250Z"


class RawReading(NamedTuple):
    """A syntactically valid reading; value and unit not yet checked against the meter."""

    position: int | None  # index in a batch, None for a single-object payload
    ts_ms: int
    value: float
    unit: str | None
    seq: int | None


def parse_json(payload: bytes, max_bytes: int, max_batch: int) -> list[RawReading | PayloadError]:
    if len(payload) > max_bytes:
        raise PayloadError(PAYLOAD_TOO_LARGE, f"{len(payload)} bytes, the limit is {max_bytes}")
    try:
        doc = orjson.loads(payload)  # fast, strict: UTF-8 and standard JSON only
    except orjson.JSONDecodeError:
        doc = _loads_lenient(payload)  # says exactly what is wrong, or reads NaN/Infinity
    if isinstance(doc, dict):
        return [_reading(doc, None)]
    if isinstance(doc, list):
        if not doc:
            raise PayloadError(BAD_SHAPE, "empty array: send at least one reading")
        if len(doc) > max_batch:
            raise PayloadError(BATCH_TOO_LARGE, f"{len(doc)} readings, the limit is {max_batch}")
        return [_reading(item, i) for i, item in enumerate(doc)]
    raise PayloadError(BAD_SHAPE, f"expected a JSON object or array, got {type(doc).__name__}")


def _loads_lenient(payload: bytes) -> object:
    """The standard library's reader, for what orjson refuses: it names the problem, and it
    reads the NaN and Infinity literals some gateways send, so they are reported per reading
    as not finite rather than as malformed JSON."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(
            NOT_UTF8, f"payload is not UTF-8: {exc.reason} at byte {exc.start}"
        ) from exc
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(MALFORMED_JSON, f"not valid JSON: {exc}") from exc


def _reading(item: object, index: int | None) -> RawReading | PayloadError:
    # Fast path for the common well-formed reading; anything unusual takes the full checks.
    if type(item) is dict:
        ts = item.get("ts")
        value = item.get("value")
        unit = item.get("unit")
        seq = item.get("seq")
        if (
            type(ts) is int
            and MIN_TS_MS <= ts <= MAX_TS_MS
            and (
                (type(value) is float and math.isfinite(value))
                or (type(value) is int and -_EXACT < value < _EXACT)
            )
            and (unit is None or type(unit) is str)
            and (seq is None or (type(seq) is int and 0 <= seq < _SEQ_LIMIT))
        ):
            return RawReading(index, ts, float(value), unit, seq)
    return _reading_checked(item, index)


def _reading_checked(item: object, index: int | None) -> RawReading | PayloadError:
    try:
        if not isinstance(item, dict):
            raise PayloadError(BAD_SHAPE, f"a reading must be a JSON object, got {_jtype(item)}")
        if "ts" not in item or "value" not in item:
            missing = [k for k in ("ts", "value") if k not in item]
            raise PayloadError(BAD_SHAPE, f"missing {' and '.join(missing)}")
        unit = item.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise PayloadError(BAD_UNIT, f"unit must be a string, got {_jtype(unit)}")
        return RawReading(
            index, parse_ts(item["ts"]), _value(item["value"]), unit, _seq(item.get("seq"))
        )
    except PayloadError as exc:
        exc.index = index
        return exc


def parse_ts(ts: object) -> int:
    """RFC 3339 with an offset, or integer epoch milliseconds, to epoch milliseconds.

    Only RFC 3339 is read, not the wider ISO 8601 that ``datetime.fromisoformat`` accepts (week
    and ordinal dates, basic format, offsets with seconds or without a colon, times without
    seconds): the wire contract promises RFC 3339, and whatever is accepted beyond it becomes
    a promise gateways come to rely on. A fraction of any length is truncated to the
    millisecond, the precision a reading is identified by. A leap second (``23:59:60`` UTC, in
    any offset) is stored as the instant of the second that follows it, the next day's
    ``00:00:00``: epoch milliseconds have no room for it, and that instant keeps readings in
    order. A second of 60 anywhere else is refused: RFC 3339 has leap seconds only at the end
    of a UTC day.
    """
    if isinstance(ts, bool):
        raise PayloadError(BAD_TS, "ts must be an RFC 3339 string or integer epoch milliseconds")
    if isinstance(ts, int):
        ms = ts
    elif isinstance(ts, str):
        ms = _rfc3339_ms(ts)
    elif isinstance(ts, float):
        raise PayloadError(BAD_TS, "epoch ts must be an integer number of milliseconds")
    else:
        raise PayloadError(BAD_TS, f"ts must be a string or integer, got {_jtype(ts)}")
    if not MIN_TS_MS <= ms <= MAX_TS_MS:
        raise PayloadError(BAD_TS, f"ts {ms} is out of range (epoch milliseconds expected)")
    return ms


def _rfc3339_ms(ts: str) -> int:
    # Integer arithmetic on the matched fields: exact, and cheaper than building datetimes.
    m = _RFC3339.fullmatch(ts)
    if m is None:
        if _NO_OFFSET.fullmatch(ts):
            raise _not_rfc3339(ts, "it has no UTC offset (add Z or +07:00)")
        raise _not_rfc3339(ts, f"write it like {_RFC3339_EXAMPLES}")
    year, month, day, hour, minute, second, frac, sign, off_h, off_m = m.groups()
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_DAY
    except ValueError:
        raise _not_rfc3339(ts, "no such calendar date") from None
    h, mi, sec = int(hour), int(minute), int(second)
    offset = 0
    if sign is not None:
        oh, om = int(off_h), int(off_m)
        if oh > 23 or om > 59:
            raise _not_rfc3339(ts, "the UTC offset is out of range")
        offset = (oh * 60 + om) * 60 * (1 if sign == "+" else -1)
    if h > 23 or mi > 59 or sec > 60:
        raise _not_rfc3339(ts, "no such time of day")
    utc_s = days * _DAY_S + h * 3600 + mi * 60 + sec - offset
    if sec == 60 and utc_s % _DAY_S != 0:
        raise _not_rfc3339(ts, "a leap second (:60) only ends a UTC day")
    return utc_s * 1000 + (int(frac[:3].ljust(3, "0")) if frac else 0)


def _not_rfc3339(ts: str, why: str) -> PayloadError:
    return PayloadError(BAD_TS, f"ts {ts[:40]!r} is not RFC 3339: {why}")


def _value(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str) and value.strip().lower().lstrip("+-") in {
            "nan",
            "inf",
            "infinity",
        }:
            raise PayloadError(NOT_FINITE, f"value {value!r} is not a finite number")
        raise PayloadError(BAD_VALUE, f"value must be a JSON number, got {_jtype(value)}")
    try:
        v = float(value)
    except OverflowError as exc:
        raise PayloadError(NOT_FINITE, "value is too large to be a finite number") from exc
    if not math.isfinite(v):
        raise PayloadError(NOT_FINITE, f"value {value!r} is not a finite number")
    return v


def _seq(seq: object) -> int | None:
    if seq is None:
        return None
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
        raise PayloadError(BAD_SEQ, "seq must be a non-negative integer below 2**63")
    return seq


def _jtype(v: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number"
    )
