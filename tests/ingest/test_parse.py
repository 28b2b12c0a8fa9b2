"""The JSON payload parser: shapes, timestamps, values, limits; only PayloadError ever leaves it."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.parse import get_parser
from ingest.parse.json_payload import (
    BAD_SEQ,
    BAD_SHAPE,
    BAD_TS,
    BAD_UNIT,
    BAD_VALUE,
    BATCH_TOO_LARGE,
    MALFORMED_JSON,
    MAX_TS_MS,
    NOT_FINITE,
    NOT_UTF8,
    PAYLOAD_TOO_LARGE,
    RawReading,
    parse_json,
    parse_ts,
)
from parkflow.errors import PayloadError
from tests.support.payloads import payload_docs

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the JSON parser --------------------------------------------------------------------------


def parse(
    payload: bytes | str, max_bytes: int = 512 * 1024, max_batch: int = 1000
) -> list[RawReading | PayloadError]:
    data = payload.encode() if isinstance(payload, str) else payload
    return parse_json(data, max_bytes, max_batch)


def parse_error(payload: bytes | str, **kw: int) -> PayloadError:
    with pytest.raises(PayloadError) as info:
        parse(payload, **kw)
    return info.value


def test_parser_registry() -> None:
    assert get_parser("json") is parse_json
    with pytest.raises(ValueError, match="no parser for payload format 'xml'"):
        get_parser("xml")


def test_single_reading() -> None:
    (r,) = parse('{"ts": 1700000000000, "value": 12.5, "unit": "L", "seq": 7, "extra": [1]}')
    assert r == RawReading(None, 1_700_000_000_000, 12.5, "L", 7)


def test_batch_gets_indexes_and_keeps_good_readings_next_to_bad_ones() -> None:
    out = parse('[{"ts": 1, "value": 1}, {"ts": 2}, 5, {"ts": 3, "value": 3, "seq": null}]')
    assert out[0] == RawReading(0, 1, 1.0, None, None)
    assert isinstance(out[1], PayloadError)
    assert (out[1].reason, out[1].index) == (BAD_SHAPE, 1)
    assert "missing value" in out[1].detail
    assert isinstance(out[2], PayloadError)
    assert (out[2].reason, out[2].index) == (BAD_SHAPE, 2)
    assert out[3] == RawReading(3, 3, 3.0, None, None)


@pytest.mark.parametrize(
    ("ts", "ms"),
    [
        (0, 0),
        (1_700_000_000_123, 1_700_000_000_123),
        ("1970-01-01T00:00:00Z", 0),
        ("2026-11-28T03:15:00Z", 1_795_835_700_000),
        ("2026-11-28T10:15:00+07:00", 1_795_835_700_000),
        ("2026-11-28T10:15:00.123456+07:00", 1_795_835_700_123),  # truncated to the ms
        ("2026-11-27T23:15:00-04:00", 1_795_835_700_000),
        (MAX_TS_MS, MAX_TS_MS),
    ],
)
def test_parse_ts(ts: object, ms: int) -> None:
    assert parse_ts(ts) == ms


@pytest.mark.parametrize(
    "ts",
    [
        "2026-11-28T10:15:00",  # no offset
        "2026-11-28 10:15",
        "yesterday",
        "",
        1.7e12,  # epoch must be integer ms
        True,
        None,
        [1],
        {"ms": 1},
        -1,
        MAX_TS_MS + 1,
        "1969-12-31T23:59:59.999Z",
    ],
)
def test_parse_ts_errors(ts: object) -> None:
    with pytest.raises(PayloadError) as info:
        parse_ts(ts)
    assert info.value.reason == BAD_TS


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe{}", NOT_UTF8),
        (b'{"ts": 1, "value": "\xe9t\xe9"}', NOT_UTF8),  # latin-1, not UTF-8
        (b"", MALFORMED_JSON),
        (b'{"ts": 1, "value": ', MALFORMED_JSON),
        (b"{'ts': 1, 'value': 2}", MALFORMED_JSON),
        (b"[" * 100_000 + b"]" * 100_000, MALFORMED_JSON),  # too deep for the decoder
        (b"[]", BAD_SHAPE),
        (b"3", BAD_SHAPE),
        (b'"a reading"', BAD_SHAPE),
        (b"null", BAD_SHAPE),
    ],
)
def test_whole_message_errors(payload: bytes, reason: str) -> None:
    err = parse_error(payload)
    assert err.reason == reason
    assert err.index is None


def test_size_limits() -> None:
    one = '{"ts": 1, "value": 1}'
    assert len(parse(one, max_bytes=len(one))) == 1
    assert parse_error(one, max_bytes=len(one) - 1).reason == PAYLOAD_TOO_LARGE
    batch = "[" + ",".join([one] * 5) + "]"
    assert len(parse(batch, max_batch=5)) == 5
    err = parse_error(batch, max_batch=4)
    assert err.reason == BATCH_TOO_LARGE and "5 readings" in err.detail


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        ('{"value": 1}', BAD_SHAPE),
        ('{"ts": 1}', BAD_SHAPE),
        ('{"ts": 1, "value": NaN}', NOT_FINITE),
        ('{"ts": 1, "value": Infinity}', NOT_FINITE),
        ('{"ts": 1, "value": -Infinity}', NOT_FINITE),
        ('{"ts": 1, "value": "NaN"}', NOT_FINITE),
        ('{"ts": 1, "value": "nan"}', NOT_FINITE),
        ('{"ts": 1, "value": "Infinity"}', NOT_FINITE),
        ('{"ts": 1, "value": "-inf"}', NOT_FINITE),
        ('{"ts": 1, "value": " +Infinity "}', NOT_FINITE),
        ('{"ts": 1, "value": 1e400}', NOT_FINITE),  # Python reads it as inf
        ('{"ts": 1, "value": ' + "9" * 400 + "}", NOT_FINITE),  # an int too big for a float
        ('{"ts": 1, "value": "12.5"}', BAD_VALUE),
        ('{"ts": 1, "value": true}', BAD_VALUE),
        ('{"ts": 1, "value": null}', BAD_VALUE),
        ('{"ts": 1, "value": [1]}', BAD_VALUE),
        ('{"ts": 1.5, "value": 1}', BAD_TS),
        ('{"ts": "2026-11-28T10:15:00", "value": 1}', BAD_TS),
        ('{"ts": 1, "value": 1, "unit": 3}', BAD_UNIT),
        ('{"ts": 1, "value": 1, "unit": ["m3"]}', BAD_UNIT),
        ('{"ts": 1, "value": 1, "seq": -1}', BAD_SEQ),
        ('{"ts": 1, "value": 1, "seq": 1.0}', BAD_SEQ),
        ('{"ts": 1, "value": 1, "seq": true}', BAD_SEQ),
        ('{"ts": 1, "value": 1, "seq": "7"}', BAD_SEQ),
        ('{"ts": 1, "value": 1, "seq": 9223372036854775808}', BAD_SEQ),
    ],
)
def test_reading_errors_single_and_in_a_batch(reading: str, reason: str) -> None:
    (single,) = parse(reading)
    assert isinstance(single, PayloadError)
    assert (single.reason, single.index) == (reason, None)
    good = '{"ts": 5, "value": 5}'
    batch = parse(f"[{good}, {reading}, {good}]")
    assert isinstance(batch[1], PayloadError)
    assert (batch[1].reason, batch[1].index) == (reason, 1)
    assert [type(x) for x in (batch[0], batch[2])] == [RawReading, RawReading]


def test_seq_bounds_and_int_values() -> None:
    (r,) = parse('{"ts": 1, "value": 3, "seq": 9223372036854775807}')
    assert isinstance(r, RawReading)
    assert r.seq == 2**63 - 1 and r.value == 3.0 and isinstance(r.value, float)


def _check_parse_output(out: list[RawReading | PayloadError], batch: bool) -> None:
    for i, item in enumerate(out):
        assert isinstance(item, RawReading | PayloadError)
        assert (item.position if isinstance(item, RawReading) else item.index) == (
            i if batch else None
        )
        if isinstance(item, RawReading):
            assert math.isfinite(item.value)
            assert 0 <= item.ts_ms <= MAX_TS_MS
            assert item.seq is None or 0 <= item.seq < 2**63


@SETTINGS
@given(st.binary(max_size=300))
def test_parse_json_of_arbitrary_bytes_raises_only_payload_errors(data: bytes) -> None:
    try:
        out = parse_json(data, 200, 5)
    except PayloadError:
        return
    _check_parse_output(out, batch=isinstance(json.loads(data), list))


@SETTINGS
@given(payload_docs)
def test_parse_json_of_arbitrary_json_raises_only_payload_errors(doc: object) -> None:
    data = json.dumps(doc, allow_nan=True).encode()
    try:
        out = parse_json(data, 10_000, 5)
    except PayloadError:
        return
    _check_parse_output(out, batch=isinstance(doc, list))


def test_datetime_strategies_round_trip_through_parse_ts() -> None:
    """parse_ts agrees with Python's own datetime arithmetic, whatever the offset."""
    base = datetime(2026, 11, 28, 3, 15, tzinfo=UTC)
    for hours in (-12, -4, 0, 5.5, 7, 14):
        tz = timezone(timedelta(hours=hours))
        local = base.astimezone(tz)
        assert parse_ts(local.isoformat()) == int(base.timestamp() * 1000)
