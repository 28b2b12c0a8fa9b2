"""The bare subscriber (the MQTT ceiling) and the deletion of the bench's broker sessions."""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.ingest.children import Children, child_setup, log, recv
from ingest.mqtt.partition import CATCH_ALL
from ingest.settings import IngestSettings
from service.simulate.mqtt_client import connect_and_wait


def _bare_subscriber(
    conn: Connection,
    host: str,
    port: int,
    client_id: str,
    subscription: str,
    expected: int,
    receive_maximum: int,
    timeout: float,
    drain: Any = None,
) -> None:
    """Ack every message the moment it arrives; report first and last arrival times.

    With ``drain`` (an Event) the subscriber goes offline once subscribed, leaving its session
    on the broker, and comes back when the event is set to take what was queued meanwhile."""
    child_setup()
    try:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        props.ReceiveMaximum = receive_maximum
        state = {"count": 0, "first": 0.0, "last": 0.0, "dup": 0, "subscribed": False}
        now = time.monotonic

        def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
            c.ack(msg.mid, msg.qos)
            t = now()
            if not state["count"]:
                state["first"] = t
            state["last"] = t
            state["count"] += 1
            if msg.dup:
                state["dup"] += 1

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: Any, p: Any) -> None:
            state["subscribed"] = True

        client.on_message = on_message
        client.on_subscribe = on_subscribe
        connect_and_wait(client, host, port, clean_start=False, properties=props)
        client.subscribe(subscription, qos=1)
        while not state["subscribed"]:
            client.loop(0.05)
        if drain is not None:
            client.disconnect()  # the session (expiry 1 h) and its subscription stay
            client.loop(0.1)
            conn.send(("ready", 0))
            drain.wait()
            connect_and_wait(client, host, port, clean_start=False, properties=props)
        else:
            conn.send(("ready", 0))
        cpu = time.process_time()
        deadline = now() + timeout
        while state["count"] < expected and now() < deadline:
            client.loop(0.05)
        end = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
        end.SessionExpiryInterval = 0  # delete the session now
        client.disconnect(properties=end)
        client.loop(0.1)
        state["cpu"] = time.process_time() - cpu
        conn.send(("done", state))
    except Exception as exc:
        conn.send(("error", repr(exc)))
    finally:
        conn.close()


class BareSubscriber:
    """A forked bare subscriber on every park's topics (the ingestor's subscription and Receive
    Maximum); with ``drain`` it waits offline, its session queueing, until ``come_back``."""

    def __init__(
        self,
        children: Children,
        host: str,
        port: int,
        client_id: str,
        expected: int,
        timeout: float,
        *,
        drain: bool = False,
    ) -> None:
        self.timeout = timeout
        self.go = children.ctx.Event() if drain else None
        receive_maximum = IngestSettings().receive_maximum
        args = (host, port, client_id, CATCH_ALL, expected, receive_maximum, timeout, self.go)
        self.proc, self.conn = children.fork(_bare_subscriber, args, "bench-bare-subscriber")

    def wait_ready(self) -> None:
        recv(self.conn, "bare subscriber start-up", 60)

    def come_back(self) -> None:
        assert self.go is not None, "only a drain subscriber goes offline"
        self.go.set()

    def result(self) -> dict[str, Any]:
        """count, first and last (monotonic arrival times), dup (redelivered) and cpu (s)."""
        state: dict[str, Any] = recv(self.conn, "bare subscriber", self.timeout + 60)
        return state

    def join(self) -> None:
        self.proc.join(10)


def purge_session(host: str, port: int, client_id: str) -> None:
    """Delete a (persistent) session from the broker: clean start, then expire at disconnect."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    try:
        connect_and_wait(client, host, port, clean_start=True, properties=props)
        client.disconnect()
        client.loop(0.1)
    except (OSError, TimeoutError, RuntimeError) as exc:
        log(f"  (could not delete session {client_id}: {exc})")
