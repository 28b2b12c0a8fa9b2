"""Line protocol escaping, checked by writing arbitrary text and bytes to a real influxd.

What the protocol cannot carry is part of the contract and is spelled out in ``unwritable_*``
below: the formatter must refuse exactly those values and round-trip everything else.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parkflow.errors import StoreRejected
from parkflow.model import Direction, QuarantinedMessage, Reading, Rejection, WriteBatch, message_id
from parkflow.store.influx import InfluxStore, quote_ident
from parkflow.store.influx.lineprotocol import (
    MAX_TIME_MS,
    LineProtocolError,
    QuarantineClock,
    decode_payload,
    encode_payload,
    escape_key,
    escape_measurement,
    escape_tag_value,
    format_line,
    message_line,
    quote_string_field,
    reading_line,
    rejection_line,
)
from parkflow.store.ports import ReadingQuery
from tests.support.influx import InfluxServer

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Characters that matter to line protocol or InfluxQL, mixed into otherwise arbitrary text.
_SPECIAL = st.sampled_from(
    [" ", ",", "=", '"', "'", "\\", "\n", "\r", "\t", "#", "\x00", "é", "😀"]
)
_ANY_CHAR = st.characters(codec="utf-8")  # no lone surrogates: they are not text
text = st.text(alphabet=st.one_of(_SPECIAL, _ANY_CHAR), max_size=12)


def unwritable_tag_value(value: str) -> bool:
    """Empty, LF (ends the line), a trailing backslash (escapes the separator), CR or NUL
    (influxd stores them but InfluxQL cannot quote them, so the point could not be selected)."""
    return value == "" or any(c in value for c in "\n\r\x00") or value.endswith("\\")


def unwritable_key(key: str) -> bool:
    """Keys: no backslash at all either (influxd mangles ``\\,`` and friends), no leading tab."""
    return key in ("", "time") or any(c in key for c in "\n\r\x00\\") or key[0] == "\t"


def unwritable_measurement(name: str) -> bool:
    """Like keys, plus a leading ``#`` (a comment line) or tab (stripped as whitespace)."""
    return name == "" or any(c in name for c in "\n\r\x00\\") or name[0] in "#\t"


# -- pure formatting -------------------------------------------------------------------------


def test_reading_line_layout() -> None:
    r = Reading("p,1", "t=1", "m 1", "water", Direction.OUT, 1_700_000_000_123, 2.5, seq=9)
    assert reading_line(r) == (
        r"reading,direction=out,meter=m\ 1,park=p\,1,resource=water,tenant=t\=1"
        " value=2.5,seq=9i 1700000000123"
    )
    no_seq = Reading("p", "t", "m", "power", Direction.IN, 0, 3, None)
    assert reading_line(no_seq) == (
        "reading,direction=in,meter=m,park=p,resource=power,tenant=t value=3.0 0"
    )


def test_rejection_and_message_line_layout() -> None:
    q = Rejection("bad json", 'say "hi"\\', "a/b", 5, "abc", index=2, park="p", meter="m")
    assert rejection_line(q, 5_000_007) == (
        r"quarantine,reason=bad\ json "
        r'topic="a/b",detail="say \"hi\"\\",rid="abc:2",message_id="abc",index=2i,park="p",'
        'meter="m",received_ms=5i 5000007'
    )
    m = QuarantinedMessage("abc", "a/b", 5, b"\xff", 3000, park="p")
    assert message_line(m, 5_000_008) == (
        r'quarantine_message topic="a/b",message_id="abc",payload_b64="/w==",size=3000i,'
        'park="p",received_ms=5i 5000008'
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Reading("p\n", "t", "m", "w", Direction.IN, 0, 1.0), "LF"),
        (Reading("p", "t\r", "m", "w", Direction.IN, 0, 1.0), "CR"),
        (Reading("p", "t", "\x00", "w", Direction.IN, 0, 1.0), "NUL"),
        (Reading("p", "t\\", "m", "w", Direction.IN, 0, 1.0), "backslash"),
        (Reading("p", "", "m", "w", Direction.IN, 0, 1.0), "empty"),
        (Reading("p", "t", "m\ud800", "w", Direction.IN, 0, 1.0), "Unicode"),
        (Reading("p", "t", "m", "w", Direction.IN, 0, math.nan), "finite"),
        (Reading("p", "t", "m", "w", Direction.IN, 0, -math.inf), "finite"),
        (Reading("p", "t", "m", "w", Direction.IN, 0, 1.0, seq=2**63), "int64"),
        (Reading("p", "t", "m", "w", Direction.IN, MAX_TIME_MS + 1, 1.0), "range"),
        (Reading("p", "t", "m", "w", Direction.IN, 0, True), "number"),
    ],
)
def test_unrepresentable_readings_are_refused(bad: Reading, message: str) -> None:
    with pytest.raises(LineProtocolError, match=message):
        reading_line(bad)


def test_names_and_keys_refuse_what_influxd_would_mangle() -> None:
    for bad in ["", "a\\b", "a\nb", "a\x00", "#comment", "\tx"]:
        with pytest.raises(LineProtocolError):
            escape_measurement(bad)
    for bad in ["", "a\\", "\x00", "time"]:
        with pytest.raises(LineProtocolError):
            escape_key(bad)
    with pytest.raises(LineProtocolError, match="boolean"):
        format_line("m", {}, {"f": True}, 0)
    with pytest.raises(LineProtocolError, match="at least one field"):
        format_line("m", {"t": "v"}, {}, 0)


def test_tag_values_keep_inner_backslashes_literal() -> None:
    assert escape_tag_value("a,b=c d\\x") == r"a\,b\=c\ d\x"


def test_string_fields_escape_only_quote_and_backslash() -> None:
    assert quote_string_field('a "b" \\ c\n,= ') == '"a \\"b\\" \\\\ c\n,= "'


def test_quarantine_clock_never_repeats_within_a_millisecond() -> None:
    clock = QuarantineClock(start=999_990)  # crosses the wrap-around of the counter
    stamps = [clock.stamp(42) for _ in range(20_000)]
    assert len(set(stamps)) == len(stamps)
    assert all(42_000_000 <= s < 43_000_000 for s in stamps)


@given(st.binary(max_size=200))
def test_payload_encoding_round_trips(payload: bytes) -> None:
    field, value = encode_payload(payload)
    assert decode_payload(*((value, None) if field == "payload" else (None, value))) == payload


# -- against a real influxd ------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(influx_server: InfluxServer) -> Iterator[InfluxStore]:
    database = f"lp_{uuid.uuid4().hex[:12]}"
    s = InfluxStore(influx_server.url, database, create_database=True)
    s.ping()
    yield s
    s.close()
    influx_server.query(f"DROP DATABASE {quote_ident(database)}")


_ticks = itertools.count(1_600_000_000_000)


@SETTINGS
@given(park=text, tenant=text, meter=text, resource=text, value=st.floats(allow_nan=False))
def test_tag_values_round_trip_through_influxd(
    store: InfluxStore, park: str, tenant: str, meter: str, resource: str, value: float
) -> None:
    ts = next(_ticks)
    r = Reading(park, tenant, meter, resource, Direction.OUT, ts, value, seq=ts)
    if any(unwritable_tag_value(v) for v in (park, tenant, meter, resource)) or math.isinf(value):
        with pytest.raises(StoreRejected):
            store.write(WriteBatch(readings=(r,)))
        return
    store.write(WriteBatch(readings=(r,)))
    # Filtering on the same values also exercises InfluxQL string-literal quoting.
    q = ReadingQuery(park=park, tenant=tenant, meter=meter, start_ms=ts, end_ms=ts + 1)
    assert store.readings(q) == [r]


_received = itertools.count(1_600_000_000_000)
_reasons = st.text(alphabet=st.sampled_from("ab ,=\"'\\é"), min_size=1, max_size=6).filter(
    lambda s: not unwritable_tag_value(s)
)


@SETTINGS
@given(
    reason=_reasons,
    detail=text,
    topic=text,
    payload=st.binary(max_size=300),
    index=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    ids=st.lists(st.none() | text, min_size=3, max_size=3),
)
def test_quarantine_round_trips_through_influxd(
    store: InfluxStore,
    reason: str,
    detail: str,
    topic: str,
    payload: bytes,
    index: int | None,
    ids: list[str | None],
) -> None:
    received = next(_received)
    mid = message_id(topic, payload)
    q = Rejection(reason, detail, topic, received, mid, index, *ids)
    m = QuarantinedMessage(mid, topic, received, payload, len(payload), *ids)
    store.write(WriteBatch(rejections=(q, q), messages=(m,)))  # the same record twice: one
    assert store.quarantined(reason=reason, since_ms=received) == [q]
    assert store.quarantined_messages([q]) == {mid: m}


@SETTINGS
@given(measurement=text, tag_key=text, field_key=text, tag_value=text, field_value=text)
def test_names_and_keys_round_trip_through_influxd(
    influx_server: InfluxServer,
    store: InfluxStore,
    measurement: str,
    tag_key: str,
    field_key: str,
    tag_value: str,
    field_value: str,
) -> None:
    ts = next(_ticks)
    unwritable = (
        unwritable_measurement(measurement)
        or unwritable_key(tag_key)
        or unwritable_key(field_key)
        or unwritable_tag_value(tag_value)
    )
    if unwritable:
        with pytest.raises(LineProtocolError):
            format_line(measurement, {tag_key: tag_value}, {field_key: field_value}, ts)
        return
    if tag_key == field_key:
        return  # legal in 1.x but not in our schema rules (and renamed to key_1 on read)
    line = format_line(measurement, {tag_key: tag_value}, {field_key: field_value}, ts)
    written = httpx.post(
        f"{influx_server.url}/write",
        params={"db": store.database, "precision": "ms"},
        content=line.encode(),
    )
    assert written.status_code == 204, written.text
    q = (
        f"SELECT {quote_ident(field_key)}, {quote_ident(tag_key)}::tag"
        f" FROM {quote_ident(measurement)} WHERE time = {ts}ms"
    )
    result = httpx.get(
        f"{influx_server.url}/query", params={"db": store.database, "q": q, "epoch": "ms"}
    ).json()
    assert result["results"][0]["series"][0]["values"] == [[ts, field_value, tag_value]], line


def test_a_key_starting_with_a_tab_is_refused() -> None:
    """influxd strips the tab and answers 204: the field would be stored out of reach."""
    with pytest.raises(LineProtocolError):
        format_line("m", {"t": "v"}, {"\t": 1.0}, 0)
    with pytest.raises(LineProtocolError):
        format_line("m", {"\tx": "v"}, {"f": 1.0}, 0)
