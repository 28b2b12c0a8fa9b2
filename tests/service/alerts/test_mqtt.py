"""Alerts over MQTT through a real Mosquitto: QoS 1, accepted on PUBACK, and the generated
ACL letting each tenant read only its own alerts."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt.acl import DEFAULT_ALERTS_USER, gateway_user, mosquitto_acl
from parkflow.registry import SAMPLE_REGISTRY, load_registry
from parkflow.topics import alerts_topic
from service.alerts.channels import Accepted, Notification, Recipient, RetryLater
from service.alerts.channels.mqtt import MqttChannel, topic
from tests.service.alerts.build import note
from tests.support.mosquitto import MosquittoServer, wait_until
from tests.support.ports import free_port

REG = load_registry(SAMPLE_REGISTRY)
A = gateway_user("songlam", "thep-an")
B = gateway_user("songlam", "det-phuoc")
PASSWORDS = {DEFAULT_ALERTS_USER: "alerts-pw", A: "a-pw", B: "b-pw", "parkflow-ingest-1": "i"}


class Subscriber:
    """A tenant's app: a persistent MQTT v5 session subscribed with QoS 1."""

    def __init__(self, port: int, user: str, client_id: str, topic_filter: str) -> None:
        self.got: list[tuple[str, int, dict[str, object]]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        c = self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        c.username_pw_set(user, PASSWORDS[user])
        c.on_message = self._on_message
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.connect("127.0.0.1", port, clean_start=False, properties=_session())
        c.subscribe(topic_filter, qos=1)
        c.loop_start()
        assert self.subscribed.wait(5)

    def _on_message(self, c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append((m.topic, m.qos, json.loads(m.payload)))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _session() -> Properties:
    p = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    p.SessionExpiryInterval = 3600
    return p


def tenant_note(tenant: str) -> Notification:
    n = note(tenant=tenant)
    return Notification(
        n.id, Recipient("songlam", tenant=tenant), n.kind, n.subject, n.severity, n.language,
        n.text, n.created_at, {"ref": "R1"},
    )  # fmt: skip


def test_qos1_delivery_to_the_tenant_and_only_to_it() -> None:
    server = MosquittoServer(passwords=PASSWORDS, acl=mosquitto_acl(REG), deploy=True).start()
    try:
        mine = Subscriber(server.port, A, A, alerts_topic("songlam", "thep-an"))
        snoop = Subscriber(server.port, B, B, "ip/#")  # B tries to read every alert
        ch = MqttChannel(
            "127.0.0.1", server.port, client_id=DEFAULT_ALERTS_USER,
            username=DEFAULT_ALERTS_USER, password=PASSWORDS[DEFAULT_ALERTS_USER], timeout_s=5,
        ).connect()  # fmt: skip
        try:
            n = tenant_note("thep-an")
            answer = ch.send(n)
            assert isinstance(answer, Accepted), answer
            wait_until(lambda: mine.got, 10)
            time.sleep(0.3)  # every chance for a copy to reach B
            ((t, qos, doc),) = mine.got
            assert (t, qos) == ("ip/songlam/thep-an/alerts", 1)
            assert doc["data"]["id"] == n.id  # type: ignore[index]
            assert doc["data"]["facts"] == {"ref": "R1"}  # type: ignore[index]
            assert snoop.got == []
        finally:
            ch.close()
            mine.close()
            snoop.close()
    finally:
        server.close()


def test_a_tenant_cannot_publish_alerts_and_the_refusal_is_retried() -> None:
    """A gateway's credentials are not the alerts user's: its PUBACK says not authorised."""
    server = MosquittoServer(passwords=PASSWORDS, acl=mosquitto_acl(REG), deploy=True).start()
    try:
        ch = MqttChannel(
            "127.0.0.1", server.port, client_id=B, username=B, password=PASSWORDS[B], timeout_s=5
        ).connect()
        try:
            answer = ch.send(tenant_note("thep-an"))
        finally:
            ch.close()
    finally:
        server.close()
    assert isinstance(answer, RetryLater) and "0x87" in answer.reason


def test_a_subscriber_offline_gets_it_on_return(mosquitto: MosquittoServer) -> None:
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="app-1", protocol=mqtt.MQTTv5)
    sub.connect("127.0.0.1", mosquitto.port, clean_start=True, properties=_session())
    sub.subscribe(alerts_topic("songlam", "thep-an"), qos=1)
    sub.loop(1)
    sub.disconnect()  # the tenant's app goes offline, its session kept
    ch = MqttChannel("127.0.0.1", mosquitto.port, timeout_s=5).connect()
    try:
        n = tenant_note("thep-an")
        assert isinstance(ch.send(n), Accepted)
    finally:
        ch.close()
    got: list[bytes] = []
    back = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="app-1", protocol=mqtt.MQTTv5)
    back.on_message = lambda c, u, m: got.append(bytes(m.payload))
    back.connect("127.0.0.1", mosquitto.port, clean_start=False, properties=_session())
    back.loop_start()
    try:
        wait_until(lambda: got, 10)
    finally:
        back.loop_stop()
        back.disconnect()
    assert json.loads(got[0])["data"]["id"] == n.id


def test_no_broker_is_retried() -> None:
    ch = MqttChannel("127.0.0.1", free_port(), timeout_s=0.5)
    answer = ch.send(tenant_note("thep-an"))  # never connected: paho queues, no PUBACK
    assert isinstance(answer, RetryLater) and "no PUBACK" in answer.reason


def test_operators_have_a_topic_no_tenant_grant_matches() -> None:
    n = note()
    op = Notification(
        n.id, Recipient("songlam", operator="ops"), n.kind, n.subject, n.severity,
        n.language, n.text, n.created_at,
    )  # fmt: skip
    assert topic(op) == "ip/songlam/operators/ops/alerts"
    assert topic(tenant_note("thep-an")) == "ip/songlam/thep-an/alerts"
