"""Tenant isolation on the broker: the generated ACL, enforced by a real Mosquitto."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt.acl import gateway_user, mosquitto_acl
from parkflow.cli import main
from parkflow.registry import SAMPLE_REGISTRY, load_registry
from tests.support.mosquitto import MosquittoServer

REG = load_registry(SAMPLE_REGISTRY)
A = gateway_user("songlam", "thep-an")
B = gateway_user("songlam", "det-phuoc")
INGEST = "parkflow-ingest-1"
PASSWORDS = {INGEST: "ingest-pw", "parkflow-ingest-2": "ingest-2-pw", A: "a-pw", B: "b-pw"}


def _client(port: int, user: str, cid: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, PASSWORDS[user])
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_acl_lists_each_tenants_own_meters_only() -> None:
    acl = mosquitto_acl(REG)
    block = acl.split(f"user {A}\n", 1)[1].split("\n\n", 1)[0]
    assert "topic write ip/songlam/thep-an/thep-water/readings" in block
    assert "det-phuoc" not in block
    assert [x for x in block.splitlines() if x.startswith("topic read")] == [
        "topic read ip/songlam/thep-an/alerts"
    ]


def test_broker_enforces_tenant_isolation() -> None:
    server = MosquittoServer(passwords=PASSWORDS, acl=mosquitto_acl(REG), deploy=True).start()
    got: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    try:
        ingest = _client(server.port, INGEST, "ingest")

        def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
            with lock:
                got.append((m.topic, bytes(m.payload)))

        ingest.on_message = on_message
        ingest.subscribe("ip/+/+/+/readings", qos=1)
        snoop = _client(server.port, B, "b-snoop")  # tenant B tries to read everyone's data
        snooped: list[bytes] = []
        snoop.on_message = lambda c, u, m: snooped.append(bytes(m.payload))
        snoop.subscribe("ip/#", qos=1)
        time.sleep(0.3)

        a = _client(server.port, A, "a-gw")
        acks: dict[int, int] = {}
        a.on_publish = lambda c, u, mid, rc, props: acks.__setitem__(mid, rc.value)
        own = a.publish("ip/songlam/thep-an/thep-water/readings", b"own", qos=1)
        forged = a.publish("ip/songlam/det-phuoc/det-water/readings", b"forged", qos=1)
        own.wait_for_publish(5)
        forged.wait_for_publish(5)

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not got:
            time.sleep(0.05)
        time.sleep(0.5)  # give a forged message every chance to arrive
        with lock:
            payloads = [p for _, p in got]
        assert payloads == [b"own"]
        assert snooped == []  # B's subscription to ip/# delivers nothing
        assert acks[forged.mid] == 135  # MQTT v5 "not authorized": the gateway is told
        assert acks[own.mid] < 128
        for c in (ingest, snoop, a):
            c.loop_stop()
            c.disconnect()
    finally:
        server.close()


def test_wrong_password_is_refused() -> None:
    server = MosquittoServer(passwords=PASSWORDS, acl=mosquitto_acl(REG)).start()
    try:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="x", protocol=mqtt.MQTTv5)
        c.username_pw_set(A, "wrong")
        codes: list[object] = []
        c.on_connect = lambda cl, u, f, rc, p: codes.append(rc)
        c.connect("127.0.0.1", server.port)
        c.loop_start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not codes:
            time.sleep(0.05)
        c.loop_stop()
        assert codes and codes[0].is_failure  # type: ignore[attr-defined]
    finally:
        server.close()


def test_each_ingestor_has_a_user_of_its_own_in_the_acl() -> None:
    acl = mosquitto_acl(REG)
    for user in ("parkflow-ingest-1", "parkflow-ingest-2"):
        assert f"user {user}\ntopic read ip/+/+/+/readings\n" in acl
    assert "user parkflow-ingest\n" not in acl


@pytest.mark.parametrize(
    "name", ["evil\ntopic readwrite #", "a b", "park.tenant", "", "x" * 65, "tab\there"]
)
def test_an_ingest_user_that_could_write_acl_lines_is_refused(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="ingest user"):
        mosquitto_acl(REG, ingest_users=[name])
    assert main(["registry", "acl", str(SAMPLE_REGISTRY), "--ingest-user", name]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "ingest user" in out.err
