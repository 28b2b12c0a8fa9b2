"""Hostile gateways and broker restarts, on the shipped Mosquitto configuration: client ids bound
to users, subscriptions that survive a restart and a change of layout, retained messages, the
last word for a reading.

Each test reproduces what a hostile tester found and checks, Jepsen-style, that every reading
the broker acknowledged is stored once and the ingestor keeps running.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.housekeeping import SESSION_LOST, confirmed_key
from ingest.mqtt.acl import gateway_user
from ingest.mqtt.partition import layout_id, layout_key
from ingest.mqtt.source import CONNECTION_FLAPPING
from parkflow.store import InfluxStore, ReadingQuery, SqliteStore
from parkflow.topics import topic_for
from tests.support.checker import (
    NO_MATCHING_SUBSCRIBERS,
    Publisher,
)
from tests.support.deployed import (
    MEKONG,
    PARK,
    REG,
    THEP,
    drain,
    gateway,
    ingestor,
    raw_client,
    running,
    sqlite_of,
)
from tests.support.influx import InfluxServer
from tests.support.ingestor_proc import IngestorProcess, wait_subscribed
from tests.support.mosquitto import SITE_KEYS, MosquittoServer, wait_until

# --- the shipped broker configuration -----------------------------------------------------------


def test_tests_run_the_shipped_broker_files_changing_only_ports_and_paths(
    deployed: MosquittoServer,
) -> None:
    assert deployed.replaced, "nothing was substituted: the test broker would not start"
    assert {old.split(" ", 1)[0] for old, _ in deployed.replaced} <= SITE_KEYS
    shipped = (Path(__file__).parents[2] / "deploy/mosquitto/parkflow.conf").read_text()
    lines = [ln.split(" ", 1) for ln in shipped.splitlines() if ln and not ln.startswith("#")]
    # every listener binds client ids to user names, until the next listener
    for i, (key, _) in enumerate(lines):
        if key == "listener":
            block = [k for k, _ in lines[i + 1 :]]
            block = block[: block.index("listener")] if "listener" in block else block
            assert ["use_username_as_clientid", "true"] in [
                lines[i + 1 + j] for j in range(len(block))
            ]
    settings = dict((k, v) for k, v in lines)
    assert settings["max_packet_size"] == "1048576"
    assert settings["allow_anonymous"] == "false"


# --- 1. client ids are bound to users -----------------------------------------------------------


def test_a_gateway_using_the_ingestors_client_id_cannot_wipe_its_session(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess]
) -> None:
    ing = running(ingestor(ingestors, deployed))
    assert ing.stop() == 0  # away; its session keeps queueing
    with gateway(deployed, THEP) as pub:
        pub.publish(20)
        pub.wait_answered(20)
        assert pub.reason_counts() == {0: 20}
    # The attack: the tenant's gateway connects with the ingestor's client id, clean start.
    attacker = raw_client(deployed, gateway_user(PARK, THEP), "parkflow-ingest-1")
    attacker.disconnect()
    attacker.loop_stop()
    ing.start()
    assert ing.wait_log("mqtt connected")["session_present"] is True
    store = sqlite_of(ing)
    try:
        drain(store, pub)
    finally:
        store.close()
    assert ing.metric("parkflow_ingest_sessions_lost_total") == 0


def test_gateways_connecting_with_the_ingestors_id_while_it_runs_take_nothing(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess]
) -> None:
    ing = running(ingestor(ingestors, deployed))
    with gateway(deployed, THEP) as pub:
        stop = threading.Event()

        def publish() -> None:
            while not stop.is_set():
                pub.publish(2)
                time.sleep(0.02)

        t = threading.Thread(target=publish)
        t.start()
        for _ in range(8):  # eight takeover attempts in a few seconds
            c = raw_client(deployed, gateway_user(PARK, THEP), "parkflow-ingest-1")
            time.sleep(0.3)
            c.disconnect()
            c.loop_stop()
        stop.set()
        t.join()
        store = sqlite_of(ing)
        try:
            drain(store, pub)
        finally:
            store.close()
    assert len(pub.acknowledged()) > 100
    assert ing.metric("parkflow_ingest_session_takeovers_total") == 0
    assert not [r for r in ing.logs() if r.get("msg") == "mqtt disconnected"]


def test_without_client_id_binding_a_lost_session_is_said_loudly_and_counted(
    tmp_path: Path, ingestors: Callable[..., IngestorProcess]
) -> None:
    """On a broker that does not bind client ids (not the shipped one), the same attack wipes
    the session: the ingestor cannot prevent it, but it must not go unnoticed."""
    broker = MosquittoServer().start()
    try:
        ing = ingestors(mqtt_port=broker.port, client_id="parkflow-ingest-1")
        ing.start()
        wait_subscribed([ing])
        assert ing.stop() == 0
        c = raw_client(broker, "anyone", "parkflow-ingest-1")  # clean start: session erased
        c.disconnect()
        c.loop_stop()
        ing.start()
        assert ing.wait_log("mqtt connected")["session_present"] is False
        record = ing.wait_log(SESSION_LOST)
        assert record["level"] == "error"
        wait_until(lambda: ing.metric("parkflow_ingest_sessions_lost_total") == 1, timeout=10)
        # A twin connecting while it runs: Mosquitto 2.0 closes the ingestor's connection
        # without a reason, the two keep taking the id from each other; that is said and counted.
        c = raw_client(broker, "anyone", "parkflow-ingest-1", clean_start=False)
        wait_until(lambda: ing.metric("parkflow_ingest_session_takeovers_total") >= 1, timeout=20)
        assert ing.wait_log(CONNECTION_FLAPPING)["level"] == "error"
        assert ing.metric("parkflow_ingest_disconnects_total") >= 3
        c.disconnect()
        c.loop_stop()
    finally:
        broker.close()


# --- 2. a clean broker restart loses nothing ----------------------------------------------------


def test_mosquitto_forgets_shared_subscriptions_on_a_clean_restart(tmp_path: Path) -> None:
    """Why parkflow uses plain subscriptions: the broker restores a persistent session's plain
    subscription after a clean restart, but not its shared one, and a gateway's publish then
    reaches nobody (PUBACK 0x10). If this starts failing, Mosquitto fixed it."""
    broker = MosquittoServer().start()
    try:
        for name, topic in (
            ("plain", "ip/+/+/+/readings"),
            ("shared", "$share/g/ip/+/+/+/readings"),
        ):
            sub = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=f"sub-{name}", protocol=mqtt.MQTTv5
            )
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 3600
            sub.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
            sub.loop_start()
            sub.subscribe(topic, qos=1)[1]
            time.sleep(0.3)
            sub.disconnect()
            sub.loop_stop()
            broker.restart()
            with Publisher(broker.port, batch=1) as pub:
                pub.publish(10)
                pub.wait_answered(20)
            codes = set(pub.reason_counts())
            if name == "plain":
                assert codes == {0}
            else:
                assert codes == {NO_MATCHING_SUBSCRIBERS}
            drop = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=f"sub-{name}", protocol=mqtt.MQTTv5
            )
            drop.connect("127.0.0.1", broker.port, clean_start=True)
            drop.disconnect()
    finally:
        broker.close()


def test_clean_broker_restarts_under_load_lose_nothing_with_two_ingestors(
    deployed: MosquittoServer,
    ingestors: Callable[..., IngestorProcess],
    influx_server: InfluxServer,
) -> None:
    db = f"t_{uuid.uuid4().hex[:12]}"
    store = InfluxStore(influx_server.url, db, create_database=True)
    try:
        members = [
            ingestor(ingestors, deployed, k, 2, influx_url=influx_server.url, influx_database=db)
            for k in (1, 2)
        ]
        for ing in members:
            ing.start()
        wait_subscribed(members)
        thep, mekong = gateway(deployed, THEP), gateway(deployed, MEKONG)
        with thep, mekong:
            threads = [
                threading.Thread(target=p.publish, args=(900,), kwargs={"rate": 150})
                for p in (thep, mekong)
            ]
            for t in threads:
                t.start()
            for _ in range(4):
                time.sleep(1.0)
                deployed.stop()  # clean: Mosquitto writes its persistence file
                deployed.start()
            for t in threads:
                t.join(120)
            drain(store, thep, mekong, timeout=90)
        for pub in (thep, mekong):
            assert NO_MATCHING_SUBSCRIBERS not in pub.reason_counts()
            assert len(pub.acknowledged()) >= 800
        assert all(ing.alive for ing in members)
        # four restarts in four seconds are restarts, not a twin taking the session
        assert all(ing.metric("parkflow_ingest_session_takeovers_total") == 0 for ing in members)
    finally:
        store.close()
        influx_server.query(f'DROP DATABASE "{db}"')


def _publishing(
    pubs: tuple[Publisher, ...], rate: float
) -> tuple[threading.Event, list[threading.Thread]]:
    """Gateways publishing in the background until the event is set."""
    stop = threading.Event()

    def run(pub: Publisher) -> None:
        while not stop.is_set():
            pub.publish(1)
            time.sleep(1 / rate)

    threads = [threading.Thread(target=run, args=(p,), daemon=True) for p in pubs]
    for t in threads:
        t.start()
    return stop, threads


def test_changing_from_one_ingestor_to_two_under_load_leaves_no_gap_and_no_catch_all(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess], tmp_path: Path
) -> None:
    db = tmp_path / "shared.sqlite"
    one = ingestor(ingestors, deployed, 1, 1, sqlite_path=db)
    one.start()
    wait_subscribed([one])
    with gateway(deployed, THEP) as thep, gateway(deployed, MEKONG) as mekong:
        stop, threads = _publishing((thep, mekong), rate=50)
        try:
            two = ingestor(ingestors, deployed, 2, 2, sqlite_path=db)
            two.start()
            wait_subscribed([two])
            assert one.stop() == 0
            one.env["PARKFLOW_PARTITION"] = "1/2"
            one.start()
            one.wait_log("subscription layout settled")
            two.wait_log("subscription layout settled")
        finally:
            stop.set()
            for t in threads:
                t.join()
        thep.wait_answered(20)
        mekong.wait_answered(20)
        received = {p.name: p.metric("parkflow_ingest_messages_received_total") for p in (one, two)}
        thep.publish(60)
        mekong.publish(60)
        store = SqliteStore(db)
        try:
            drain(store, thep, mekong)
        finally:
            store.close()
        got = {
            p.name: p.metric("parkflow_ingest_messages_received_total") - received[p.name]
            for p in (one, two)
        }
    for pub in (thep, mekong):  # nothing went unheard while the layout changed
        assert set(pub.reason_counts()) == {0}
        assert len(pub.acknowledged()) > 100
    # after the layout settled, each member received only its own tenant's messages
    assert got == {one.name: 60, two.name: 60}


def test_a_stale_layout_record_does_not_make_a_member_drop_its_catch_all(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess], tmp_path: Path
) -> None:
    """Member 2 held the same layout once, long ago, and is gone. Member 1, changed from 1/1
    to 1/2, must not take that old record for member 2 holding its tenants now."""
    db = tmp_path / "shared.sqlite"
    one = ingestor(ingestors, deployed, 1, 1, sqlite_path=db)
    one.start()
    wait_subscribed([one])
    assert one.stop() == 0
    store = SqliteStore(db)
    try:
        store.set_checkpoint(layout_key(2), layout_id(REG, 2))
        store.set_checkpoint(confirmed_key(2), 1_000)  # 1970: long gone
        one.env["PARKFLOW_PARTITION"] = "1/2"
        one.start()
        wait_subscribed([one])
        time.sleep(3)  # three checkpoint intervals: it would have settled by now
        assert not [
            r for r in one.logs(since_start=True) if r.get("msg") == "subscription layout settled"
        ]
        with gateway(deployed, MEKONG) as mekong:  # member 2's tenant
            mekong.publish(20)
            drain(store, mekong)
        assert mekong.reason_counts() == {0: 20}
    finally:
        store.close()


# --- 7. retained messages are never replayed into the store --------------------------------------


@pytest.mark.parametrize("version", ["5", "3.1.1"])
def test_a_retained_reading_does_not_revert_a_correction_on_restart(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess], version: str
) -> None:
    ing = running(ingestor(ingestors, deployed, env={"PARKFLOW_MQTT_VERSION": version}))
    topic = topic_for(PARK, THEP, "thep-water")
    ts = time.time_ns() // 1_000_000 - 60_000
    user = gateway_user(PARK, THEP)
    c = raw_client(deployed, user, "gw")
    c.publish(topic, json.dumps({"ts": ts, "value": 100.0}), qos=1, retain=True).wait_for_publish(5)
    c.publish(topic, json.dumps({"ts": ts, "value": 101.0}), qos=1).wait_for_publish(5)
    store = sqlite_of(ing)
    query = ReadingQuery(meter="thep-water", start_ms=ts, end_ms=ts + 1)
    try:
        wait_until(lambda: [r.value for r in store.readings(query)] == [101.0], timeout=20)
        ing.stop()
        ing.start()
        wait_subscribed([ing])
        # a reading after the restart proves the ingestor has caught up
        c.publish(topic, json.dumps({"ts": ts + 1000, "value": 102.0}), qos=1).wait_for_publish(5)
        later = ReadingQuery(meter="thep-water", start_ms=ts + 1000, end_ms=ts + 1001)
        wait_until(lambda: len(store.readings(later)) == 1, timeout=20)
        time.sleep(0.5)
        assert [r.value for r in store.readings(query)] == [101.0]
    finally:
        store.close()
        c.disconnect()
        c.loop_stop()
    if version == "3.1.1":  # no retain handling in 3.1.1: the replay comes, and is skipped
        assert ing.metric("parkflow_ingest_retained_skipped_total") >= 1


# --- 11. the last word for a (meter, ts) is the last one the gateway sent ------------------------


def test_a_correction_wins_over_its_original_with_two_ingestors(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess], tmp_path: Path
) -> None:
    db = tmp_path / "shared.sqlite"
    members = [ingestor(ingestors, deployed, k, 2, sqlite_path=db) for k in (1, 2)]
    for ing in members:
        ing.start()
    wait_subscribed(members)
    topic = topic_for(PARK, THEP, "thep-water")
    base = time.time_ns() // 1_000_000 - 3_600_000
    c = raw_client(deployed, gateway_user(PARK, THEP), "gw")
    try:
        for k in range(10):
            ts = base + k * 1000
            c.publish(topic, json.dumps({"ts": ts, "value": 1.0, "seq": 2 * k}), qos=1)
            c.publish(topic, json.dumps({"ts": ts, "value": 2.0, "seq": 2 * k + 1}), qos=1)
        store = SqliteStore(db)
        query = ReadingQuery(meter="thep-water", start_ms=base, end_ms=base + 10_000)
        try:
            wait_until(lambda: len(store.readings(query)) == 10, timeout=20)
            time.sleep(1.0)  # any late original would land by now
            assert [r.value for r in store.readings(query)] == [2.0] * 10
        finally:
            store.close()
    finally:
        c.disconnect()
        c.loop_stop()


def test_qos0_readings_are_counted(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess]
) -> None:
    ing = running(ingestor(ingestors, deployed))
    c = raw_client(deployed, gateway_user(PARK, THEP), "gw")
    ts = time.time_ns() // 1_000_000 - 1000
    c.publish(topic_for(PARK, THEP, "thep-water"), json.dumps({"ts": ts, "value": 5.0}), qos=0)
    wait_until(lambda: ing.metric("parkflow_ingest_qos0_messages_total") == 1, timeout=10)
    c.disconnect()
    c.loop_stop()


def test_status_port_refuses_nothing_after_idle_connections(
    deployed: MosquittoServer, ingestors: Callable[..., IngestorProcess]
) -> None:
    import socket

    ing = ingestor(ingestors, deployed, env={"PARKFLOW_HTTP_IDLE_TIMEOUT_S": "1"})
    ing.start()
    idle = [socket.create_connection(("127.0.0.1", ing.http_port)) for _ in range(50)]
    try:
        for s in idle:
            s.settimeout(10)
        assert all(s.recv(1) == b"" for s in idle)  # the server closed each one
        assert httpx.get(f"http://127.0.0.1:{ing.http_port}/healthz", timeout=5).status_code == 200
    finally:
        for s in idle:
            s.close()
