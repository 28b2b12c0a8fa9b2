"""One behavioural contract for every Store, then what is specific to SQLite and InfluxDB.

The contract runs against MemoryStore (the reference), SqliteStore on a temp file and
InfluxStore on a real influxd, so the three cannot drift apart silently. One file on purpose,
long as it is: the contract is read as a whole, port by port.
"""

from __future__ import annotations

import math
import random
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from parkflow.errors import StoreError, StoreRejected, StoreUnavailable
from parkflow.model import (
    Direction,
    MeterKey,
    QuarantinedMessage,
    Reading,
    Rejection,
    WriteBatch,
    message_id,
)
from parkflow.store import (
    InfluxStore,
    MemoryStore,
    ReadingQuery,
    SqliteStore,
    Store,
    open_store,
)
from parkflow.store.ports import MeterRange, read_ranges_one_by_one
from parkflow.store.rollup_rows import HOUR_COLUMNS, ROLLUP_COLUMNS, DayRollup
from parkflow.store.savings_rows import SavingsPoint
from parkflow.store.sqlite import MIGRATIONS, SCHEMA_VERSION
from parkflow.timeunits import HOUR_MS
from tests.support.influx import InfluxServer

T0 = 1_717_000_000_000  # 2024-05-29, epoch ms


def reading(
    meter: str = "m1",
    ts_ms: int = T0,
    value: float = 1.5,
    seq: int | None = None,
    park: str = "p1",
    tenant: str = "t1",
) -> Reading:
    return Reading(park, tenant, meter, "water", Direction.IN, ts_ms, value, seq)


TOPIC = "park/p1/t1/m1"


def quarantined(
    reason: str = "bad_json",
    received_ms: int = T0,
    payload: bytes = b"{}",
    index: int | None = None,
    detail: str = "no",
    **ids: str | None,
) -> tuple[Rejection, QuarantinedMessage]:
    """A rejection and the message it points to, as the validator makes them."""
    mid = message_id(TOPIC, payload)
    message = QuarantinedMessage(mid, TOPIC, received_ms, payload, len(payload), **ids)
    return Rejection(reason, detail, TOPIC, received_ms, mid, index, **ids), message


def rejection(
    reason: str = "bad_json",
    received_ms: int = T0,
    payload: bytes = b"{}",
    index: int | None = None,
    detail: str = "no",
    **ids: str | None,
) -> Rejection:
    return quarantined(reason, received_ms, payload, index, detail, **ids)[0]


@pytest.fixture(params=["memory", "sqlite", "influx"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        s: Store = MemoryStore()
    elif request.param == "sqlite":
        s = SqliteStore(tmp_path / "parkflow.db")
    else:
        s = request.getfixturevalue("influx_store")
    yield s
    s.close()


def all_readings(store: Store) -> list[Reading]:
    return store.readings(ReadingQuery())


# -- readings --------------------------------------------------------------------------------


def test_readings_round_trip_with_and_without_seq(store: Store) -> None:
    written = [
        reading("m1", T0, 0.1, seq=7),
        reading("m1", T0 + 1, -3.5),
        reading("m2", T0, 1e16, seq=2**62),
        reading("m3", T0, 0.0, seq=0),
        reading("m4", T0, 12345.678901234567),
    ]
    store.write(WriteBatch(readings=tuple(written)))
    got = all_readings(store)
    assert got == written
    assert [r.seq for r in got] == [7, None, 2**62, 0, None]
    assert all(isinstance(r.value, float) and isinstance(r.direction, Direction) for r in got)


def test_same_reading_twice_is_stored_once(store: Store) -> None:
    r = reading(seq=1)
    store.write(WriteBatch(readings=(r, r)))
    store.write(WriteBatch(readings=(r,)))
    assert all_readings(store) == [r]


def test_same_key_with_new_value_replaces(store: Store) -> None:
    store.write(WriteBatch(readings=(reading(value=1.0, seq=1), reading("m2", value=5.0))))
    store.write(WriteBatch(readings=(reading(value=2.0, seq=2),)))
    assert all_readings(store) == [reading(value=2.0, seq=2), reading("m2", value=5.0)]


def test_query_filters_and_sort_order(store: Store) -> None:
    keys = [
        (park, tenant, meter)
        for park in ("p1", "p2")
        for tenant in ("t1", "t'2\\x")  # quote and backslash exercise query escaping
        for meter in ("a", "b")
    ]
    far_past, far_future = -86_400_000, 7_258_118_400_000  # 1969-12-31, 2200-01-01
    written = [
        reading(meter, ts, float(ts % 97), park=park, tenant=tenant)
        for park, tenant, meter in keys
        for ts in (far_past, T0, T0 + 1000, T0 + 2000, far_future)
    ]
    shuffled = written[:]
    random.Random(4).shuffle(shuffled)
    store.write(WriteBatch(readings=tuple(shuffled[:20])))
    store.write(WriteBatch(readings=tuple(shuffled[20:])))

    def expect(pred: object) -> list[Reading]:
        assert callable(pred)
        return sorted(
            (r for r in written if pred(r)), key=lambda r: (r.park, r.tenant, r.meter, r.ts_ms)
        )

    assert all_readings(store) == expect(lambda r: True)
    assert store.readings(ReadingQuery(park="p2")) == expect(lambda r: r.park == "p2")
    assert store.readings(ReadingQuery(tenant="t'2\\x")) == expect(lambda r: r.tenant == "t'2\\x")
    assert store.readings(ReadingQuery(meter="b")) == expect(lambda r: r.meter == "b")
    assert store.readings(ReadingQuery(park="p1", tenant="t1", meter="a")) == expect(
        lambda r: r.key == reading("a").key
    )
    window = ReadingQuery(start_ms=T0, end_ms=T0 + 2000)  # start inclusive, end exclusive
    assert store.readings(window) == expect(lambda r: T0 <= r.ts_ms < T0 + 2000)
    assert {r.ts_ms for r in store.readings(window)} == {T0, T0 + 1000}
    assert store.readings(ReadingQuery(end_ms=0)) == expect(lambda r: r.ts_ms < 0)
    assert store.readings(ReadingQuery(start_ms=T0 + 2001)) == expect(lambda r: r.ts_ms > T0 + 2000)
    assert store.readings(ReadingQuery(park="p3")) == []
    assert store.readings(ReadingQuery(start_ms=T0, end_ms=T0)) == []


def test_large_batch_is_stored_completely(store: Store) -> None:
    written = [
        reading(f"m{i % 50:02d}", T0 + i * 1000, i / 7, seq=i if i % 2 else None)
        for i in range(20_000)
    ]
    store.write(WriteBatch(readings=tuple(written)))
    got = all_readings(store)
    assert len(got) == 20_000
    assert got == sorted(written, key=lambda r: (r.meter, r.ts_ms))


# -- quarantine ------------------------------------------------------------------------------


def test_quarantine_round_trip(store: Store) -> None:
    pairs = [
        quarantined("bad_json", T0 + 5, b"\xff\xfe\x00binary\x80", index=None),
        quarantined(
            "bad_json",
            T0 + 4,
            b'{"a": "x\\"y", \'q\'}\n\r\\ end \\',
            index=0,
            detail='line 1\nline "2" \\ back',
        ),
        quarantined("unknown_meter", T0 + 3, b"", index=7, park="p1", tenant="t1", meter="m9"),
        quarantined("unknown_meter", T0 + 2, "é😀".encode(), park="", tenant=None, meter="x y"),
        quarantined("too_old", T0 + 1, b"\x00", index=2**40, detail=""),
        quarantined("too_old", T0, bytes(range(256)) * 40),  # 10 KB of every byte value
    ]
    written = [r for r, _ in pairs]
    messages = {m.message_id: m for _, m in pairs}
    store.write(WriteBatch(rejections=tuple(written), messages=tuple(messages.values())))
    assert store.quarantined() == written  # most recent first
    assert store.quarantined_messages(written) == messages
    assert store.quarantined_messages([]) == {}
    assert store.quarantined_messages([rejection(payload=b"never written")]) == {}


def test_quarantine_filters(store: Store) -> None:
    written = [
        rejection(reason, T0 + i, f"#{i}".encode())
        for i, reason in enumerate(["a", "b", "a", "a", "b"])
    ]
    store.write(WriteBatch(rejections=tuple(written)))
    assert store.quarantined(reason="a") == [written[3], written[2], written[0]]
    assert store.quarantined(since_ms=T0 + 2) == [written[4], written[3], written[2]]
    assert store.quarantined(reason="b", since_ms=T0 + 2) == [written[4]]
    assert store.quarantined(limit=2) == [written[4], written[3]]
    assert store.quarantined(reason="nope") == []
    assert store.quarantine_counts() == {"a": 3, "b": 2}


def test_quarantine_filters_by_window_and_by_what_a_record_was_attributed_to(
    store: Store,
) -> None:
    ids: list[dict[str, str | None]] = [
        {"park": "p1", "tenant": "t1", "meter": "m1"},
        {"park": "p1", "tenant": "t1", "meter": "m2"},
        {"park": "p1", "tenant": "t2", "meter": "m1"},  # same meter id, another tenant
        {"park": "p2", "tenant": "t1", "meter": "m1"},  # same ids, another park
        {},  # not attributed: an unknown tenant, say
        {"park": "p1", "tenant": 'it\'s \\ "odd"', "meter": "m1"},
    ]
    written = [
        rejection("out_of_range", T0 + 10 * i, f"#{i}".encode(), None, "no", **kw)
        for i, kw in enumerate(ids)
    ]
    store.write(WriteBatch(rejections=tuple(written)))
    newest_first = written[::-1]
    assert store.quarantined(tenant="t1") == [written[3], written[1], written[0]]
    assert store.quarantined(park="p1", tenant="t1") == [written[1], written[0]]
    assert store.quarantined(park="p1", tenant="t1", meter="m1") == [written[0]]
    assert store.quarantined(meter="m1") == [written[5], written[3], written[2], written[0]]
    assert store.quarantined(tenant='it\'s \\ "odd"') == [written[5]]
    assert store.quarantined(tenant="t9") == []
    # [since, until): the start is in, the end is out
    assert store.quarantined(since_ms=T0 + 10, until_ms=T0 + 30) == [written[2], written[1]]
    assert store.quarantined(until_ms=T0 + 1) == [written[0]]
    assert store.quarantined(until_ms=T0) == []
    assert store.quarantined(since_ms=T0, until_ms=T0 + 1000) == newest_first
    assert store.quarantined(reason="out_of_range", tenant="t1", limit=2) == [
        written[3],
        written[1],
    ]
    assert store.quarantined(reason="bad_json", tenant="t1") == []


def test_rejections_of_one_message_in_one_millisecond_are_all_kept(store: Store) -> None:
    flood = [rejection("flood", T0, b"x", index=i) for i in range(510)]
    other = rejection("other", T0, b"y")
    store.write(WriteBatch(rejections=(*flood, other)))
    assert store.quarantine_counts() == {"flood": 510, "other": 1}
    assert Counter(store.quarantined(limit=10_000)) == Counter([*flood, other])


def test_the_same_quarantine_record_written_again_is_kept_once(store: Store) -> None:
    """A redelivered message (a crash between write and ack), a retried or a bisected batch
    write the same records again: they are one record each (issue: duplicated quarantine)."""
    r, m = quarantined("bad_ts", T0, b"[1, 2]", index=1)
    whole, whole_m = quarantined("malformed_json", T0 + 1, b"{")
    store.write(WriteBatch(rejections=(r, whole), messages=(m, whole_m)))
    store.write(WriteBatch(rejections=(r,), messages=(m,)))  # the same batch again, in part
    redelivered = Rejection(r.reason, r.detail, r.topic, T0 + 5_000, r.message_id, r.index)
    redelivered_m = QuarantinedMessage(m.message_id, m.topic, T0 + 5_000, m.payload, m.size)
    store.write(WriteBatch(rejections=(redelivered, whole), messages=(redelivered_m,)))
    assert store.quarantine_counts() == {"bad_ts": 1, "malformed_json": 1}
    assert sorted(q.rid for q in store.quarantined()) == sorted([r.rid, whole.rid])
    assert set(store.quarantined_messages(store.quarantined())) == {
        m.message_id,
        whole_m.message_id,
    }


def test_mixed_batch(store: Store) -> None:
    batch = WriteBatch(readings=(reading(),), rejections=(rejection(),))
    store.write(batch)
    assert all_readings(store) == [reading()]
    assert store.quarantined() == [rejection()]
    store.ping()


# -- change markers --------------------------------------------------------------------------


class Clock:
    """A store clock the test moves (change markers are stamped with it)."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture(params=["memory", "sqlite", "influx"])
def clocked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Clock]]:
    clock = Clock()
    if request.param == "memory":
        s: Store = MemoryStore(clock=clock)
    elif request.param == "sqlite":
        s = SqliteStore(tmp_path / "parkflow.db", clock=clock)
    else:
        server: InfluxServer = request.getfixturevalue("influx_server")
        database = f"t_{uuid.uuid4().hex[:12]}"
        s = InfluxStore(server.url, database, create_database=True, clock=clock)
    yield s, clock
    s.close()
    if request.param == "influx":
        server.query(f'DROP DATABASE "{database}"')


def key(meter: str = "m1", park: str = "p1", tenant: str = "t1") -> MeterKey:
    return MeterKey(park, tenant, meter)


def test_write_marks_the_hours_it_wrote(clocked: tuple[Store, Clock]) -> None:
    store, clock = clocked
    h0 = T0 - T0 % HOUR_MS
    store.write(
        WriteBatch(
            readings=(
                reading("m1", h0 + 5),
                reading("m1", h0 + HOUR_MS - 1),
                reading("m1", h0 + HOUR_MS),  # the next hour
                reading("m2", h0 + 10, tenant="t'2\\x"),
                reading("m3", -1),  # before 1970: floor, not truncation
            ),
            rejections=(rejection(),),
        )
    )
    marked = [
        (key("m1"), h0),
        (key("m1"), h0 + HOUR_MS),
        (key("m2", tenant="t'2\\x"), h0),
        (key("m3"), -HOUR_MS),
    ]
    assert store.changes_since(T0 - 1, T0) == sorted(
        marked, key=lambda kh: (kh[0].park, kh[0].tenant, kh[0].meter, kh[1])
    )
    assert store.changes_since(T0, T0 + 1000) == []  # the window is (after, until]
    assert store.changes_since(T0 - 1000, T0 - 1) == []

    clock.now = T0 + 60_000  # a later write into an hour already marked
    store.write(WriteBatch(readings=(reading("m1", h0 + 7),)))
    store.write(WriteBatch(rejections=(rejection(),)))  # no readings, no markers
    assert store.changes_since(T0, T0 + 60_000) == [(key("m1"), h0)]


def test_big_batch_marks_every_meter(clocked: tuple[Store, Clock]) -> None:
    store, _ = clocked
    # Long odd ids: InfluxDB splits the markers of one batch over several points.
    ids = [(f'tenant "{i % 7}\\é', f"meter/{i:05d}," + "x" * 40) for i in range(3000)]
    store.write(
        WriteBatch(readings=tuple(reading(m, T0 + i, tenant=t) for i, (t, m) in enumerate(ids)))
    )
    marked = store.changes_since(T0 - 1, T0)
    assert sorted(marked, key=str) == sorted(
        ((key(m, tenant=t), T0 - T0 % HOUR_MS) for t, m in ids), key=str
    )


def test_retried_influx_write_gets_a_fresh_marker(own_influx_server: InfluxServer) -> None:
    clock = Clock()
    store = InfluxStore(own_influx_server.url, "db", create_database=True, clock=clock)
    store.ping()
    batch = WriteBatch(readings=(reading(),))
    own_influx_server.stop()
    with pytest.raises(StoreUnavailable):
        store.write(batch)
    own_influx_server.start()
    clock.now = T0 + 90_000  # the retry, much later: its marker must say so
    store.write(batch)
    assert store.changes_since(T0 + 89_999, T0 + 90_000) == [(key(), T0 - T0 % HOUR_MS)]
    store.close()


def test_prune_changes(clocked: tuple[Store, Clock]) -> None:
    store, clock = clocked
    store.write(WriteBatch(readings=(reading("old"),)))
    clock.now = T0 + 100
    store.write(WriteBatch(readings=(reading("new"),)))
    store.prune_changes(T0 + 50)
    everything = store.changes_since(-(2**62), 2**62)
    assert everything == [(key("new"), T0 - T0 % HOUR_MS)]


# -- reads for the rollup worker -------------------------------------------------------------


def test_neighbours(store: Store) -> None:
    far = 10 * 86_400_000  # beyond any "look nearby first" window
    written = [
        reading("m1", T0 - far, 1.0, seq=1),
        reading("m1", T0, 2.0),
        reading("m1", T0 + 10, 3.0, seq=3),
        reading("m1", T0 + far, 4.0),
        reading("m2", T0 + 5, 9.0),
    ]
    store.write(WriteBatch(readings=tuple(written)))
    a, b, c, d, _ = written
    assert store.neighbours(key("m1"), T0, T0 + 10) == (a, c)
    assert store.neighbours(key("m1"), T0 + 1, T0 + 11) == (b, d)
    assert store.neighbours(key("m1"), T0 - far, T0 + far + 1) == (None, None)
    assert store.neighbours(key("m1"), T0 + far + 1, T0 + far + 2) == (d, None)
    assert store.neighbours(key("nope"), T0, T0) == (None, None)
    odd = reading("x/y.z*(w)|v", T0, 1.0, tenant="t'2\\x")
    store.write(WriteBatch(readings=(odd,)))
    assert store.neighbours(odd.key, T0 + 1, T0 + 2) == (odd, None)


def test_read_ranges_equals_range_by_range(store: Store) -> None:
    far = 5 * 86_400_000
    # Ids that need quoting or regex escaping, and one meter id under two tenants and parks.
    keys = [key("a"), key("b"), key("c"), key("a", tenant="t'2\\x"), key("a", park="p2")]
    keys += [key("x/y.z*(w)|v$^", tenant="t[1]")]
    written = [
        reading(k.meter, T0 + i * 600_000 + j, float(i + j), seq=i, park=k.park, tenant=k.tenant)
        for j, k in enumerate(keys)
        for i in range(-20, 20)
    ]
    written += [reading("a", T0 - far, 0.5), reading("a", T0 + far, 7.5)]
    store.write(WriteBatch(readings=tuple(written)))
    ranges = [
        MeterRange(k, start, end)
        for k in [*keys, key("missing")]
        for start, end in ((T0, T0 + 3_600_000), (T0 - 3_600_000, T0), (T0 + 1, T0 + 2))
    ]
    ranges += [
        MeterRange(key("a"), T0, T0 + 3_600_000),  # asked twice
        MeterRange(key("a"), T0 - far + 1, T0 + far),  # neighbours only far away
        MeterRange(key("b"), T0 + far, T0),  # empty range
    ]
    got = store.read_ranges(ranges)
    assert got == read_ranges_one_by_one(store, ranges)  # the generic, one-by-one answer
    assert [g.range for g in got] == ranges
    far_range = got[-2]
    assert (far_range.before, far_range.after) == ((T0 - far, 0.5), (T0 + far, 7.5))
    assert got[0].points[:2] == ((T0, 0.0), (T0 + 600_000, 1.0))


# -- rollups ---------------------------------------------------------------------------------

DAY0 = T0 - T0 % 86_400_000 - 7 * HOUR_MS  # a local midnight at +07:00


def rollup(meter: str, day: int, hours: list[float], park: str = "p1") -> DayRollup:
    return DayRollup.build(key(meter, park), "water", Direction.IN, DAY0 + day * 86_400_000, hours)


def same_rows(got: list[DayRollup], want: list[DayRollup]) -> bool:
    order = sorted(want, key=lambda r: (r.park, r.tenant, r.meter, r.day_ms))
    got = sorted(got, key=lambda r: (r.park, r.tenant, r.meter, r.day_ms))
    return len(got) == len(order) and all(g.same_as(w) for g, w in zip(got, order, strict=True))


def test_rollups_round_trip(store: Store) -> None:
    nan = math.nan
    full = [i * 1.25 + 1e-9 for i in range(24)]
    gappy = [nan] * 10 + [0.0, -0.0, 1e300, 5e-324] + [nan] * 10
    rows = [
        rollup("m1", 0, full),
        rollup("m1", 1, gappy),
        rollup("m2", 0, [nan] * 24),
        rollup("m3", 0, full, park="p2"),
    ]
    store.write_rollups(rows)
    replaced = rollup("m1", 1, [nan] * 23 + [2.0])
    store.write_rollups([replaced])  # NaN must replace the old hours, not leave them
    now = [rows[0], replaced, rows[2], rows[3]]
    assert same_rows(
        store.get_rollups([(key("m1"), DAY0), (key("m1"), DAY0 + 86_400_000)]), now[:2]
    )
    assert store.get_rollups([(key("m1"), DAY0 + 5), (key("zz"), DAY0)]) == []
    # one meter over days around one not asked for (days far from the windows read below):
    # only those asked come back
    store.write_rollups([rollup("m9", d, full) for d in range(40, 44)])
    asked = [(key("m9"), DAY0 + d * 86_400_000) for d in (40, 42, 43)]
    assert same_rows(store.get_rollups(asked), [rollup("m9", d, full) for d in (40, 42, 43)])
    later = DAY0 + 5 * 86_400_000  # outside the windows read below
    odd = DayRollup.build(key("m.1", tenant="t/(1)"), "water", Direction.OUT, later, full)
    store.write_rollups([odd, DayRollup.build(key("m1"), "water", Direction.IN, later, full)])
    assert same_rows(store.get_rollups([(odd.key, later), (key("m.1"), later)]), [odd])
    crossed = [
        DayRollup.build(key(m, p, t), "water", Direction.IN, later, full)
        for p, t, m in (("p1", "t1", "a"), ("p2", "t2", "b"), ("p1", "t2", "b"), ("p2", "t1", "a"))
    ]
    store.write_rollups(crossed)
    assert same_rows(
        store.get_rollups([(crossed[0].key, later), (crossed[1].key, later)]), crossed[:2]
    )

    frame = store.day_rollups(None, DAY0, DAY0 + 2 * 86_400_000)
    assert list(frame.columns) == list(ROLLUP_COLUMNS)
    assert list(frame["meter"]) == ["m1", "m1", "m2", "m3"]
    assert frame["day"].dtype == np.int64 and list(frame["day"]) == [
        DAY0,
        DAY0 + 86_400_000,
        DAY0,
        DAY0,
    ]
    for column in ("total", "coverage", *HOUR_COLUMNS):
        assert frame[column].dtype == np.float64
    for (_, rec), want in zip(frame.iterrows(), now, strict=True):
        assert (rec["park"], rec["tenant"], rec["resource"], rec["direction"]) == (
            want.park,
            want.tenant,
            "water",
            "in",
        )
        got_hours = rec[list(HOUR_COLUMNS)].to_numpy(dtype=np.float64)
        assert np.array_equal(got_hours, np.array(want.hours), equal_nan=True)
        assert (rec["total"], rec["coverage"]) == (want.total, want.coverage)
    assert replaced.total == 2.0 and replaced.coverage == 1 / 24

    assert list(store.day_rollups("p2", DAY0, DAY0 + 1)["meter"]) == ["m3"]
    assert list(store.day_rollups(None, DAY0 + 1, DAY0 + 86_400_001)["day"]) == [DAY0 + 86_400_000]
    empty = store.day_rollups("nowhere", DAY0, DAY0 + 86_400_000)
    assert empty.empty and list(empty.columns) == list(ROLLUP_COLUMNS)
    assert empty["day"].dtype == np.int64 and empty["h00"].dtype == np.float64


def test_many_rollups_round_trip(store: Store) -> None:
    rng = np.random.default_rng(3)
    values = rng.random((3000, 24)) * 1000
    values[values < 100] = np.nan
    rows = [
        rollup(f"m{i % 300:03d}", i // 300, list(values[i]), park=f"p{i % 2}") for i in range(3000)
    ]
    store.write_rollups(rows)
    frame = store.day_rollups(None, DAY0, DAY0 + 10 * 86_400_000)
    assert len(frame) == 3000
    want = sorted(rows, key=lambda r: (r.park, r.tenant, r.meter, r.day_ms))
    assert np.array_equal(
        frame[list(HOUR_COLUMNS)].to_numpy(), np.array([r.hours for r in want]), equal_nan=True
    )
    assert list(frame["total"]) == [r.total for r in want]


DAY = 86_400_000


def hours_by_rows(store: Store, keys: list[MeterKey], start_ms: int, days: int) -> np.ndarray:
    """``rollup_hours`` by its definition: ``get_rollups`` of each (meter, day), NaN if none."""
    at = [start_ms + d * DAY for d in range(days)]
    found = {
        (r.key, r.day_ms): r.hours for r in store.get_rollups([(k, t) for k in keys for t in at])
    }
    out = np.full((len(keys), days, 24), np.nan)
    for i, k in enumerate(keys):
        for d, t in enumerate(at):
            if (k, t) in found:
                out[i, d] = found[(k, t)]
    return out


def test_rollup_hours_equal_the_rows_read(store: Store) -> None:
    rng = np.random.default_rng(11)
    meters = [key(f"m{i:02d}", park=f"p{i % 2}") for i in range(40)]
    odd = key("m.1", tenant="t/(1)")
    crossed = [
        key(m, p, t) for p, t, m in (("p1", "t1", "a"), ("p2", "t2", "b"), ("p1", "t2", "b"))
    ]
    rows = []
    for k in [*meters, odd, *crossed]:
        for d in range(10):
            if rng.random() < 0.2:
                continue  # no row that day
            hours = rng.random(24) * 100
            hours[rng.random(24) < 0.3] = np.nan
            rows.append(DayRollup.build(k, "water", Direction.IN, DAY0 + d * DAY, hours.tolist()))
    off_midnight = DAY0 + 3 * DAY + 5
    rows.append(DayRollup.build(meters[0], "water", Direction.IN, off_midnight, [1.5] * 24))
    store.write_rollups(rows)
    # present, missing, asked twice, odd characters, two of three crossed (the tag product
    # would also match the third)
    asked = [*meters[:30], key("missing"), meters[3], odd, crossed[0], crossed[1]]
    for start, days in (
        (DAY0, 10),
        (DAY0 + 2 * DAY, 3),
        (DAY0 - 2 * DAY, 4),
        (DAY0 + 9 * DAY, 5),
        (off_midnight, 1),
        (DAY0, 0),
    ):
        got = store.rollup_hours(asked, start, days)
        assert got.shape == (len(asked), days, 24) and got.dtype == np.float64
        assert np.array_equal(got, hours_by_rows(store, asked, start, days), equal_nan=True)
    year = store.rollup_hours(asked, DAY0, 10)
    assert np.isfinite(year).sum() > 3000  # most hours found
    assert np.isnan(year[asked.index(key("missing"))]).all()
    assert (store.rollup_hours([meters[0]], off_midnight, 1) == 1.5).all()
    assert store.rollup_hours([], DAY0, 3).shape == (0, 3, 24)


def _saving(exchange: str, day_ms: int, park_vnd: int, park: str = "p1") -> SavingsPoint:
    return SavingsPoint(
        park, exchange, day_ms, 242.9616, 0.75, 2_794_059, park_vnd - 2_794_059, park_vnd,
        242.9616, 0.0971, 0.0, True,
    )  # fmt: skip


def test_savings_round_trip_and_a_recomputed_day_replaces_its_point(store: Store) -> None:
    day = 86_400_000
    first = [_saving("x1", T0 + i * day, 5_709_598 + i) for i in range(3)]
    store.write_savings([*first, _saving("x0", T0, -12), _saving("x9", T0, 7, park="p2")])
    assert store.savings_points("p1", T0, T0 + 3 * day) == [_saving("x0", T0, -12), *first]
    assert store.savings_points(None, T0, T0 + day)[-1].park == "p2"
    assert store.savings_points("p1", T0 + day, T0 + 2 * day) == [first[1]]
    again = _saving("x1", T0 + day, 6_074_040)  # a late reading changed that day
    store.write_savings([again, again])
    got = store.savings_points("p1", T0, T0 + 3 * day)
    assert [p.park_vnd for p in got if p.exchange == "x1"] == [5_709_598, 6_074_040, 5_709_600]
    assert store.savings_points("p3", T0, T0 + 3 * day) == []


def test_checkpoints(store: Store) -> None:
    assert store.get_checkpoint("watermark") is None
    store.set_checkpoint("watermark", 5)
    store.set_checkpoint("other", -(2**62))
    store.set_checkpoint("watermark", 3)
    assert store.get_checkpoint("watermark") == 3
    assert store.get_checkpoint("other") == -(2**62)


def test_influx_reads_checkpoints_written_before_they_had_their_own_measurement(
    influx_server: InfluxServer, influx_store: InfluxStore
) -> None:
    influx_store.ping()
    old = "rollup_state,key=rollups.watermark value=41i 1000000000"
    response = httpx.post(
        f"{influx_server.url}/write",
        params={"db": influx_store.database, "precision": "ns"},
        content=old,
    )
    assert response.status_code == 204
    assert influx_store.get_checkpoint("rollups.watermark") == 41
    influx_store.set_checkpoint("rollups.watermark", 42)  # the newer point wins
    assert influx_store.get_checkpoint("rollups.watermark") == 42


def test_sqlite_migration_keeps_the_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    raw = sqlite3.connect(path)
    for step in MIGRATIONS[:3]:
        for statement in step:
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 3")
    raw.execute("INSERT INTO state (name, value) VALUES ('rollups.watermark', 7)")
    raw.commit()
    raw.close()
    store = SqliteStore(path)
    assert store.get_checkpoint("rollups.watermark") == 7
    store.close()


# -- what must fail, and how -----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "influx"])
def durable_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SqliteStore(tmp_path / "parkflow.db")
    else:
        s = request.getfixturevalue("influx_store")
    yield s
    s.close()


def test_unstorable_value_fails_the_whole_batch_permanently(durable_store: Store) -> None:
    good = reading("good")
    with pytest.raises(StoreRejected):
        durable_store.write(WriteBatch(readings=(good, reading("bad", value=math.nan))))
    assert all_readings(durable_store) == []


# -- InfluxStore -----------------------------------------------------------------------------


def test_influx_stopped_server_is_retryable_and_data_survives_restart(
    own_influx_server: InfluxServer,
) -> None:
    store = InfluxStore(own_influx_server.url, "db", create_database=True, timeout=2.0)
    store.write(WriteBatch(readings=(reading(),)))
    own_influx_server.stop()
    with pytest.raises(StoreUnavailable):
        store.write(WriteBatch(readings=(reading("m2"),)))
    with pytest.raises(StoreUnavailable):
        store.ping()
    own_influx_server.start()
    store.write(WriteBatch(readings=(reading("m2"),)))
    assert all_readings(store) == [reading(), reading("m2")]
    store.close()


def test_influx_acknowledged_write_survives_sigkill(own_influx_server: InfluxServer) -> None:
    store = InfluxStore(own_influx_server.url, "db", create_database=True)
    batch = WriteBatch(readings=(reading(seq=3),), rejections=(rejection(),))
    store.write(batch)
    own_influx_server.kill()
    own_influx_server.start()
    assert all_readings(store) == [reading(seq=3)]
    assert store.quarantined() == [rejection()]
    store.close()


def test_influx_frozen_server_times_out_retryably_and_retry_does_not_duplicate(
    own_influx_server: InfluxServer,
) -> None:
    store = InfluxStore(own_influx_server.url, "db", create_database=True, timeout=0.5)
    store.ping()  # database created while the server is alive
    batch = WriteBatch(rejections=(rejection(index=0), rejection(index=1)))
    writes_before = own_influx_server.http_stats()["writeReq"]
    own_influx_server.pause()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="timed out"):
        store.write(batch)
    assert time.monotonic() - started < 3.0
    own_influx_server.resume()
    # The frozen server still carries out the request it had buffered. Wait for that, so the
    # retry really is a second delivery of the same two quarantine points.
    deadline = time.monotonic() + 10
    while own_influx_server.http_stats()["writeReq"] == writes_before:
        assert time.monotonic() < deadline, "influxd never processed the buffered write"
        time.sleep(0.05)
    store.write(batch)
    assert store.quarantine_counts() == {"bad_json": 2}
    assert len(store.quarantined()) == 2
    store.write(WriteBatch(rejections=(rejection(index=2),)))  # a new record
    assert store.quarantine_counts() == {"bad_json": 3}
    store.close()


def test_influx_field_type_conflict_is_permanent(
    influx_server: InfluxServer, influx_store: InfluxStore
) -> None:
    influx_store.ping()  # creates the database
    foreign = "reading,direction=in,meter=m1,park=p1,resource=water,tenant=t1 seq=1.5"
    response = httpx.post(
        f"{influx_server.url}/write",
        params={"db": influx_store.database, "precision": "ms"},
        content=f"{foreign} {T0}",
    )
    assert response.status_code == 204
    with pytest.raises(StoreRejected, match="field type conflict"):
        influx_store.write(WriteBatch(readings=(reading("m2", T0 + 1, seq=1),)))


def test_influx_partial_write_then_bisection_stores_each_quarantine_record_once(
    influx_server: InfluxServer, influx_store: InfluxStore
) -> None:
    """InfluxDB answers a batch with 400 "partial write" after storing its other points; the
    ingestor then writes the batch again in halves. The quarantine records it had stored must
    not be stored twice (2 bad readings gave 4 records)."""
    influx_store.ping()
    foreign = "reading,direction=in,meter=m1,park=p1,resource=water,tenant=t1 seq=1.5"
    response = httpx.post(
        f"{influx_server.url}/write",
        params={"db": influx_store.database, "precision": "ms"},
        content=f"{foreign} {T0}",
    )
    assert response.status_code == 204
    bad, bad_message = quarantined("bad_value", T0, b"[1, 2]", index=0)
    worse = rejection("bad_value", T0, b"[1, 2]", index=1)
    conflicting = reading("m1", T0 + 1, seq=1)  # seq now an integer: a field type conflict
    batch = WriteBatch((conflicting,), (bad, worse), (bad_message,))
    with pytest.raises(StoreRejected, match="partial write"):
        influx_store.write(batch)
    influx_store.write(WriteBatch((), (bad, worse), (bad_message,)))  # the bisection's half
    influx_store.write(WriteBatch((), (bad,)))  # and a smaller one
    raw = influx_server.query(
        'SELECT count("rid") FROM "quarantine"', db=influx_store.database
    ).json()
    assert raw["results"][0]["series"][0]["values"][0][1] == 2  # points, not only reads
    assert influx_store.quarantine_counts() == {"bad_value": 2}


def test_influx_unrepresentable_tag_fails_before_anything_is_sent(
    influx_store: InfluxStore,
) -> None:
    bad = reading(park="line\nbreak")
    with pytest.raises(StoreRejected, match="LF"):
        influx_store.write(WriteBatch(readings=(reading(), bad)))
    assert all_readings(influx_store) == []


def test_influx_missing_database_is_retryable(influx_server: InfluxServer) -> None:
    store = InfluxStore(influx_server.url, "never_created")
    with pytest.raises(StoreUnavailable, match="404"):
        store.write(WriteBatch(readings=(reading(),)))
    store.close()


def test_influx_chunks_by_points_and_bytes(influx_server: InfluxServer) -> None:
    written = [reading(f"m{i:03d}", seq=i) for i in range(50)]
    big, big_message = quarantined(payload=b"x" * 1000)
    batch = WriteBatch(readings=tuple(written), rejections=(big,), messages=(big_message,))

    by_points = InfluxStore(influx_server.url, "chunk_a", create_database=True, max_points=7)
    by_points.ping()
    before = influx_server.http_stats()["writeReq"]
    by_points.write(batch)
    # 50 readings in three groups by meter (posted at once), 7 points a request, then the
    # rejection, its message and the change marker.
    groups = Counter(hash(r.meter) % 3 for r in written)
    expected = sum(math.ceil(n / 7) for n in groups.values()) + 1
    assert influx_server.http_stats()["writeReq"] - before == expected
    assert all_readings(by_points) == written

    by_bytes = InfluxStore(influx_server.url, "chunk_b", create_database=True, max_body_bytes=300)
    by_bytes.ping()
    before_stats = influx_server.http_stats()
    by_bytes.write(batch)
    after_stats = influx_server.http_stats()
    requests = after_stats["writeReq"] - before_stats["writeReq"]
    body_bytes = after_stats["writeReqBytes"] - before_stats["writeReqBytes"]
    # Every request holds at most 300 bytes, except the one carrying the 1000-byte payload.
    assert requests >= (body_bytes - 1100) / 300 + 1 > 10
    assert all_readings(by_bytes) == written
    assert by_bytes.quarantine_counts() == {"bad_json": 1}
    assert by_bytes.quarantined_messages([big]) == {big.message_id: big_message}
    for s in (by_points, by_bytes):
        s.close()
    influx_server.query('DROP DATABASE "chunk_a"')
    influx_server.query('DROP DATABASE "chunk_b"')


def test_influx_later_reading_of_a_key_wins_even_across_concurrent_requests(
    influx_server: InfluxServer,
) -> None:
    """A big batch goes out as concurrent requests; a correction of a reading in the same
    batch must still win over its original (both in one group, posted in order)."""
    store = InfluxStore(influx_server.url, "order", create_database=True, max_points=10)
    try:
        for attempt in range(20):
            ts = T0 + attempt * 1000
            others = [reading(f"o{i}", ts) for i in range(60)]
            batch = (reading("m1", ts, 1.0), *others, reading("m1", ts, 2.0))
            store.write(WriteBatch(readings=batch))
            got = store.readings(ReadingQuery(meter="m1", start_ms=ts, end_ms=ts + 1))
            assert [r.value for r in got] == [2.0], attempt
    finally:
        store.close()
        influx_server.query('DROP DATABASE "order"')


def test_influx_wrong_credentials_are_retryable() -> None:
    with InfluxServer(auth_enabled=True) as server:
        created = server.query("CREATE USER \"admin\" WITH PASSWORD 's3cret' WITH ALL PRIVILEGES")
        assert created.status_code == 200 and "error" not in created.text
        good = InfluxStore(
            server.url, "db", username="admin", password="s3cret", create_database=True
        )
        good.write(WriteBatch(readings=(reading(),)))
        assert all_readings(good) == [reading()]
        bad = InfluxStore(server.url, "db", username="admin", password="wrong")
        with pytest.raises(StoreUnavailable, match="401"):
            bad.write(WriteBatch(readings=(reading("m2"),)))
        anonymous = InfluxStore(server.url, "db")
        with pytest.raises(StoreUnavailable, match="401"):
            anonymous.write(WriteBatch(readings=(reading("m2"),)))
        assert all_readings(good) == [reading()]
        for s in (good, bad, anonymous):
            s.close()


# -- SqliteStore -----------------------------------------------------------------------------


def test_sqlite_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "parkflow.db"
    store = SqliteStore(path)
    r, m = quarantined(payload=b"\xff")
    store.write(WriteBatch(readings=(reading(seq=1),), rejections=(r,), messages=(m,)))
    store.close()
    again = SqliteStore(path)
    assert all_readings(again) == [reading(seq=1)]
    assert again.quarantined() == [r]
    assert again.quarantined_messages([r]) == {m.message_id: m}
    again.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    raw.close()


def test_sqlite_migration_marks_existing_readings(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    raw = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    raw.executemany(
        "INSERT INTO readings VALUES ('p1', 't1', ?, ?, 'water', 'in', 1.0, NULL)",
        [("m1", T0), ("m1", T0 + 1), ("m2", -1), ("m2", -3_600_000)],
    )
    raw.commit()
    raw.close()
    store = SqliteStore(path)
    assert store.changes_since(-1, 0) == [
        (key("m1"), T0 - T0 % HOUR_MS),
        (key("m2"), -3_600_000),
    ]
    store.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (5,)
    raw.close()


def test_sqlite_migration_keeps_old_quarantine_records_with_their_payload(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    raw = sqlite3.connect(path)
    for step in MIGRATIONS[:2]:
        for statement in step:
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 2")
    raw.executemany(
        "INSERT INTO quarantine (reason, detail, topic, payload, received_ms, idx, park, tenant,"
        " meter) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("bad_ts", "row 3", "import:x.csv", b"yesterday;1", T0, 3, "p1", "t1", "m1"),
            ("not_utf8", "bytes", TOPIC, b"\xff" * 20_000, T0 + 1, None, None, None, None),
        ],
    )
    raw.commit()
    raw.close()
    store = SqliteStore(path)
    old = store.quarantined()
    assert [(q.reason, q.index, q.received_ms) for q in old] == [
        ("not_utf8", None, T0 + 1),
        ("bad_ts", 3, T0),
    ]
    messages = store.quarantined_messages(old)
    big, small = (messages[q.message_id] for q in old)
    assert small.payload == b"yesterday;1" and small.size == 11
    assert big.size == 20_000 and big.payload == b"\xff" * 16_384  # capped like new ones
    assert store.quarantine_counts() == {"bad_ts": 1, "not_utf8": 1}
    store.close()


def test_sqlite_is_usable_from_several_threads(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "parkflow.db")
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for b in range(40):
                readings = tuple(reading(f"w{worker}", T0 + b * 100 + i) for i in range(100))
                mine = rejection(index=worker * 1000 + b)
                store.write(WriteBatch(readings=readings, rejections=(mine,)))
                store.readings(ReadingQuery(meter=f"w{worker}", start_ms=T0 + b * 100))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(all_readings(store)) == 3 * 40 * 100
    assert store.quarantine_counts() == {"bad_json": 120}
    store.close()


def test_sqlite_locked_database_is_retryable(tmp_path: Path) -> None:
    path = tmp_path / "parkflow.db"
    store = SqliteStore(path, busy_timeout_ms=50)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreUnavailable, match="locked"):
        store.write(WriteBatch(readings=(reading(),)))
    other.execute("ROLLBACK")
    other.close()
    store.write(WriteBatch(readings=(reading(),)))
    assert all_readings(store) == [reading()]
    store.close()


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "parkflow.db"
    SqliteStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer"):
        SqliteStore(path)


def test_open_store_picks_influx_only_when_configured(
    tmp_path: Path, influx_server: InfluxServer
) -> None:
    local = open_store(None, str(tmp_path / "a.db"))
    assert isinstance(local, SqliteStore)
    local.close()
    remote = open_store(influx_server.url, str(tmp_path / "b.db"), database="x", timeout=3.0)
    assert isinstance(remote, InfluxStore) and remote.database == "x"
    remote.close()
    assert not (tmp_path / "b.db").exists()
