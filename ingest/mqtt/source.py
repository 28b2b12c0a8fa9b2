"""paho-mqtt 2.x behind a small seam: a persistent session, QoS 1, acknowledgement on request.

Why each setting:
- a fixed client id, ``clean_start=False`` and a session expiry keep the broker queueing for us
  while we are down, and redelivering what we had received but not acked;
- ``manual_ack``: the pipeline acks a message only once the store holds it (or its quarantine);
- Receive Maximum bounds how many unacked messages the broker sends us: our memory bound, and
  the backpressure when the store is slow or down.
Each (re)connection is a new *generation*: after a reconnect the broker redelivers unacked
messages and may reuse their packet ids, so an ack from an older generation is never sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.settings import IngestSettings

log = logging.getLogger("parkflow.ingest.mqtt")


class InboundMessage(NamedTuple):
    """One message as received; a named tuple because one is built per message."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_ms: int
    generation: int
    dup: bool = False


class MqttSource:
    def __init__(
        self,
        settings: IngestSettings,
        on_message: Callable[[InboundMessage], None],
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self.settings = settings
        self._deliver = on_message
        self._on_state = on_state
        self.generation = 0
        self.connected = False
        self.session_present: bool | None = None
        self.sessions_lost = 0
        self._lock = threading.Lock()
        self.v5 = settings.mqtt_version == "5"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
            clean_session=None if self.v5 else False,
            manual_ack=True,
        )
        if settings.mqtt_username:
            self.client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.max_queued_messages_set(0)

    @property
    def subscription(self) -> str:
        group = self.settings.share_group
        if group and self.v5:
            return f"$share/{group}/{self.settings.topic_filter}"
        return self.settings.topic_filter

    def start(self) -> None:
        s = self.settings
        if self.v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
            props.ReceiveMaximum = s.receive_maximum
            self.client.connect_async(
                s.mqtt_host, s.mqtt_port, s.keepalive_s, clean_start=False, properties=props
            )
        else:
            self.client.connect_async(s.mqtt_host, s.mqtt_port, s.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly; the session (and whatever we did not ack) stays on the broker."""
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def ack(self, messages: Sequence[InboundMessage]) -> int:
        """Ack in order of receipt; skip messages of an older connection. Returns how many acked."""
        sent = 0
        with self._lock:
            gen = self.generation
            if not self.connected:
                return 0
            for m in messages:
                if m.generation == gen and m.qos > 0:
                    self.client.ack(m.mid, m.qos)
                    sent += 1
        return sent

    # paho callbacks (network thread)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("mqtt connect refused", extra={"reason": str(reason)})
            return
        present = bool(flags.session_present)
        with self._lock:
            self.generation += 1
            self.connected = True
            previous, self.session_present = self.session_present, present
        if not present and previous is not None:
            self.sessions_lost += 1
            log.warning(
                "broker has no session for us: messages queued while we were away may be lost",
                extra={"client_id": self.settings.client_id},
            )
        # Subscribing again is harmless when the session kept the subscription.
        client.subscribe(self.subscription, qos=1)
        log.info(
            "mqtt connected",
            extra={"session_present": present, "subscription": self.subscription},
        )
        if self._on_state:
            self._on_state(True)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            self.connected = False
        level = logging.INFO if reason.value == 0 else logging.WARNING  # 0: we asked for it
        log.log(level, "mqtt disconnected", extra={"reason": str(reason)})
        if self._on_state:
            self._on_state(False)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers should refuse these; never let one stop the loop
            topic = msg._topic.decode("utf-8", "replace")
        self._deliver(
            InboundMessage(
                topic=topic,
                payload=bytes(msg.payload),
                mid=msg.mid,
                qos=msg.qos,
                received_ms=time.time_ns() // 1_000_000,
                generation=self.generation,
                dup=bool(msg.dup),
            )
        )
