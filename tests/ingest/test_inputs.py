"""Bad, odd and hostile input, end to end: a real Mosquitto, ``parkflow ingest`` as a process, SQLite.

Every bad message must be acknowledged by the broker, quarantined with the right reason (and,
in a batch, the index of the bad reading), counted in ``parkflow_ingest_quarantined_total``,
and never stored as a reading; good readings next to bad ones are stored; duplicates are stored
once; out-of-order readings and counter resets give the right interval quantities from the
stored series. The one ingestor process serves the whole module and must still be running,
and still storing, at the end.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise

import pytest

from ingest.validate import MAX_KEPT_PAYLOAD
from parkflow.model import MeterKind, Rejection, message_id
from parkflow.store import ReadingQuery, SqliteStore
from parkflow.topics import topic_for
from service.rollups.counters import intervals
from tests.support.checker import Publisher, SentMessage
from tests.support.ingestor_proc import IngestorPool, IngestorProcess, wait_receiving
from tests.support.mosquitto import MosquittoServer, wait_until

REGISTRY = """\
version: 1
parks:
  - id: tp
    name: Test park
    tenants:
      - id: alpha
        name: Alpha Steel
        meters:
          - {id: a-water, resource: water.potable, direction: in, unit: m3, kind: cumulative, rollover: 1000000}
          - {id: a-counter, resource: water.potable, direction: in, unit: m3, kind: cumulative}
          - {id: a-elec, resource: energy.electricity, direction: in, unit: kW, kind: rate, min: 0, max: 60000}
      - id: beta
        name: Beta Foods
        meters:
          - {id: b-scrap, resource: waste.scrap, direction: out, unit: kg, kind: delta, min: 0}
"""

WATER = topic_for("tp", "alpha", "a-water")
COUNTER = topic_for("tp", "alpha", "a-counter")
ELEC = topic_for("tp", "alpha", "a-elec")
SCRAP = topic_for("tp", "beta", "b-scrap")
DAY_MS = 86_400_000
MAX_PAYLOAD = 512 * 1024


@dataclass
class Env:
    broker: MosquittoServer
    ingestor: IngestorProcess
    store: SqliteStore
    pub: Publisher


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("inputs")
    registry = tmp / "registry.yaml"
    registry.write_text(REGISTRY)
    db = tmp / "parkflow.sqlite"
    broker = MosquittoServer().start()
    store = SqliteStore(db)
    try:
        with IngestorPool(tmp) as pool:
            ing = pool.make(mqtt_port=broker.port, sqlite_path=db, registry=registry)
            ing.start()
            wait_receiving([ing], broker.port)
            with Publisher(broker.port) as pub:
                yield Env(broker, ing, store, pub)
    finally:
        store.close()
        broker.close()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


_ts = iter(range(now_ms() - 3 * DAY_MS, now_ms(), 60_000))


def fresh_ts() -> int:
    """A timestamp no other test in this module uses: a minute apart, within the last days."""
    return next(_ts)


def send(env: Env, topic: str, payload: bytes) -> None:
    msg = env.pub.send(SentMessage(topic, ()), payload=payload)
    env.pub.wait_answered(20)
    assert msg.reason == 0, f"broker answered {msg.reason}"


def quarantined_for(
    env: Env, topic: str, payload: bytes, count: int = 1, timeout: float = 20
) -> list[Rejection]:
    """The quarantine records of the message with this exact payload, once ``count`` are
    there; the message they point to must be kept once, capped, with its full size."""
    found: list[Rejection] = []
    mid = message_id(topic, payload)

    def there() -> bool:
        nonlocal found
        found = [q for q in env.store.quarantined(limit=100_000) if q.message_id == mid]
        return len(found) >= count

    wait_until(there, timeout=timeout)
    message = env.store.quarantined_messages(found)[mid]
    assert message.payload == payload[:MAX_KEPT_PAYLOAD]
    assert (message.size, message.topic) == (len(payload), topic)
    return sorted(found, key=lambda q: -1 if q.index is None else q.index)


def quarantine_metric(env: Env, reason: str) -> float:
    return env.ingestor.metric(f'parkflow_ingest_quarantined_total{{reason="{reason}"}}')


def all_readings(env: Env) -> int:
    return len(env.store.readings(ReadingQuery()))


def doc(ts: int, value: object, **more: object) -> dict[str, object]:
    return {"ts": ts, "value": value, **more}


def js(obj: object) -> bytes:
    return json.dumps(obj).encode()


Case = tuple[str, Callable[[str], bytes], str]  # topic, payload from a unique token, reason

BAD_INPUTS: dict[str, Case] = {
    "unknown park": (
        topic_for("atlantis", "alpha", "a-water"),
        lambda t: js(doc(fresh_ts(), 1.0, note=t)),
        "unknown_park",
    ),
    "unknown tenant": (
        topic_for("tp", "gamma", "g-water"),
        lambda t: js(doc(fresh_ts(), 1.0, note=t)),
        "unknown_tenant",
    ),
    "unknown meter": (
        topic_for("tp", "alpha", "a-gas"),
        lambda t: js(doc(fresh_ts(), 1.0, note=t)),
        "unknown_meter",
    ),
    "alpha's meter on beta's topic": (
        topic_for("tp", "beta", "a-water"),
        lambda t: js(doc(fresh_ts(), 1.0, note=t)),
        "topic_mismatch",
    ),
    "malformed JSON": (WATER, lambda t: b'{"ts": 1, "value": ' + t.encode(), "malformed_json"),
    "not UTF-8": (
        WATER,
        lambda t: b'{"ts": %d, "value": 1.0, "note": "\xff\xfe%s"}' % (fresh_ts(), t.encode()),
        "not_utf8",
    ),
    "NaN literal": (
        ELEC,
        lambda t: b'{"ts": %d, "value": NaN, "note": "%s"}' % (fresh_ts(), t.encode()),
        "not_finite",
    ),
    "Infinity literal": (
        ELEC,
        lambda t: b'{"ts": %d, "value": Infinity, "note": "%s"}' % (fresh_ts(), t.encode()),
        "not_finite",
    ),
    "-Infinity literal": (
        ELEC,
        lambda t: b'{"ts": %d, "value": -Infinity, "note": "%s"}' % (fresh_ts(), t.encode()),
        "not_finite",
    ),
    "NaN string": (ELEC, lambda t: js(doc(fresh_ts(), "NaN", note=t)), "not_finite"),
    "Infinity string": (ELEC, lambda t: js(doc(fresh_ts(), "Infinity", note=t)), "not_finite"),
    "above the meter's max": (ELEC, lambda t: js(doc(fresh_ts(), 60000.5, note=t)), "out_of_range"),
    "below the meter's min": (ELEC, lambda t: js(doc(fresh_ts(), -0.5, note=t)), "out_of_range"),
    "above max after unit conversion": (
        ELEC,
        lambda t: js(doc(fresh_ts(), 61, unit="MW", note=t)),
        "out_of_range",
    ),
    "ts 10 minutes in the future": (
        WATER,
        lambda t: js(doc(now_ms() + 10 * 60_000, 1.0, note=t)),
        "future_ts",
    ),
    "ts older than the horizon": (
        WATER,
        lambda t: js(doc(now_ms() - 401 * DAY_MS, 1.0, note=t)),
        "too_old",
    ),
    "overflows to infinity in canonical units": (
        COUNTER,
        lambda t: js(doc(fresh_ts(), 1e308, unit="km^3", note=t)),
        "not_finite",
    ),
    "kWh on a water meter": (
        WATER,
        lambda t: js(doc(fresh_ts(), 1.0, unit="kWh", note=t)),
        "bad_unit",
    ),
    "payload over the byte limit": (
        WATER,
        lambda t: js(doc(fresh_ts(), 1.0, note=t, pad="x" * MAX_PAYLOAD)),
        "payload_too_large",
    ),
    "batch of 1001 readings": (
        SCRAP,
        lambda t: js([doc(fresh_ts(), 1.0, note=t) for _ in range(1001)]),
        "batch_too_large",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_is_quarantined_counted_and_not_stored(env: Env, case: str) -> None:
    topic, make, reason = BAD_INPUTS[case]
    payload = make(f"case-{case}")
    stored_before = all_readings(env)
    counted_before = quarantine_metric(env, reason)
    send(env, topic, payload)
    (q,) = quarantined_for(env, topic, payload)
    assert (q.reason, q.topic, q.index) == (reason, topic, None), q.detail
    assert q.detail
    wait_until(lambda: quarantine_metric(env, reason) >= counted_before + 1, timeout=10)
    assert quarantine_metric(env, reason) == counted_before + 1
    assert all_readings(env) == stored_before


def test_batch_stores_good_readings_and_quarantines_each_bad_one_with_its_index(
    env: Env,
) -> None:
    ts = [fresh_ts() for _ in range(7)]
    items = [
        b'{"ts": %d, "value": 10.0}' % ts[0],  # good
        b'{"ts": %d, "value": NaN}' % ts[1],
        b'{"ts": %d, "value": 70000}' % ts[2],
        b'{"ts": %d, "value": "Infinity"}' % ts[3],
        b'{"ts": %d, "value": 20, "unit": "MW"}' % ts[4],  # good: 20000 kW
        b'{"ts": %d, "value": 5.0}' % (now_ms() + 3_600_000),
        b'{"ts": %d, "value": 1.0, "unit": "m3"}' % ts[6],
    ]
    payload = b"[" + b", ".join(items) + b"]"
    before = {r: quarantine_metric(env, r) for r in ("not_finite", "out_of_range", "future_ts")}
    send(env, ELEC, payload)
    got = quarantined_for(env, ELEC, payload, count=5)
    assert [(q.index, q.reason) for q in got] == [
        (1, "not_finite"),
        (2, "out_of_range"),
        (3, "not_finite"),
        (5, "future_ts"),
        (6, "bad_unit"),
    ]
    assert all((q.park, q.tenant, q.meter, q.topic) == ("tp", "alpha", "a-elec", ELEC) for q in got)
    stored = env.store.readings(ReadingQuery(meter="a-elec", start_ms=ts[0], end_ms=ts[6] + 1))
    assert [(r.ts_ms, r.value) for r in stored] == [(ts[0], 10.0), (ts[4], 20000.0)]
    wait_until(lambda: quarantine_metric(env, "future_ts") >= before["future_ts"] + 1, timeout=10)
    assert quarantine_metric(env, "not_finite") == before["not_finite"] + 2
    assert quarantine_metric(env, "out_of_range") == before["out_of_range"] + 1


def test_duplicates_are_stored_once(env: Env) -> None:
    t1, t2 = fresh_ts(), fresh_ts()
    one = js(doc(t1, 4.0, seq=1))
    send(env, SCRAP, one)
    send(env, SCRAP, one)  # a gateway resending after a lost PUBACK
    send(env, SCRAP, js([doc(t2, 2.5, seq=2), doc(t2, 2.5, seq=2), doc(t1, 4.0, seq=1)]))
    query = ReadingQuery(meter="b-scrap", start_ms=t1, end_ms=t2 + 1)
    wait_until(lambda: len(env.store.readings(query)) >= 2, timeout=20)
    stored = env.store.readings(query)
    assert [(r.ts_ms, r.seq) for r in stored] == [(t1, 1), (t2, 2)]
    assert [r.value for r in stored] == pytest.approx([0.004, 0.0025])  # kg -> t


def _send_shuffled(env: Env, topic: str, points: list[tuple[int, float]], seed: int) -> None:
    """Some readings one per message, the rest as one batch, all in a shuffled order."""
    shuffled = points[:]
    random.Random(seed).shuffle(shuffled)
    half = len(shuffled) // 2
    for ts, value in shuffled[:half]:
        send(env, topic, js(doc(ts, value)))
    send(env, topic, js([doc(ts, value) for ts, value in shuffled[half:]]))


def _stored_series(
    env: Env, meter: str, points: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    query = ReadingQuery(meter=meter, start_ms=points[0][0], end_ms=points[-1][0] + 1)
    wait_until(lambda: len(env.store.readings(query)) >= len(points), timeout=20)
    return [(r.ts_ms, r.value) for r in env.store.readings(query)]


def test_out_of_order_readings_and_a_counter_reset_give_correct_intervals(env: Env) -> None:
    ts = [fresh_ts() for _ in range(6)]
    # register: 100 -> 110 -> 125, meter replaced (reset to 0) -> 5 -> 20 -> 32
    points = list(zip(ts, [100.0, 110.0, 125.0, 5.0, 20.0, 32.0], strict=True))
    _send_shuffled(env, COUNTER, points, seed=1)
    series = _stored_series(env, "a-counter", points)
    assert series == points
    got = intervals(MeterKind.CUMULATIVE, series)
    assert [(i.start_ms, i.end_ms) for i in got] == list(pairwise(ts))
    assert [i.quantity for i in got] == [10.0, 15.0, 5.0, 15.0, 12.0]
    assert all(i.quantity >= 0 for i in got)


def test_out_of_order_readings_across_a_rollover_give_correct_intervals(env: Env) -> None:
    ts = [fresh_ts() for _ in range(5)]
    # a 6-digit register (rollover 1000000) wraps: 999990 -> 999995 -> 3 -> 10, then is reset
    points = list(zip(ts, [999_990.0, 999_995.0, 3.0, 10.0, 2.0], strict=True))
    _send_shuffled(env, WATER, points, seed=2)
    series = _stored_series(env, "a-water", points)
    assert series == points
    got = intervals(MeterKind.CUMULATIVE, series, rollover=1_000_000)
    assert [i.quantity for i in got] == [5.0, 8.0, 7.0, 2.0]


def test_ingestor_still_running_and_storing_after_all_that(env: Env) -> None:
    ts = fresh_ts()
    send(env, ELEC, js(doc(ts, 123.0, seq=999)))
    query = ReadingQuery(meter="a-elec", start_ms=ts, end_ms=ts + 1)
    wait_until(lambda: len(env.store.readings(query)) == 1, timeout=20)
    assert env.store.readings(query)[0].value == 123.0
    ing = env.ingestor
    assert ing.alive and ing.starts == 1, ing.log_tail()
    assert ing.readyz()[0] == 200
    assert "internal_error" not in env.store.quarantine_counts()
    problems = [r for r in ing.logs() if r.get("level") in ("error", "critical")]
    assert not problems, problems
