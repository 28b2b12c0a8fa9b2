"""Hostile input and a hostile store: units that would stall, quarantine kept bounded per
message and per tenant, a store refusing records, extreme values, memory bounded in bytes.

Each test reproduces what a hostile tester found and checks, Jepsen-style, that every reading
the broker acknowledged is stored once and the ingestor keeps running.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from ingest.mqtt.acl import gateway_user
from ingest.quota import QUOTA_EXCEEDED
from ingest.validate import MAX_KEPT_PAYLOAD
from parkflow.model import message_id
from parkflow.store import InfluxStore, ReadingQuery
from parkflow.topics import topic_for
from tests.support.checker import (
    SentMessage,
)
from tests.support.deployed import (
    DET,
    PARK,
    THEP,
    drain,
    gateway,
    ingestor,
    raw_client,
    rss_mib,
    running,
    sqlite_of,
)
from tests.support.faulty_proxy import FaultyProxy, refuse_every_write, refuse_writes_containing
from tests.support.influx import InfluxServer
from tests.support.ingestor_proc import IngestorProcess, wait_subscribed
from tests.support.mosquitto import MosquittoServer, wait_until

# --- 3. a unit string cannot stall the ingestor -------------------------------------------------


def test_pathological_units_are_refused_without_stalling(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess]
) -> None:
    ing = running(ingestor(ingestors, deployed))
    topic = topic_for(PARK, THEP, "thep-water")
    now = time.time_ns() // 1_000_000
    bad = [
        json.dumps({"ts": now - 60_000, "value": 1.0, "unit": "10**10**7*m"}).encode(),
        json.dumps({"ts": now - 50_000, "value": 1.0, "unit": "L" * 40_000}).encode(),
        json.dumps({"ts": now - 40_000, "value": 1.0, "unit": "m3\\"}).encode(),
    ]
    with gateway(deployed, THEP) as pub:
        for payload in bad:
            pub.send(SentMessage(topic, ()), payload=payload)
        pub.publish(3)  # good readings right behind them
        store = sqlite_of(ing)
        try:
            drain(store, pub, timeout=15)
            ids = {message_id(topic, p) for p in bad}
            wait_until(lambda: {q.message_id for q in store.quarantined()} >= ids, timeout=15)
            assert {q.reason for q in store.quarantined() if q.message_id in ids} == {"bad_unit"}
        finally:
            store.close()
    assert [r for r in ing.logs() if r.get("msg") == "mqtt disconnected"] == []


# --- 4. quarantine is bounded: once per message, capped, with a quota per tenant ----------------


def _db_size(path: Path) -> int:
    """The SQLite file and its write-ahead log, where a fresh write is until a checkpoint."""
    wal = path.with_name(path.name + "-wal")
    return os.path.getsize(path) + (os.path.getsize(wal) if wal.exists() else 0)


def _bad_batch(n: int, pad: int) -> bytes:
    now = time.time_ns() // 1_000_000
    return json.dumps(
        [{"ts": now - i * 1000, "value": "x" * pad, "seq": i} for i in range(n)]
    ).encode()


def test_a_big_bad_message_is_kept_once_and_capped(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess]
) -> None:
    ing = running(ingestor(ingestors, deployed))
    topic = topic_for(PARK, THEP, "thep-water")
    payload = _bad_batch(1000, 460)  # about 511 KiB, every reading bad
    assert 500_000 < len(payload) <= 512 * 1024
    size_before = _db_size(ing.sqlite_path)
    with gateway(deployed, THEP) as pub:
        pub.send(SentMessage(topic, ()), payload=payload)
        pub.wait_answered(20)
    store = sqlite_of(ing)
    try:
        wait_until(lambda: store.quarantine_counts().get("bad_value") == 1000, timeout=30)
        records = [q for q in store.quarantined(limit=5000) if q.reason == "bad_value"]
        assert sorted(q.slot for q in records) == list(range(1000))
        (message,) = store.quarantined_messages(records).values()
        assert message.size == len(payload) and len(message.payload) == MAX_KEPT_PAYLOAD
    finally:
        store.close()
    grown = _db_size(ing.sqlite_path) - size_before
    print(f"\n511 KiB message of 1000 bad readings: the store grew {grown / 1e6:.2f} MB")
    assert grown < 3_000_000  # was 523 MB: the payload once per reading


def test_a_flood_from_one_tenant_is_counted_beyond_its_quota_and_others_flow(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess]
) -> None:
    ing = running(
        ingestor(
            ingestors,
            deployed,
            env={
                # three messages of 1000 bad readings (1001 records each), next to nothing refilled
                "PARKFLOW_QUARANTINE_BURST_RECORDS": "3003",
                "PARKFLOW_QUARANTINE_RECORDS_PER_S": "0.001",
            },
        )
    )
    topic = topic_for(PARK, THEP, "thep-water")
    floods = 30
    with gateway(deployed, THEP) as attacker, gateway(deployed, DET) as neighbour:
        for _ in range(floods):
            attacker.send(SentMessage(topic, ()), payload=_bad_batch(1000, 300))
            neighbour.publish(5)
        attacker.wait_answered(60)
        store = sqlite_of(ing)
        try:
            drain(store, neighbour, timeout=60)
            total = floods * 1000

            def accounted() -> int:
                counts = store.quarantine_counts()
                summaries = [q for q in store.quarantined(reason=QUOTA_EXCEEDED, limit=10_000)]
                suppressed = sum(int(q.detail.split(" ", 1)[0]) for q in summaries)
                return counts.get("bad_value", 0) + suppressed

            wait_until(lambda: accounted() == total, timeout=60)
            kept = store.quarantine_counts()["bad_value"]
        finally:
            store.close()
    print(f"\nflood of {total} bad readings: {kept} kept, {total - kept} counted in summaries")
    assert kept == 3000
    assert (
        ing.metric('parkflow_ingest_quarantine_suppressed_total{reason="bad_value"}')
        == total - kept
    )


# --- 5. a store refusing quarantine records never kills the ingestor ----------------------------


def test_influx_answering_413_to_a_quarantine_record_keeps_it_without_its_payload(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess]
) -> None:
    with InfluxServer(max_body_size=12_000) as influx:
        ing = ingestor(ingestors, deployed, influx_url=influx.url, influx_database="parkflow")
        ing.start()
        wait_subscribed([ing])
        store = InfluxStore(influx.url, "parkflow")
        topic = topic_for(PARK, THEP, "thep-water")
        big = b"\xff" * 14_000  # base64 in the record: over the server's body limit
        try:
            with gateway(deployed, THEP) as pub:
                pub.send(SentMessage(topic, ()), payload=big)
                pub.publish(3)
                drain(store, pub, timeout=30)
                mid = message_id(topic, big)
                wait_until(
                    lambda: any(q.message_id == mid for q in store.quarantined()), timeout=30
                )
                (q,) = [q for q in store.quarantined() if q.message_id == mid]
                assert q.reason == "not_utf8"
                message = store.quarantined_messages([q])[mid]
                assert message.size == len(big) and message.payload == b""
            assert ing.alive, ing.log_tail()
        finally:
            store.close()


def test_a_store_refusing_quarantine_messages_outright_logs_them_and_goes_on(
    deployed: MosquittoServer,
    ingestors: Callable[..., IngestorProcess],
    influx_server: InfluxServer,
) -> None:
    db = f"t_{uuid.uuid4().hex[:12]}"
    store = InfluxStore(influx_server.url, db, create_database=True)
    store.ping()
    with FaultyProxy(influx_server.url, refuse_writes_containing(b"quarantine_message ")) as proxy:
        ing = ingestor(ingestors, deployed, influx_url=proxy.url, influx_database=db)
        ing.start()
        wait_subscribed([ing])
        topic = topic_for(PARK, THEP, "thep-water")
        try:
            with gateway(deployed, THEP) as pub:
                pub.send(SentMessage(topic, ()), payload=b"")  # empty: bad_shape
                pub.publish(5)
                drain(store, pub, timeout=30)
                wait_until(
                    lambda: ing.metric("parkflow_ingest_quarantine_unstored_total") >= 1, timeout=30
                )
                assert any(q.message_id == message_id(topic, b"") for q in store.quarantined())
                pub.publish(5)
                drain(store, pub, timeout=30)
            assert ing.alive, ing.log_tail()
            logged = [r for r in ing.logs() if "only in this log line" in str(r.get("msg"))]
            assert logged and logged[0]["level"] == "error"
        finally:
            store.close()
            influx_server.query(f'DROP DATABASE "{db}"')


def test_a_store_refusing_everything_is_a_store_failure_not_bad_data(
    deployed: MosquittoServer,
    ingestors: Callable[..., IngestorProcess],
    influx_server: InfluxServer,
) -> None:
    """400 to every write, known-good points too: nothing is blamed on the data, nothing is
    acked, nothing is dropped; once the store heals, everything is stored."""
    db = f"t_{uuid.uuid4().hex[:12]}"
    store = InfluxStore(influx_server.url, db, create_database=True)
    store.ping()
    with FaultyProxy(influx_server.url) as proxy:
        ing = ingestor(ingestors, deployed, influx_url=proxy.url, influx_database=db)
        ing.start()
        wait_subscribed([ing])
        try:
            proxy.rule = refuse_every_write()
            with gateway(deployed, THEP) as pub:
                pub.publish(30)
                pub.wait_answered(20)
                ing.wait_readyz(503, timeout=20)
                assert ing.metric("parkflow_ingest_messages_acked_total") == 0
                proxy.rule = None
                drain(store, pub, timeout=60)
            assert ing.alive
            assert "store_rejected" not in store.quarantine_counts()
            assert ing.metric("parkflow_ingest_quarantine_unstored_total") == 0
        finally:
            store.close()
            influx_server.query(f'DROP DATABASE "{db}"')


# --- 6. extreme values cannot make an infinite step ----------------------------------------------


def test_extreme_register_values_are_quarantined(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess]
) -> None:
    ing = running(ingestor(ingestors, deployed))
    topic = topic_for(PARK, THEP, "thep-water")
    now = time.time_ns() // 1_000_000
    payload = json.dumps(
        [{"ts": now - 2000, "value": -1.7e308}, {"ts": now - 1000, "value": 1.7e308}]
    ).encode()
    with gateway(deployed, THEP) as pub:
        pub.send(SentMessage(topic, ()), payload=payload)
        pub.wait_answered(20)
    store = sqlite_of(ing)
    try:
        mid = message_id(topic, payload)
        wait_until(
            lambda: len([q for q in store.quarantined() if q.message_id == mid]) == 2, timeout=20
        )
        assert {q.reason for q in store.quarantined() if q.message_id == mid} == {"out_of_range"}
        assert store.readings(ReadingQuery(meter="thep-water")) == []
    finally:
        store.close()


# --- 9. memory is bounded in bytes; the broker refuses oversized packets ------------------------


def test_big_messages_while_the_store_is_frozen_keep_memory_bounded_in_bytes(
    deployed: MosquittoServer,
    ingestors: Callable[..., IngestorProcess],
    own_influx_server: InfluxServer,
) -> None:
    bound = 3 * 1024 * 1024
    db = "parkflow"
    ing = running(
        ingestor(
            ingestors,
            deployed,
            influx_url=own_influx_server.url,
            influx_database=db,
            env={"PARKFLOW_MAX_PENDING_BYTES": str(bound)},
        )
    )
    topic = topic_for(PARK, THEP, "thep-water")
    base_rss = rss_mib(ing.pid or 0)
    peak_bytes = 0.0
    with gateway(deployed, THEP) as pub:
        own_influx_server.pause()
        try:
            for i in range(20):
                pub.send(
                    SentMessage(topic, ()),
                    payload=b'{"pad": "' + b"x" * 900_000 + b'", "i": %d}' % i,
                )
            pub.wait_answered(60)
            assert pub.reason_counts() == {0: 20}
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                peak_bytes = max(peak_bytes, ing.metric("parkflow_ingest_pending_bytes"))
                time.sleep(0.1)
            peak_rss = rss_mib(ing.pid or 0)
        finally:
            own_influx_server.resume()
        store = InfluxStore(own_influx_server.url, db)
        try:
            wait_until(lambda: store.quarantine_counts().get("payload_too_large") == 20, timeout=60)
        finally:
            store.close()
    print(
        f"\n20 x 900 KB with the store frozen: pending peak {peak_bytes / 2**20:.1f} MiB, RSS {base_rss:.0f} -> {peak_rss:.0f} MiB"
    )
    assert 0 < peak_bytes <= bound + 1_000_000
    assert peak_rss - base_rss < 80


def test_the_broker_refuses_a_packet_over_its_limit(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess]
) -> None:
    ing = running(ingestor(ingestors, deployed))
    c = raw_client(deployed, gateway_user(PARK, THEP), "gw")
    info = c.publish(topic_for(PARK, THEP, "thep-water"), b"x" * 2_000_000, qos=1)
    time.sleep(2)
    c.disconnect()
    c.loop_stop()
    assert not info.is_published()
    assert ing.metric("parkflow_ingest_messages_received_total") == 0
