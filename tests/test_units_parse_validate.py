"""The pure parts of ingest: units, the JSON parser, the validator, counter maths, the registry.

No broker, no store, no clock: everything here is a function of its arguments, so it is tested
exhaustively and, where a property says more than examples, with hypothesis.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

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
from ingest.validate import (
    BAD_TOPIC,
    FUTURE_TS,
    MAX_KEPT_PAYLOAD,
    OUT_OF_RANGE,
    TOO_OLD,
    TOPIC_MISMATCH,
    UNKNOWN_METER,
    UNKNOWN_PARK,
    UNKNOWN_TENANT,
    Limits,
    Validator,
)
from parkflow.errors import PayloadError, RegistryError, UnitError
from parkflow.model import Direction, MeterKind, Reading, Rejection, dedupe_points, message_id
from parkflow.registry import SAMPLE_REGISTRY, load_registry, parse_registry
from parkflow.timeunits import HOUR_MS
from parkflow.topics import topic_for
from parkflow.units import canonical_unit, convert, factor
from service.rollups.counters import Interval, bucketize, counter_step, intervals

REPO = Path(__file__).resolve().parents[1]
NOW = 1_795_000_000_000  # a fixed "received" time, epoch ms
MIN = 60_000
DAY = 86_400_000

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- units -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "rate", "unit"),
    [
        ("water.potable", False, "m3"),
        ("water.wastewater", True, "m3/h"),
        ("liquid.acid", False, "m3"),
        ("energy.electricity", False, "kWh"),
        ("energy.steam", True, "kWh/h"),
        ("waste.sludge", False, "t"),
        ("material.cement", False, "t"),
        ("byproduct.gypsum", True, "t/h"),
    ],
)
def test_canonical_unit_by_family(resource: str, rate: bool, unit: str) -> None:
    assert canonical_unit(resource, rate=rate) == unit


def test_canonical_unit_of_an_unknown_family() -> None:
    with pytest.raises(UnitError, match="unknown resource family 'gas'"):
        canonical_unit("gas.natural")


@pytest.mark.parametrize(
    ("unit", "target", "expected"),
    [
        ("m3", "m3", 1.0),
        ("L", "m3", 0.001),
        ("kL", "m3", 1.0),
        ("Nm3", "m3", 1.0),
        ("MWh", "kWh", 1000.0),
        ("GJ", "kWh", 1e9 / 3.6e6),
        ("kW", "kWh/h", 1.0),
        ("MW", "kWh/h", 1000.0),
        ("L/s", "m3/h", 3.6),
        ("m3/h", "m3/h", 1.0),
        ("kg", "t", 0.001),
        ("t", "kg", 1000.0),  # t is the metric tonne, not a ton
        ("t/h", "t/h", 1.0),
    ],
)
def test_factor(unit: str, target: str, expected: float) -> None:
    assert factor(unit, target) == pytest.approx(expected, rel=1e-12)
    assert convert(2.5, unit, target) == pytest.approx(2.5 * expected, rel=1e-12)


@pytest.mark.parametrize(
    ("unit", "target", "message"),
    [
        ("kWh", "m3", "does not convert"),
        ("kW", "kWh", "does not convert"),  # a rate is not a quantity
        ("m3", "m3/h", "does not convert"),
        ("bananas", "m3", "unknown unit"),
        ("", "m3", "unknown unit"),
        ("   ", "m3", "unknown unit"),
        ("m3", "", "unknown unit"),
    ],
)
def test_factor_errors(unit: str, target: str, message: str) -> None:
    with pytest.raises(UnitError, match=message):
        factor(unit, target)


@SETTINGS
@given(st.text(max_size=30))
def test_factor_of_any_text_is_a_positive_finite_number_or_a_unit_error(unit: str) -> None:
    for target in ("m3", "kWh/h"):
        try:
            f = factor(unit, target)
        except UnitError:
            continue
        assert math.isfinite(f) and f > 0, (unit, target, f)


# --- the JSON parser --------------------------------------------------------------------------


def parse(payload: bytes | str, max_bytes: int = 512 * 1024, max_batch: int = 1000) -> list:
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


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
_json_docs = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["ts", "value", "unit", "seq", "x"]) | st.text(max_size=5),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)
_ts_values = (
    st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat())
    | st.booleans()
    | st.none()
)
_units = st.sampled_from(["m3", "L", "kWh", "MW", "kg", "t", "m3/h", "", "bananas"]) | st.text(
    max_size=10
)
_readings = st.fixed_dictionaries(
    {"ts": _ts_values, "value": _json_scalars},
    optional={"unit": _units | _json_scalars, "seq": _json_scalars},
)
_payload_docs = _json_docs | _readings | st.lists(_readings | _json_docs, max_size=8)


def _check_parse_output(out: list, batch: bool) -> None:
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
@given(_payload_docs)
def test_parse_json_of_arbitrary_json_raises_only_payload_errors(doc: object) -> None:
    data = json.dumps(doc, allow_nan=True).encode()
    try:
        out = parse_json(data, 10_000, 5)
    except PayloadError:
        return
    _check_parse_output(out, batch=isinstance(doc, list))


# --- the validator ----------------------------------------------------------------------------

REG = load_registry(SAMPLE_REGISTRY)
WATER = topic_for("songlam", "thep-an", "thep-water")  # cumulative m3, rollover 1e6
ELEC = topic_for("songlam", "thep-an", "thep-elec")  # rate kW, min 0 max 60000
DET_WATER = topic_for("songlam", "det-phuoc", "det-water")  # cumulative L -> m3
PALLETS = topic_for("songlam", "mekong-foods", "mf-pallets")  # delta t, min 0


def validate(
    topic: str, payload: object, limits: Limits | None = None
) -> tuple[list[Reading], list[Rejection]]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    v = Validator(REG, limits).validate(topic, data, NOW)
    if v.rejections:  # every rejection points to the message, kept once and capped
        assert v.message is not None
        assert {r.message_id for r in v.rejections} == {v.message.message_id}
        assert v.message.payload == data[:MAX_KEPT_PAYLOAD] and v.message.size == len(data)
    else:
        assert v.message is None
    return v.readings, v.rejections


def rejected(topic: str, payload: object, limits: Limits | None = None) -> str:
    readings, rejections = validate(topic, payload, limits)
    assert not readings
    (r,) = rejections
    return r.reason


def test_a_good_reading_is_normalised_and_attributed() -> None:
    (r,), rej = validate(DET_WATER, {"ts": NOW - MIN, "value": 2500, "seq": 3})
    assert not rej
    assert (r.park, r.tenant, r.meter, r.ts_ms, r.seq) == (
        "songlam",
        "det-phuoc",
        "det-water",
        NOW - MIN,
        3,
    )
    assert r.value == pytest.approx(2.5)  # L -> m3
    assert (r.resource, r.direction) == ("water.potable", Direction.IN)
    (r2,), _ = validate(DET_WATER, {"ts": NOW - MIN, "value": 2.5, "unit": "m3"})
    assert r2.value == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("ip/songlam/thep-an/readings", BAD_TOPIC),
        ("ip/songlam/thep-an/thep-water/values", BAD_TOPIC),
        ("op/songlam/thep-an/thep-water/readings", BAD_TOPIC),
        ("ip/songlam/thep-an/thep-water/readings/x", BAD_TOPIC),
        ("", BAD_TOPIC),
        ("ip/atlantis/thep-an/thep-water/readings", UNKNOWN_PARK),
        ("ip/songlam/ghost-co/ghost-meter/readings", UNKNOWN_TENANT),
        ("ip/songlam/thep-an/ghost-meter/readings", UNKNOWN_METER),
        ("ip/songlam/mekong-foods/thep-water/readings", TOPIC_MISMATCH),
        ("ip/songlam/ghost-co/thep-water/readings", TOPIC_MISMATCH),
    ],
)
def test_topic_reasons(topic: str, reason: str) -> None:
    payload = json.dumps({"ts": NOW, "value": 1}).encode()
    readings, (r,), message = Validator(REG).validate(topic, payload, NOW)
    assert not readings
    assert (r.reason, r.topic, r.message_id, r.received_ms, r.index) == (
        reason,
        topic,
        message_id(topic, payload),
        NOW,
        None,
    )
    assert message is not None and message.payload == payload
    assert (r.park, r.tenant, r.meter) == (None, None, None)
    assert r.detail


def test_topic_mismatch_names_the_owner() -> None:
    _, (r,) = validate("ip/songlam/mekong-foods/thep-water/readings", {"ts": NOW, "value": 1})
    assert "thep-an" in r.detail


@pytest.mark.parametrize(
    ("topic", "value", "unit", "reason"),
    [
        (ELEC, 60000.0001, None, OUT_OF_RANGE),
        (ELEC, -0.001, None, OUT_OF_RANGE),
        (ELEC, 60.001, "MW", OUT_OF_RANGE),  # compared in the meter's unit, after conversion
        (PALLETS, -1, None, OUT_OF_RANGE),
        (WATER, 1, "kWh", BAD_UNIT),
        (WATER, 1, "bananas", BAD_UNIT),
        (ELEC, 1, "kWh", BAD_UNIT),  # a quantity on a rate meter
        (topic_for("songlam", "det-phuoc", "det-steam"), 1e306, None, NOT_FINITE),  # MWh -> kWh
        (WATER, 1e308, "km^3", NOT_FINITE),
    ],
)
def test_value_reasons(topic: str, value: float, unit: str | None, reason: str) -> None:
    doc: dict[str, object] = {"ts": NOW, "value": value}
    if unit is not None:
        doc["unit"] = unit
    readings, (r,) = validate(topic, doc)
    assert not readings
    assert r.reason == reason
    _, park, tenant, meter, _ = topic.split("/")
    assert (r.park, r.tenant, r.meter) == (park, tenant, meter)


@pytest.mark.parametrize(
    ("topic", "value", "unit"),
    [
        (PALLETS, 1.0001e12, None),  # beyond what any meter measures, even without a max
        (WATER, -1.7e308, None),
        (WATER, 1.7e308, None),
        (DET_WATER, 1.0001e15, None),  # litres: the limit is in canonical units (m3)
        (WATER, 2e9, "km^3"),
    ],
)
def test_values_beyond_the_physical_limit_are_out_of_range(
    topic: str, value: float, unit: str | None
) -> None:
    doc: dict[str, object] = {"ts": NOW, "value": value}
    if unit:
        doc["unit"] = unit
    assert rejected(topic, doc) == OUT_OF_RANGE


@pytest.mark.parametrize(
    ("topic", "value", "unit"),
    [(ELEC, 60000, None), (ELEC, 0, None), (ELEC, 60, "MW"), (PALLETS, 1e12, None)],
)
def test_range_bounds_are_inclusive(topic: str, value: float, unit: str | None) -> None:
    doc: dict[str, object] = {"ts": NOW, "value": value}
    if unit:
        doc["unit"] = unit
    readings, rejections = validate(topic, doc)
    assert len(readings) == 1 and not rejections


def test_time_window() -> None:
    limits = Limits(future_tolerance_ms=5 * MIN, horizon_ms=400 * DAY)
    for ts in (NOW + 5 * MIN, NOW - 400 * DAY, NOW):
        readings, rejections = validate(WATER, {"ts": ts, "value": 1}, limits)
        assert len(readings) == 1 and not rejections, ts
    assert rejected(WATER, {"ts": NOW + 5 * MIN + 1, "value": 1}, limits) == FUTURE_TS
    assert rejected(WATER, {"ts": NOW - 400 * DAY - 1, "value": 1}, limits) == TOO_OLD
    assert rejected(WATER, {"ts": NOW + 10 * MIN, "value": 1}) == FUTURE_TS  # the default


def test_parser_reasons_pass_through_with_limits() -> None:
    small = Limits(max_payload_bytes=100, max_batch=2)
    assert rejected(WATER, b"x" * 101, small) == PAYLOAD_TOO_LARGE
    assert rejected(WATER, b"[" + b" " * 98 + b"]", small) == BAD_SHAPE  # at the limit: parsed
    assert rejected(WATER, [{"ts": 1, "value": 1}] * 3, small) == BATCH_TOO_LARGE
    assert rejected(WATER, b"\xc3\x28", small) == NOT_UTF8
    assert rejected(WATER, b"{", small) == MALFORMED_JSON


def test_batch_with_bad_readings_keeps_the_good_ones_with_indexes() -> None:
    batch = [
        {"ts": NOW - 3 * MIN, "value": 10},
        {"ts": NOW - 2 * MIN, "value": "NaN"},
        {"ts": NOW - 2 * MIN, "value": 70000},
        {"ts": NOW + DAY, "value": 1},
        {"ts": NOW - MIN, "value": 2, "unit": "MW"},
        {"ts": NOW - MIN},
    ]
    readings, rejections = validate(ELEC, batch)
    assert [(r.ts_ms, r.value) for r in readings] == [(NOW - 3 * MIN, 10.0), (NOW - MIN, 2000.0)]
    assert [(r.index, r.reason) for r in rejections] == [
        (1, NOT_FINITE),
        (2, OUT_OF_RANGE),
        (3, FUTURE_TS),
        (5, BAD_SHAPE),
    ]
    assert all(r.meter == "thep-elec" for r in rejections)
    assert len({r.message_id for r in rejections}) == 1


@SETTINGS
@given(_payload_docs, st.sampled_from([WATER, ELEC, DET_WATER, PALLETS, "ip/x/y/z/readings"]))
def test_validate_never_raises_and_accounts_for_every_reading(doc: object, topic: str) -> None:
    data = json.dumps(doc, allow_nan=True).encode()
    readings, rejections, _ = Validator(REG).validate(topic, data, NOW)
    for r in readings:
        assert math.isfinite(r.value)
        assert NOW - 400 * DAY <= r.ts_ms <= NOW + 5 * MIN
    if isinstance(doc, list) and readings:
        assert len(readings) + len(rejections) == len(doc)
    assert all(isinstance(r.reason, str) and r.reason for r in rejections)


# --- counters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "current", "rollover", "step"),
    [
        (100.0, 110.0, None, 10.0),
        (100.0, 100.0, None, 0.0),
        (100.0, 5.0, None, 5.0),  # reset: counted from 0 to 5
        (100.0, -3.0, None, 0.0),  # a reset to a negative register never gives negative use
        (999_990.0, 10.0, 1_000_000.0, 20.0),  # rollover explains the drop
        (999_990.0, 0.0, 1_000_000.0, 10.0),
        (600_000.0, 100.0, 1_000_000.0, 400_100.0),  # a wrap of 40% is still plausible
        (400_000.0, 100.0, 1_000_000.0, 100.0),  # a wrap of 60% is not: a reset
        (1_200_000.0, 5.0, 1_000_000.0, 5.0),  # above the modulus: cannot be a wrap
        (100.0, 5.0, 1_000_000.0, 5.0),  # a wrap would be 999905: a reset
    ],
)
def test_counter_step(previous: float, current: float, rollover: float | None, step: float) -> None:
    assert counter_step(previous, current, rollover) == pytest.approx(step)


def test_cumulative_intervals_with_resets_and_rollover() -> None:
    pts = [(0, 100.0), (10, 110.0), (20, 125.0), (30, 5.0), (40, 20.0), (50, 20.0), (60, 32.0)]
    got = intervals(MeterKind.CUMULATIVE, pts)
    assert got == [
        Interval(0, 10, 10.0),
        Interval(10, 20, 15.0),
        Interval(20, 30, 5.0),
        Interval(30, 40, 15.0),
        Interval(40, 50, 0.0),
        Interval(50, 60, 12.0),
    ]
    wrap = [(0, 999_990.0), (10, 999_995.0), (20, 3.0), (30, 10.0)]
    assert [i.quantity for i in intervals(MeterKind.CUMULATIVE, wrap, rollover=1_000_000)] == [
        5.0,
        8.0,
        7.0,
    ]
    # the same drop without a declared modulus is a reset: 3 counted since it
    assert [i.quantity for i in intervals(MeterKind.CUMULATIVE, wrap)] == [5.0, 3.0, 7.0]
    assert intervals(MeterKind.CUMULATIVE, []) == []
    assert intervals(MeterKind.CUMULATIVE, [(5, 1.0)]) == []


def test_duplicates_count_once_and_the_last_value_for_a_timestamp_wins() -> None:
    pts = [(0, 1.0), (10, 4.0), (10, 4.0), (0, 1.0), (20, 9.0)]
    assert dedupe_points(pts) == [(0, 1.0), (10, 4.0), (20, 9.0)]
    assert [i.quantity for i in intervals(MeterKind.CUMULATIVE, pts)] == [3.0, 5.0]
    assert dedupe_points([(10, 4.0), (10, 6.0)]) == [(10, 6.0)]  # a correction replaces


def test_delta_intervals() -> None:
    got = intervals(MeterKind.DELTA, [(20, 2.0), (0, 5.0), (50, 1.5)])
    assert got == [Interval(0, 0, 5.0), Interval(0, 20, 2.0), Interval(20, 50, 1.5)]


def test_rate_integration_trapezoid_previous_and_max_gap() -> None:
    h = HOUR_MS
    pts = [(0, 10.0), (h, 20.0), (h + h // 2, 20.0), (4 * h, 30.0), (5 * h, 30.0)]
    trap = intervals(MeterKind.RATE, pts, integration="trapezoid", max_gap_ms=h)
    prev = intervals(MeterKind.RATE, pts, integration="previous", max_gap_ms=h)
    # the 2.5 h gap is no data, not zero and not interpolated; a gap of exactly max_gap counts
    assert trap == [
        Interval(0, h, 15.0),
        Interval(h, h + h // 2, 10.0),
        Interval(4 * h, 5 * h, 30.0),
    ]
    assert prev == [
        Interval(0, h, 10.0),
        Interval(h, h + h // 2, 10.0),
        Interval(4 * h, 5 * h, 30.0),
    ]
    wide = intervals(MeterKind.RATE, pts, max_gap_ms=3 * h)
    assert sum(i.quantity for i in wide) == pytest.approx(15 + 10 + 2.5 * 25 + 30)


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown meter kind"):
        intervals("gauge", [(0, 1.0), (1, 2.0)])  # type: ignore[arg-type]


_series = st.dictionaries(
    st.integers(0, 10 * HOUR_MS), st.floats(0, 1e6, allow_nan=False), max_size=30
).map(lambda d: sorted(d.items()))


@SETTINGS
@given(
    _series,
    st.sampled_from(list(MeterKind)),
    st.sampled_from([None, 1_000_000.0]),
    st.randoms(use_true_random=False),
    st.integers(0, 10),
)
def test_out_of_order_and_duplicated_input_gives_the_sorted_answer(
    series: list[tuple[int, float]],
    kind: MeterKind,
    rollover: float | None,
    rnd: random.Random,
    dupes: int,
) -> None:
    messy = series + [rnd.choice(series) for _ in range(dupes if series else 0)]
    rnd.shuffle(messy)
    expected = intervals(kind, series, rollover=rollover)
    assert intervals(kind, messy, rollover=rollover) == expected
    assert all(i.quantity >= 0 for i in expected)  # non-negative input never gives negative use


@SETTINGS
@given(st.integers(0, 10**6), st.lists(st.floats(0, 1e4, allow_nan=False), max_size=40))
def test_a_monotone_counter_sums_to_last_minus_first(start: int, steps: list[float]) -> None:
    values = [float(start)]
    for s in steps:
        values.append(values[-1] + s)
    pts = [(i * MIN, v) for i, v in enumerate(values)]
    total = sum(i.quantity for i in intervals(MeterKind.CUMULATIVE, pts, rollover=1e12))
    assert total == pytest.approx(values[-1] - values[0], rel=1e-9, abs=1e-6)


@SETTINGS
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=40))
def test_cumulative_use_is_never_negative(values: list[float]) -> None:
    pts = [(i * MIN, v) for i, v in enumerate(values)]
    for rollover in (None, 1e5, 1e6):
        assert all(i.quantity >= 0 for i in intervals(MeterKind.CUMULATIVE, pts, rollover=rollover))


def test_bucketize_splits_across_hour_boundaries() -> None:
    h = HOUR_MS
    # 00:30 -> 01:30, 10 units: half in each hour
    assert bucketize([Interval(h // 2, h + h // 2, 10.0)]) == {0: 5.0, h: 5.0}
    # 00:45 -> 03:15: 15 min, 60, 60, 15 of 150 minutes
    got = bucketize([Interval(45 * MIN, 3 * h + 15 * MIN, 150.0)])
    assert got == pytest.approx({0: 15.0, h: 60.0, 2 * h: 60.0, 3 * h: 15.0})
    # (00:00, 01:00] is the first hour only: intervals are closed at the end
    assert bucketize([Interval(0, h, 7.0)]) == {0: 7.0}
    assert bucketize([Interval(h, 2 * h, 7.0)]) == {h: 7.0}
    # an instantaneous quantity at 01:00 belongs to the hour that ends there
    assert bucketize([Interval(h, h, 3.0)]) == {0: 3.0}
    assert bucketize([Interval(h + 1, h + 1, 3.0)]) == {h: 3.0}
    # 15-minute buckets
    assert bucketize([Interval(0, 30 * MIN, 4.0)], bucket_ms=15 * MIN) == {0: 2.0, 15 * MIN: 2.0}
    assert bucketize([]) == {}


_intervals = st.lists(
    st.tuples(
        st.integers(-5 * HOUR_MS, 50 * HOUR_MS),
        st.integers(0, 7 * HOUR_MS),
        st.floats(-1e6, 1e6, allow_nan=False),
    ).map(lambda t: Interval(t[0], t[0] + t[1], t[2])),
    max_size=20,
)


@SETTINGS
@given(_intervals, st.sampled_from([HOUR_MS, 15 * MIN, DAY]))
def test_bucketize_conserves_totals(items: list[Interval], bucket_ms: int) -> None:
    out = bucketize(items, bucket_ms)
    total = sum(i.quantity for i in items)
    scale = sum(abs(i.quantity) for i in items)
    assert sum(out.values()) == pytest.approx(total, abs=1e-9 * max(scale, 1.0))
    assert all(b % bucket_ms == 0 for b in out)
    for b in out:  # only buckets that an interval touches
        assert any(i.start_ms - bucket_ms <= b <= i.end_ms for i in items)


# --- registry ---------------------------------------------------------------------------------

BAD_REGISTRY = """\
version: 1
parks:
  - id: p1
    name: Park one
    tenants:
      - id: t1
        name: Tenant one
        meters:
          - {id: m-kwh, resource: water.potable, direction: in, unit: kWh, kind: cumulative}
          - {id: m-roll, resource: water.potable, direction: in, unit: m3, kind: delta, rollover: 10}
          - {id: m-range, resource: energy.electricity, direction: in, unit: kW, kind: rate, min: 5, max: 1}
          - {id: m-typo, resource: water.potable, direction: in, unit: m3, kind: cumulative, colour: red}
          - {id: "bad id!", resource: water.potable, direction: in, unit: m3, kind: cumulative}
          - {id: m-kind, resource: water.potable, direction: sideways, unit: m3, kind: gauge}
      - id: t2
        name: Tenant two
        meters:
          - {id: m-int, resource: water.potable, direction: in, unit: m3, kind: cumulative, integration: previous}
"""

EXPECTED_PROBLEMS = [
    ("parks[0] (p1).tenants[0] (t1).meters[0] (m-kwh)", "unit 'kWh'"),
    ("parks[0] (p1).tenants[0] (t1).meters[1] (m-roll)", "rollover applies to cumulative"),
    ("parks[0] (p1).tenants[0] (t1).meters[2] (m-range)", "min 5.0 is above max 1.0"),
    ("parks[0] (p1).tenants[0] (t1).meters[3] (m-typo).colour", "unknown key"),
    ("parks[0] (p1).tenants[0] (t1).meters[4] (bad id!).id", "String should match pattern"),
    ("parks[0] (p1).tenants[0] (t1).meters[5] (m-kind).direction", "'in' or 'out'"),
    ("parks[0] (p1).tenants[0] (t1).meters[5] (m-kind).kind", "'cumulative'"),
    ("parks[0] (p1).tenants[1] (t2).meters[0] (m-int)", "integration applies to rate"),
]


def test_registry_reports_every_problem_with_file_entry_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_REGISTRY)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    problems = info.value.problems
    assert len(problems) == len(EXPECTED_PROBLEMS), "\n".join(problems)
    for where, reason in EXPECTED_PROBLEMS:
        hits = [p for p in problems if p.startswith(f"{path}: {where}: ") and reason in p]
        assert hits, f"no problem for {where} mentioning {reason!r} in:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        (
            "parks:\n  - id: p1\n    name: P\n    tenants:\n"
            "      - {id: a, name: A, meters: [{id: m, resource: water.x, direction: in,"
            " unit: m3, kind: delta}]}\n"
            "      - {id: b, name: B, meters: [{id: m, resource: water.x, direction: in,"
            " unit: m3, kind: delta}]}\n",
            "parks[0] (p1)",
            "meter id 'm' is used twice in the park",
        ),
        (
            "parks:\n  - {id: p1, name: P, tenants: [{id: a, name: A}, {id: a, name: B}]}\n",
            "parks[0] (p1)",
            "tenant id 'a' is used twice",
        ),
        (
            "parks:\n  - {id: p1, name: P}\n  - {id: p1, name: Q}\n",
            "(top level)",
            "park id 'p1' is used twice",
        ),
        ("parks:\n  - {id: p1}\n", "parks[0] (p1).name", "Field required"),
        ("version: 2\nparks: []\n", "version", "Input should be 1"),
        ("parks:\n  - id: [unclosed\n", "line ", "YAML syntax"),
        ("- just\n- a list\n", "", "top level must be a mapping"),
    ],
)
def test_registry_problem_messages(tmp_path: Path, text: str, where: str, reason: str) -> None:
    path = tmp_path / "reg.yaml"
    path.write_text(text)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert any(p.startswith(f"{path}: {where}") and reason in p for p in info.value.problems), (
        info.value.problems
    )


def test_registry_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RegistryError) as info:
        load_registry(missing)
    assert info.value.problems[0].startswith(f"{missing}: cannot read")
    with pytest.raises(RegistryError) as info:
        parse_registry("parks: [", "inline.yaml")
    assert info.value.problems[0].startswith("inline.yaml: line ")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parkflow.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_registry_check_command(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_REGISTRY)
    bad = _cli("registry", "check", str(path))
    assert bad.returncode == 2, bad  # bad input, as from every command
    lines = bad.stderr.strip().splitlines()
    assert lines[-1] == f"{path}: {len(EXPECTED_PROBLEMS)} problem(s)"
    for where, reason in EXPECTED_PROBLEMS:
        assert any(where in line and reason in line for line in lines), (where, bad.stderr)
    good = _cli("registry", "check", str(SAMPLE_REGISTRY))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith(f"{SAMPLE_REGISTRY}: OK (1 park(s), ")


def test_sample_registry_resolves_the_meters_the_tests_use() -> None:
    for topic in (WATER, ELEC, DET_WATER, PALLETS):
        _, park, tenant, meter, _ = topic.split("/")
        assert REG.meter(park, tenant, meter) is not None
    water = REG.meter("songlam", "thep-an", "thep-water")
    assert water is not None and water.meter.rollover == 1_000_000
    assert REG.owner_of("songlam", "thep-water") == "thep-an"


def test_datetime_strategies_round_trip_through_parse_ts() -> None:
    """parse_ts agrees with Python's own datetime arithmetic, whatever the offset."""
    base = datetime(2026, 11, 28, 3, 15, tzinfo=UTC)
    for hours in (-12, -4, 0, 5.5, 7, 14):
        tz = timezone(timedelta(hours=hours))
        local = base.astimezone(tz)
        assert parse_ts(local.isoformat()) == int(base.timestamp() * 1000)


@pytest.mark.parametrize(
    "command",
    [
        ["registry", "check", "{path}"],
        ["registry", "acl", "{path}"],
        ["registry", "partition", "{path}"],
        ["ingest", "--registry", "{path}"],
        ["detect", "--registry", "{path}"],
        ["rebuild-rollups", "--registry", "{path}"],
        ["import", "x.csv", "--meter", "a/b/c", "--registry", "{path}"],
    ],
)
def test_the_same_bad_registry_exits_2_from_every_command(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_REGISTRY)
    run = _cli(*(part.format(path=path) for part in command))
    assert run.returncode == 2, run.stderr
    assert f"{path}: {len(EXPECTED_PROBLEMS)} problem(s)" in run.stderr
    assert "Traceback" not in run.stderr


def test_ingest_without_a_registry_refuses_to_start() -> None:
    run = _cli("ingest")
    assert run.returncode == 2
    assert "no park registry: set PARKFLOW_REGISTRY or pass --registry" in run.stderr
