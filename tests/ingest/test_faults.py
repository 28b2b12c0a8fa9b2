"""Fault injection on the real thing: Mosquitto, InfluxDB (or SQLite) and ``parkflow ingest``
processes, checked Jepsen-style. One file for the one harness all these scenarios share.

Every test publishes sequence-numbered readings with QoS 1, records which ones the broker
acknowledged (PUBACK below 0x80), breaks something (kills the ingestor before or after a write,
stops or freezes InfluxDB, restarts the broker, kills one of two shared-subscription members,
starves the store), lets the system drain, and then asserts with ``tests.support.checker.check``
that no acknowledged reading is lost, none is stored twice and nothing unexpected is stored.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ingest.mqtt.partition import assignment
from parkflow.model import Direction, Reading, WriteBatch
from parkflow.registry import SAMPLE_REGISTRY, load_registry
from parkflow.store import InfluxStore, MemoryStore, ReadingQuery, SqliteStore, Store
from tests.support.checker import (
    NO_MATCHING_SUBSCRIBERS,
    REFUSED,
    Publisher,
    Result,
    SentMessage,
    SentReading,
    acknowledged_in,
    check,
    load_log,
    sent_in,
)
from tests.support.influx import InfluxServer
from tests.support.ingestor_proc import (
    IngestorPool,
    IngestorProcess,
    wait_receiving,
    wait_subscribed,
)
from tests.support.mosquitto import MosquittoServer, wait_until

PARK = ReadingQuery(park="songlam")
REGISTRY = load_registry(SAMPLE_REGISTRY)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ingestors(tmp_path: Path) -> Iterator[Callable[..., IngestorProcess]]:
    with IngestorPool(tmp_path) as pool:
        yield pool.make


class InfluxDb:
    """A fresh database on some influxd, and a store on it for the checker to read back."""

    def __init__(self, server: InfluxServer) -> None:
        self.server = server
        self.url = server.url
        self.name = f"t_{uuid.uuid4().hex[:12]}"
        self.store = InfluxStore(server.url, self.name, create_database=True, timeout=10.0)

    def close(self) -> None:
        self.store.close()
        with contextlib.suppress(httpx.HTTPError):  # the test may have left it down
            self.server.query(f'DROP DATABASE "{self.name}"')


@pytest.fixture
def influx_db(influx_server: InfluxServer) -> Iterator[InfluxDb]:
    db = InfluxDb(influx_server)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def own_influx_db(own_influx_server: InfluxServer) -> Iterator[InfluxDb]:
    """A database on a private influxd that the test may stop, kill or freeze."""
    db = InfluxDb(own_influx_server)
    try:
        yield db
    finally:
        db.close()


def stored_count(store: Store) -> int:
    try:
        return len(store.readings(PARK))
    except Exception:  # the store may be down while we look
        return -1


def drain(
    store: Store, pub: Publisher | list[SentMessage], timeout: float = 60.0
) -> tuple[Result, float]:
    """Wait until every acknowledged reading is in the store; returns the check and the seconds
    it took. On timeout the (failing) check is returned for the assertion to show."""
    if isinstance(pub, Publisher):
        pub.wait_answered(30)
        acked, sent = pub.acknowledged(), pub.sent()
    else:
        acked, sent = acknowledged_in(pub), sent_in(pub)
    started = time.monotonic()
    deadline = started + timeout
    while True:
        result = check(store, acked, sent=sent)
        if result.lost == 0 or time.monotonic() > deadline:
            return result, time.monotonic() - started
        time.sleep(0.2)


def assert_exact(result: Result, expected: int) -> None:
    assert result.ok, result.describe()
    assert result.stored == expected, result.describe()


class Background:
    """Run ``publisher.publish(n, rate)`` in a thread so the test can break things meanwhile."""

    def __init__(self, pub: Publisher, readings: int, rate: float) -> None:
        self.pub = pub
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(readings, rate), daemon=True)
        self._thread.start()

    def _run(self, readings: int, rate: float) -> None:
        try:
            self.pub.publish(readings, rate=rate)
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def sent_readings(self) -> int:
        return sum(len(m.readings) for m in list(self.pub.messages))

    def join(self, timeout: float = 60.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "publisher thread did not finish"
        if self.error is not None:
            raise self.error


# --- the checker itself ------------------------------------------------------------------------


def _stored(r: SentReading, **change: object) -> Reading:
    fields: dict[str, object] = {
        "park": r.park,
        "tenant": r.tenant,
        "meter": r.meter,
        "resource": "water.potable",
        "direction": Direction.IN,
        "ts_ms": r.ts_ms,
        "value": r.expected,
        "seq": r.seq,
    }
    fields.update(change)
    return Reading(**fields)  # type: ignore[arg-type]


def test_checker_finds_lost_duplicated_and_unexpected_readings() -> None:
    a, b, c, d = (
        SentReading(seq, "songlam", "thep-an", "thep-water", 1_000 * seq, 2.5 * seq, 2.5 * seq)
        for seq in (1, 2, 3, 4)
    )
    store = MemoryStore()
    store.write(
        WriteBatch(
            (
                _stored(a),  # fine
                _stored(b, value=99.0),  # wrong value: b is lost and this is unexpected
                _stored(c),
                _stored(c, ts_ms=c.ts_ms + 1),  # seq 3 twice, the second copy unexpected
                _stored(a, ts_ms=77_000, seq=77),  # nobody sent this
            )
        )
    )
    result = check(store, [a, b, c, d])
    assert (result.lost, result.duplicated, result.unexpected, result.stored) == (2, 1, 3, 5)
    assert {r.seq for r in result.lost_examples} == {2, 4}
    assert result.duplicated_examples[0][0] == 3
    assert not result.ok
    # sent but never acknowledged: may be stored, need not be
    assert check(store, [a], sent=[d]).lost == 0
    assert check(MemoryStore(), [], sent=[a]).ok


def test_checker_sees_broker_refusals_and_messages_that_went_nowhere() -> None:
    """A PUBACK >= 0x80 is not an acknowledgement; 0x10 (no subscriber) is, and Mosquitto drops
    the message: the checker must report it lost."""
    acl = "user gw\ntopic write ip/songlam/thep-an/#\n"
    broker = MosquittoServer(passwords={"gw": "pw"}, acl=acl).start()
    try:
        pub = Publisher(broker.port, username="gw", password="pw").connect()
        try:
            pub.publish(10)  # round-robin: some meters are thep-an's, some are not
            pub.wait_answered(30)
        finally:
            pub.close()
    finally:
        broker.close()
    mine = [m for m in pub.messages if "/thep-an/" in m.topic]
    theirs = [m for m in pub.messages if "/thep-an/" not in m.topic]
    assert mine and theirs
    assert {m.reason for m in mine} == {NO_MATCHING_SUBSCRIBERS}
    assert all(m.reason is not None and m.reason >= REFUSED for m in theirs)
    assert len(pub.refused()) == len(theirs)
    acked = pub.acknowledged()
    assert {r.tenant for r in acked} == {"thep-an"}
    result = check(MemoryStore(), acked, sent=pub.sent())
    assert result.lost == len(acked) and result.unexpected == 0


# --- ingestor crashes --------------------------------------------------------------------------


def test_killed_before_write_then_restarted(
    mosquitto: MosquittoServer, influx_db: InfluxDb, ingestors: Callable[..., IngestorProcess]
) -> None:
    ing = ingestors(
        mqtt_port=mosquitto.port,
        influx_url=influx_db.url,
        influx_database=influx_db.name,
        failpoints="before_write=3",
    )
    ing.start()
    wait_receiving([ing], mosquitto.port)
    with Publisher(mosquitto.port, batch=10) as pub:
        # paced, so that writes come one by one (a backlog is written as one merged batch)
        pub.publish(3000, rate=3000)
        assert ing.wait_exit(30) == -signal.SIGKILL
        at_crash = stored_count(influx_db.store)
        pub.publish(1000)  # queued by the broker in the dead ingestor's session
        pub.wait_answered(30)
        assert pub.reason_counts() == {0: 400}
        ing.start(failpoints="")
        assert ing.wait_log("mqtt connected")["session_present"] is True
        result, took = drain(influx_db.store, pub)
    print(f"\nbefore_write crash: {at_crash} readings stored at the crash, drained in {took:.2f}s")
    assert 0 < at_crash < 4000
    assert_exact(result, 4000)


def _redelivered_after_write_crash(
    ing: IngestorProcess, store: Store, port: int, expected_readings: int = 3000
) -> None:
    """Crash after a write, before its ack, restart: the unacked, already stored messages come
    again and must be stored once."""
    ing.start()
    wait_receiving([ing], port)
    with Publisher(port) as pub:  # one reading per message: messages == readings
        pub.publish(expected_readings // 2)
        assert ing.wait_exit(30) == -signal.SIGKILL
        at_crash = stored_count(store)
        pub.publish(expected_readings - expected_readings // 2)
        pub.wait_answered(30)
        assert set(pub.reason_counts()) == {0}
        ing.start(failpoints="")
        assert ing.wait_log("mqtt connected")["session_present"] is True
        result, took = drain(store, pub)
    received = ing.metric("parkflow_ingest_messages_received_total")
    print(
        f"\nafter_write crash: {at_crash} stored at the crash, {received:.0f} received after"
        f" the restart, drained in {took:.2f}s"
    )
    assert_exact(result, expected_readings)
    # Without redelivery the restarted ingestor would get only what was never stored.
    assert received > expected_readings - at_crash, "the written-but-unacked batch came back"


def test_killed_after_write_before_ack_then_restarted(
    mosquitto: MosquittoServer, influx_db: InfluxDb, ingestors: Callable[..., IngestorProcess]
) -> None:
    ing = ingestors(
        mqtt_port=mosquitto.port,
        influx_url=influx_db.url,
        influx_database=influx_db.name,
        failpoints="after_write=3",
    )
    _redelivered_after_write_crash(ing, influx_db.store, mosquitto.port)


def test_sqlite_killed_after_write_before_ack_then_restarted(
    mosquitto: MosquittoServer, tmp_path: Path, ingestors: Callable[..., IngestorProcess]
) -> None:
    db = tmp_path / "parkflow.sqlite"
    store = SqliteStore(db)  # the ingestor opens the same file (WAL: readers do not block it)
    ing = ingestors(mqtt_port=mosquitto.port, sqlite_path=db, failpoints="after_write=3")
    try:
        _redelivered_after_write_crash(ing, store, mosquitto.port)
    finally:
        store.close()


# --- the store fails ---------------------------------------------------------------------------


def test_influx_stopped_mid_stream_then_started(
    mosquitto: MosquittoServer,
    own_influx_db: InfluxDb,
    ingestors: Callable[..., IngestorProcess],
) -> None:
    influx, store = own_influx_db.server, own_influx_db.store
    ing = ingestors(
        mqtt_port=mosquitto.port, influx_url=own_influx_db.url, influx_database=own_influx_db.name
    )
    ing.start()
    wait_receiving([ing], mosquitto.port)
    with Publisher(mosquitto.port, batch=2) as pub:
        bg = Background(pub, 3000, rate=600)
        wait_until(lambda: stored_count(store) >= 500, timeout=30)
        influx.stop()
        down_at = time.monotonic()
        ing.wait_readyz(503, timeout=20)
        assert ing.readyz()[1]["store_ok"] is False
        wait_until(lambda: bg.sent_readings() >= 2000, timeout=30)
        assert ing.alive
        influx.start()
        outage = time.monotonic() - down_at
        ing.wait_readyz(200, timeout=30)
        bg.join()
        result, took = drain(store, pub)
    print(f"\ninflux stopped for {outage:.1f}s; drained {took:.2f}s after the publisher finished")
    assert ing.alive, ing.log_tail()
    assert ing.metric('parkflow_ingest_write_errors_total{kind="retryable"}') > 0
    assert_exact(result, 3000)


def test_readiness_follows_the_store_while_idle(
    mosquitto: MosquittoServer,
    own_influx_db: InfluxDb,
    ingestors: Callable[..., IngestorProcess],
) -> None:
    """No data flowing: /readyz must still say when the store goes away and comes back."""
    influx = own_influx_db.server
    ing = ingestors(
        mqtt_port=mosquitto.port, influx_url=own_influx_db.url, influx_database=own_influx_db.name
    )
    ing.start()
    ing.wait_readyz(200, timeout=30)
    influx.stop()
    ing.wait_readyz(503, timeout=20)
    assert ing.readyz()[1] == {"ready": False, "mqtt_connected": True, "store_ok": False}
    influx.start()
    ing.wait_readyz(200, timeout=20)
    assert ing.alive


def test_influx_frozen_longer_than_the_timeout(
    mosquitto: MosquittoServer,
    own_influx_db: InfluxDb,
    ingestors: Callable[..., IngestorProcess],
) -> None:
    influx, store = own_influx_db.server, own_influx_db.store
    ing = ingestors(
        mqtt_port=mosquitto.port, influx_url=own_influx_db.url, influx_database=own_influx_db.name
    )
    timeout_s = float(ing.env["PARKFLOW_INFLUX_TIMEOUT_S"])
    ing.start()
    wait_receiving([ing], mosquitto.port)
    with Publisher(mosquitto.port) as pub:
        bg = Background(pub, 3000, rate=600)
        wait_until(lambda: stored_count(store) >= 500, timeout=30)
        influx.pause()
        try:
            frozen_at = time.monotonic()
            ing.wait_readyz(503, timeout=20)  # a write timed out
            wait_until(lambda: time.monotonic() - frozen_at > 1.5 * timeout_s, timeout=30)
            assert ing.alive
        finally:
            influx.resume()
        frozen = time.monotonic() - frozen_at
        ing.wait_readyz(200, timeout=30)
        bg.join()
        result, took = drain(store, pub)
    print(f"\ninflux frozen for {frozen:.1f}s; drained {took:.2f}s after the publisher finished")
    assert ing.alive, ing.log_tail()
    assert any("timed out" in str(r.get("error", "")) for r in ing.logs()), ing.log_tail()
    assert_exact(result, 3000)


def test_slow_store_keeps_memory_bounded(
    mosquitto: MosquittoServer,
    own_influx_db: InfluxDb,
    ingestors: Callable[..., IngestorProcess],
) -> None:
    """With the store frozen, the ingestor holds at most max_pending_messages unacked messages
    (the broker keeps the rest), and everything arrives once the store is back."""
    bound = 200
    influx, store = own_influx_db.server, own_influx_db.store
    ing = ingestors(
        mqtt_port=mosquitto.port,
        influx_url=own_influx_db.url,
        influx_database=own_influx_db.name,
        env={"PARKFLOW_MAX_PENDING_MESSAGES": str(bound), "PARKFLOW_BATCH_SIZE": "1000"},
    )
    ing.start()
    wait_receiving([ing], mosquitto.port)
    wait_until(lambda: ing.metric("parkflow_ingest_messages_acked_total") >= 1)

    peak_gauge = 0.0
    peak_unacked = 0.0

    def sample() -> float:
        nonlocal peak_gauge, peak_unacked
        m = ing.metrics()
        gauge = m["parkflow_ingest_pending_messages"]
        unacked = (
            m["parkflow_ingest_messages_received_total"] - m["parkflow_ingest_messages_acked_total"]
        )
        peak_gauge = max(peak_gauge, gauge)
        peak_unacked = max(peak_unacked, unacked)
        return unacked

    with Publisher(mosquitto.port) as pub:
        influx.pause()
        try:
            pub.publish(3000)
            pub.wait_answered(30)  # the broker has all of them
            ing.wait_readyz(503, timeout=20)
            # Sample until the ingestor has stopped taking messages and stayed stopped.
            stalled_at = time.monotonic()
            last = sample()
            while time.monotonic() - stalled_at < 2.0:
                time.sleep(0.05)
                now = sample()
                if now != last:
                    stalled_at, last = time.monotonic(), now
        finally:
            influx.resume()
        held = peak_unacked

        def caught_up() -> bool:
            sample()
            assert ing.alive, ing.log_tail()
            return stored_count(store) >= 3000

        wait_until(caught_up, timeout=60)
        result, took = drain(store, pub)
        sample()
    print(
        f"\nstore frozen: ingestor held at most {held:.0f} unacked messages"
        f" (gauge peak {peak_gauge:.0f}, bound {bound}); drained in {took:.2f}s"
    )
    assert held >= bound / 2, "the test did not fill the ingestor up"
    assert peak_gauge <= bound
    # received counts a message as it enters the callback, before it waits for room: one more
    assert peak_unacked <= bound + 1
    assert_exact(result, 3000)


# --- the broker restarts ----------------------------------------------------------------------


def test_broker_restarted_while_ingestor_offline(
    mosquitto: MosquittoServer,
    influx_db: InfluxDb,
    ingestors: Callable[..., IngestorProcess],
    tmp_path: Path,
) -> None:
    ing = ingestors(
        mqtt_port=mosquitto.port, influx_url=influx_db.url, influx_database=influx_db.name
    )
    ing.start()
    wait_receiving([ing], mosquitto.port)
    assert ing.stop() == 0  # offline; its session and subscription stay on the broker
    # This time the publisher is a process of its own, as a benchmark would run it.
    log = tmp_path / "sent.json"
    cmd = [sys.executable, "-m", "tests.support.checker", "--port", str(mosquitto.port)]
    cmd += ["--count", "2000", "--batch", "4", "--out", str(log)]
    subprocess.run(cmd, cwd=REPO, check=True, timeout=120)
    messages = load_log(log)
    assert len(messages) == 500
    # 0, not 0x10 (no matching subscribers): the offline session is a subscriber
    assert {m.reason for m in messages} == {0}
    mosquitto.stop()  # clean: Mosquitto writes its persistence file
    mosquitto.start()
    ing.start()
    assert ing.wait_log("mqtt connected")["session_present"] is True
    result, took = drain(influx_db.store, messages)
    print(f"\nbroker restart: {took:.2f}s to store the queued readings")
    assert_exact(result, 2000)


# --- two ingestors sharing the tenants ---------------------------------------------------------


def test_one_of_two_ingestors_killed_and_restarted(
    mosquitto: MosquittoServer, influx_db: InfluxDb, ingestors: Callable[..., IngestorProcess]
) -> None:
    """Two ingestors split the tenants (``PARKFLOW_PARTITION`` 1/2 and 2/2); one is SIGKILLed
    mid-stream. The broker queues the readings of its tenants in its session until it returns:
    nothing is lost, those readings wait for the restart while the other member goes on. The
    delays are printed so they can be documented."""
    store = influx_db.store
    common = {
        "mqtt_port": mosquitto.port,
        "influx_url": influx_db.url,
        "influx_database": influx_db.name,
    }
    a = ingestors(client_id="parkflow-test-a", name="a", partition="1/2", **common)
    b = ingestors(client_id="parkflow-test-b", name="b", partition="2/2", **common)
    a.start()
    b.start()
    wait_subscribed([a, b])
    with Publisher(mosquitto.port) as pub:
        bg = Background(pub, 4000, rate=800)
        wait_until(lambda: stored_count(store) >= 1000, timeout=30)
        b.kill()
        killed_at, killed_wall = time.monotonic(), time.time()
        bg.join()
        pub.wait_answered(30)
        total = len(pub.acknowledged())
        # Let the survivor take everything it can, until the stored count stops moving.
        last, still_since = stored_count(store), time.monotonic()
        while time.monotonic() - still_since < 1.5 and last < total:
            time.sleep(0.1)
            now = stored_count(store)
            if now != last:
                last, still_since = now, time.monotonic()
        waiting = check(store, pub.acknowledged(), examples=total).lost_examples
        sent_at = {r.seq: m.sent_at for m in pub.messages for r in m.readings}
        before_kill = sum(1 for r in waiting if sent_at[r.seq] < killed_wall)
        b.start()
        restarted_at = time.monotonic()
        assert b.wait_log("mqtt connected")["session_present"] is True
        result, _ = drain(store, pub)
        done_at = time.monotonic()
    print(
        "\ntwo ingestors splitting the tenants, one SIGKILLed mid-stream:"
        f"\n  readings held for the dead member until it returned: {len(waiting)} of {total}"
        f" ({before_kill} sent before the kill, {len(waiting) - before_kill} after it)"
        f"\n  kill -> restart: {restarted_at - killed_at:.2f}s"
        f"\n  restart -> all stored: {done_at - restarted_at:.2f}s"
        f"\n  kill -> all stored: {done_at - killed_at:.2f}s"
    )
    assert waiting, "the killed member's tenants waited for it"
    assert {r.tenant for r in waiting} <= {t for _, t in assignment(REGISTRY, 2)[2]}
    assert a.alive and b.alive
    assert_exact(result, 4000)
