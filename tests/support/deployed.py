"""The park as deploy/ runs it, for the hardening tests: the shipped broker configuration, the
sample park's users, ingestors with their own broker users, tenants' gateways, and the check
that every acknowledged reading is stored once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt.acl import gateway_user
from parkflow.registry import SAMPLE_REGISTRY, load_registry
from parkflow.store import SqliteStore, Store
from tests.support.checker import (
    Publisher,
    check,
    meters_from_registry,
)
from tests.support.ingestor_proc import IngestorProcess, wait_subscribed
from tests.support.mosquitto import MosquittoServer

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
