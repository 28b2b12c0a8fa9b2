"""The validator: topic to meter, unit, range and time checks, readings or rejections; pure."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.parse.json_payload import (
    BAD_SHAPE,
    BAD_UNIT,
    BATCH_TOO_LARGE,
    MALFORMED_JSON,
    NOT_FINITE,
    NOT_UTF8,
    PAYLOAD_TOO_LARGE,
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
from parkflow.model import Direction, Reading, Rejection, message_id
from parkflow.registry import SAMPLE_REGISTRY, load_registry
from parkflow.topics import topic_for
from tests.support.payloads import payload_docs

NOW = 1_795_000_000_000  # a fixed "received" time, epoch ms
MIN = 60_000
DAY = 86_400_000

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
@given(payload_docs, st.sampled_from([WATER, ELEC, DET_WATER, PALLETS, "ip/x/y/z/readings"]))
def test_validate_never_raises_and_accounts_for_every_reading(doc: object, topic: str) -> None:
    data = json.dumps(doc, allow_nan=True).encode()
    readings, rejections, _ = Validator(REG).validate(topic, data, NOW)
    for r in readings:
        assert math.isfinite(r.value)
        assert NOW - 400 * DAY <= r.ts_ms <= NOW + 5 * MIN
    if isinstance(doc, list) and readings:
        assert len(readings) + len(rejections) == len(doc)
    assert all(isinstance(r.reason, str) and r.reason for r in rejections)


def test_sample_registry_resolves_the_meters_the_tests_use() -> None:
    for topic in (WATER, ELEC, DET_WATER, PALLETS):
        _, park, tenant, meter, _ = topic.split("/")
        assert REG.meter(park, tenant, meter) is not None
    water = REG.meter("songlam", "thep-an", "thep-water")
    assert water is not None and water.meter.rollover == 1_000_000
    assert REG.owner_of("songlam", "thep-water") == "thep-an"
