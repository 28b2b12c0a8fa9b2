"""Hostile gateways and broker restarts, on the real thing: the shipped Mosquitto configuration
(``deploy/mosquitto/``, only ports and paths changed), ``parkflow ingest`` processes, InfluxDB
or SQLite.

Each test reproduces an attack or a fault a hostile tester found, and checks Jepsen-style
(``tests.support.checker``) that every reading the broker acknowledged is stored once, that
bad input ends in a bounded quarantine, and that the ingestor keeps running.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.housekeeping import SESSION_LOST, confirmed_key
from ingest.mqtt.acl import gateway_user, mosquitto_acl
from ingest.mqtt.partition import layout_id, layout_key
from ingest.mqtt.source import CONNECTION_FLAPPING
from ingest.quota import QUOTA_EXCEEDED
from ingest.validate import MAX_KEPT_PAYLOAD
from parkflow.model import message_id
from parkflow.registry import SAMPLE_REGISTRY, load_registry
from parkflow.store import InfluxStore, ReadingQuery, SqliteStore, Store
from parkflow.topics import topic_for
from tests.support.checker import (
    NO_MATCHING_SUBSCRIBERS,
    Publisher,
    SentMessage,
    check,
    meters_from_registry,
)
from tests.support.faulty_proxy import FaultyProxy, refuse_every_write, refuse_writes_containing
from tests.support.influx import InfluxServer
from tests.support.ingestor_proc import IngestorPool, IngestorProcess, wait_subscribed
from tests.support.mosquitto import SITE_KEYS, MosquittoServer, wait_until

REG = load_registry(SAMPLE_REGISTRY)
PARK = "songlam"
THEP, MEKONG, DET = "thep-an", "mekong-foods", "det-phuoc"
USERS = {
    "parkflow-ingest-1": "ingest-1-pw",
    "parkflow-ingest-2": "ingest-2-pw",
    gateway_user(PARK, THEP): "thep-pw",
    gateway_user(PARK, MEKONG): "mekong-pw",
    gateway_user(PARK, DET): "det-pw",
}
METERS = {
    THEP: ("thep-water", "thep-elec", "thep-scale"),
    MEKONG: ("mf-water", "mf-pallets"),
    DET: ("det-water",),
}
DAY_MS = 86_400_000


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[MosquittoServer]:
    """Mosquitto running the shipped files, with the sample park's generated ACL."""
    broker = MosquittoServer(passwords=USERS, acl=mosquitto_acl(REG), deploy=True).start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def ingestors(tmp_path: Path) -> Iterator[Callable[..., IngestorProcess]]:
    with IngestorPool(tmp_path) as pool:
        yield pool.make


def ingestor(
    make: Callable[..., IngestorProcess],
    broker: MosquittoServer,
    member: int = 1,
    members: int = 1,
    **kwargs: object,
) -> IngestorProcess:
    """An ingestor as deploy/ runs it: its own broker user, which is its client id."""
    user = f"parkflow-ingest-{member}"
    return make(
        mqtt_port=broker.port,
        username=user,
        password=USERS[user],
        partition=f"{member}/{members}",
        name=user,
        **kwargs,
    )


def running(ing: IngestorProcess) -> IngestorProcess:
    """Started, and subscribed: the broker would drop what is published before."""
    ing.start()
    wait_subscribed([ing])
    return ing


def gateway(broker: MosquittoServer, tenant: str) -> Publisher:
    """A tenant's gateway: its own user, publishing to its own meters; each tenant's seq
    numbers apart, so the checker sees every reading as one of its own."""
    user = gateway_user(PARK, tenant)
    meters = meters_from_registry(REG, [(PARK, tenant, m) for m in METERS[tenant]])
    first = 1 + 1_000_000 * list(METERS).index(tenant)
    return Publisher(
        broker.port, meters=meters, username=user, password=USERS[user], first_seq=first
    )


def raw_client(
    broker: MosquittoServer, user: str, client_id: str, *, clean_start: bool = True
) -> mqtt.Client:
    """A bare MQTT v5 client, connected (the caller disconnects it)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, USERS.get(user, ""))
    done = threading.Event()
    c.on_connect = lambda *a: done.set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0 if clean_start else 3600
    c.connect("127.0.0.1", broker.port, clean_start=clean_start, properties=props)
    c.loop_start()
    assert done.wait(10), "no CONNACK"
    return c


def drain(store: Store, *pubs: Publisher, timeout: float = 60.0) -> None:
    """Until every reading the broker acknowledged to these gateways is stored, once."""
    for pub in pubs:
        pub.wait_answered(60)
    acked = [r for p in pubs for r in p.acknowledged()]
    sent = [r for p in pubs for r in p.sent()]
    deadline = time.monotonic() + timeout
    while True:
        result = check(store, acked, sent=sent)
        if result.lost == 0 or time.monotonic() > deadline:
            assert result.ok, result.describe()
            assert result.stored >= len(acked)
            return
        time.sleep(0.2)


def sqlite_of(ing: IngestorProcess) -> SqliteStore:
    return SqliteStore(ing.sqlite_path)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


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
