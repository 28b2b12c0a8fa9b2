"""Timestamps: RFC 3339, all of it and nothing else (Python's fromisoformat takes much more)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.parse.json_payload import BAD_TS, MAX_TS_MS, parse_ts
from parkflow.errors import PayloadError

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- timestamps: RFC 3339, all of it and nothing else -----------------------------------------

T = 1_795_835_700_000  # 2026-11-28T03:15:00Z
NEW_YEAR_2027 = 1_798_761_600_000  # 2027-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("ts", "ms"),
    [
        ("2026-11-28T03:15:00Z", T),
        ("2026-11-28t03:15:00z", T),
        ("2026-11-28 03:15:00Z", T),
        ("2026-11-28T03:15:00+00:00", T),
        ("2026-11-28T03:15:00-00:00", T),  # RFC 3339: UTC, local offset unknown
        ("2026-11-28T10:15:00+07:00", T),
        ("2026-11-28T08:45:00+05:30", T),
        ("2026-11-27T15:15:00-12:00", T),
        ("2026-11-28T17:15:00+14:00", T),
        ("2026-11-28T10:15:00.1+07:00", T + 100),
        ("2026-11-28T10:15:00.12+07:00", T + 120),
        ("2026-11-28T10:15:00.123+07:00", T + 123),
        ("2026-11-28T10:15:00.123456+07:00", T + 123),
        ("2026-11-28T10:15:00.123456789+07:00", T + 123),  # nanoseconds: truncated to the ms
        ("2026-11-28T10:15:00.9999999999999+07:00", T + 999),
        ("2026-11-28T03:15:00.000000000000000000001Z", T),  # any length of fraction
        ("2026-12-31T23:59:60Z", NEW_YEAR_2027),  # a leap second is the next second's instant
        ("2026-12-31T23:59:60.5Z", NEW_YEAR_2027 + 500),
        ("2027-01-01T06:59:60+07:00", NEW_YEAR_2027),  # the same leap second, local time
        ("2026-12-31T18:59:60-05:00", NEW_YEAR_2027),
        ("1970-01-01T00:00:00Z", 0),
        ("9999-12-31T23:59:59.999Z", MAX_TS_MS),
    ],
)
def test_rfc3339_forms_are_accepted(ts: str, ms: int) -> None:
    assert parse_ts(ts) == ms


@pytest.mark.parametrize(
    "ts",
    [
        "2026-W48-6T10:15:00Z",  # ISO 8601 week date
        "2026-W48-1T10:00:00Z",
        "2026-332T10:15:00Z",  # ordinal date
        "20261128T101500Z",  # basic format
        "20261128T10:15:00Z",
        "2026-11-28T101500Z",
        "2026-11-28T10:15:00+07:00:00",  # offset with seconds
        "2026-11-28T10:15:00+0700",  # offset without a colon
        "2026-11-28T10:15:00+07",  # hour-only offset
        "2026-11-28T10:15+07:00",  # no seconds
        "2026-11-28T10+07:00",
        "2026-11-28T10:15:00",  # no offset
        "2026-11-28",
        "2026-11-28T10:15:00,5+07:00",  # comma decimal mark
        "2026-11-28T10:15:00.+07:00",  # empty fraction
        "2026-11-28T24:00:00Z",
        "2026-11-28T10:60:00Z",
        "2026-11-28T10:15:61Z",
        "2026-11-28T10:15:60Z",  # a leap second only ends a UTC day
        "2026-12-31T23:59:60+07:00",  # 16:59:60 UTC: not a leap second
        "2026-02-29T10:15:00Z",  # not a leap year
        "2026-13-01T10:15:00Z",
        "0000-01-01T00:00:00Z",
        "2026-11-28T10:15:00+24:00",
        "2026-11-28T10:15:00+07:60",
        "2026-11-28T10:15:00 +07:00",
        "2026-11-28T10:15:00Z ",
        " 2026-11-28T10:15:00Z",
        "2026-11-28T10:15:00Z\n",
        "2026-11-28TT10:15:00Z",
        "2026-11-28_10:15:00Z",
        "+2026-11-28T10:15:00Z",
        "12026-11-28T10:15:00Z",
        "2026-1-28T10:15:00Z",
        "٢٠٢٦-11-28T10:15:00Z",  # Arabic-Indic digits
        "２０２６-11-28T10:15:00Z",  # full-width digits
        "2026-11-28T10:15:00UTC",
        "2026-11-28T10:15:00+07:00Z",
        "1969-12-31T23:59:59.999Z",  # before the epoch (range, as before)
    ],
)
def test_forms_outside_rfc3339_are_bad_ts(ts: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_ts(ts)
    assert info.value.reason == BAD_TS
    assert "RFC 3339" in info.value.detail or "out of range" in info.value.detail


def test_huge_ts_strings_cost_little_and_are_not_echoed() -> None:
    assert parse_ts("2026-11-28T03:15:00." + "9" * 100_000 + "Z") == T + 999
    for junk in ("x" * 100_000, "2026-11-28T03:15:00." + "9" * 100_000 + "+07"):
        with pytest.raises(PayloadError) as info:
            parse_ts(junk)
        assert info.value.reason == BAD_TS and len(info.value.detail) < 200


def test_integer_epoch_milliseconds_are_unchanged() -> None:
    assert parse_ts(T) == T
    assert parse_ts(0) == 0
    for bad in (-1, MAX_TS_MS + 1, 1.7e12, True):
        with pytest.raises(PayloadError) as info:
            parse_ts(bad)
        assert info.value.reason == BAD_TS


_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m))
)
_instants = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=_offsets
)


@SETTINGS
@given(
    _instants,
    st.sampled_from(["T", "t", " "]),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
    st.booleans(),
)
def test_rfc3339_agrees_with_datetime_arithmetic(
    dt: datetime, sep: str, timespec: str, zulu: bool
) -> None:
    if timespec == "seconds":
        dt = dt.replace(microsecond=0)  # what the text says; "milliseconds" truncates like us
    text = dt.isoformat(sep=sep, timespec=timespec)
    if zulu and dt.utcoffset() == timedelta(0):
        text = text[: -len("+00:00")] + "Z"
    assert parse_ts(text) == (dt - _EPOCH) // timedelta(milliseconds=1)


def test_parse_ts_stays_fast() -> None:
    """It runs per reading: a string ts must cost a few microseconds, not more."""
    samples = ["2026-11-28T10:15:00.123+07:00", "2026-11-28T03:15:00Z"] * 5000
    start = time.perf_counter()
    for s in samples:
        parse_ts(s)
    per = (time.perf_counter() - start) / len(samples)
    print(f"parse_ts: {per * 1e6:.2f} us per string ts")
    assert per < 50e-6  # generous: a slow CI box, not a benchmark
