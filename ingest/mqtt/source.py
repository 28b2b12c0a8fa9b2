"""paho-mqtt 2.x behind a small seam: a persistent session, QoS 1, acknowledgement on request.

Why each setting:
- a fixed client id, ``clean_start=False`` and a session expiry keep the broker queueing for us
  while we are down, and redelivering what we had received but not acked;
- plain subscriptions (``ingest.mqtt.partition``), because the broker restores them with the
  session after a restart, where Mosquitto 2.0 forgets shared ones;
- ``manual_ack``: the pipeline acks a message only once the store holds it (or its quarantine);
- Receive Maximum bounds how many unacked messages the broker sends us, and Maximum Packet Size
  how big one may be: our memory bound, and the backpressure when the store is slow or down;
- Retain Handling 2: the broker must not replay retained messages when we subscribe, or a
  correction would be reverted to the retained value at every restart. A message flagged
  retained is such a replay (live deliveries never carry the flag), so one that still comes
  (MQTT 3.1.1) is acknowledged and skipped.
Each (re)connection is a new *generation*: after a reconnect the broker redelivers unacked
messages and may reuse their packet ids, so an ack from an older generation is never sent.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.mqtt.partition import chunks

if TYPE_CHECKING:
    from ingest.settings import IngestSettings

log = logging.getLogger("parkflow.ingest.mqtt")

# paho waits this long before reconnecting, doubling after each failed attempt up to the
# maximum, and starting again from the minimum after a successful CONNACK.
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 10
SESSION_TAKEN_OVER = 0x8E  # MQTT v5 DISCONNECT reason: another client connected with our id
_REFUSED = 0x80
# A twin client fighting for our id: this many connections in a row dropped within SHORT_S of
# being made, within FLAPPING_S, with no failed attempt in between (a restarting broker
# refuses some). A few broker restarts in a row stay below it.
FLAPPING = 5
FLAPPING_S = 60.0
SHORT_S = 5.0
CONNECTION_FLAPPING = (
    "the broker keeps closing our connection soon after we connect: another client is probably"
    " using our client id (suspected takeover); bind client ids to user names on the broker"
    " (use_username_as_clientid)"
)


class InboundMessage(NamedTuple):
    """One message as received; a named tuple because one is built per message."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_ms: int
    generation: int
    dup: bool = False
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Connected:
    """A successful CONNACK, for the code that checks the session against what it expected."""

    generation: int
    session_present: bool
    at_ms: int


class MqttSource:
    def __init__(
        self,
        settings: IngestSettings,
        on_message: Callable[[InboundMessage], None],
        on_state: Callable[[bool], None] | None = None,
        filters: Sequence[str] = ("ip/+/+/+/readings",),
        on_connected: Callable[[Connected], None] | None = None,
    ) -> None:
        self.settings = settings
        self.filters = list(filters)
        self._deliver = on_message
        self._on_state = on_state
        self._on_connected = on_connected
        self.generation = 0
        self.connected = False
        self.session_present: bool | None = None
        self.sessions_lost = 0  # reconnects of this process that found no session
        self.takeovers = 0  # times another client took our session over
        self.disconnects = 0  # unexpected ones
        self._recent_drops: list[float] = []
        self._connected_at = 0.0  # monotonic time of the last CONNACK
        self._failed_attempts = 0  # connection attempts that failed since the last drop
        self.failed_connects = 0  # connection attempts that failed, over the process's life
        self._retry_delay: float | None = None  # paho's reconnect delay, mirrored for the logs
        self.subscribed_generation = 0  # generation whose SUBACKs all came back granted
        self._pending_subacks: dict[int, int] = {}  # mid -> generation
        self._refused_generation = 0  # a generation in which some SUBACK refused a filter
        self._pending_unsubacks: dict[int, int] = {}  # mid -> generation
        self._unsubscribing = 0  # the generation the last unsubscribe was sent in
        self.unsubscribed_generation = 0  # generation whose UNSUBACKs all came back
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
        self.client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_unsubscribe = self._on_unsubscribe
        self.client.on_subscribe = self._on_subscribe
        self.client.max_queued_messages_set(0)

    @property
    def broker(self) -> str:
        return f"{self.settings.mqtt_host}:{self.settings.mqtt_port}"

    def _next_retry_s(self) -> float:
        """The wait paho takes before its next attempt, as its reconnect loop computes it:
        the log says when to expect the next try without reading paho's private state."""
        with self._lock:
            d = self._retry_delay
            d = RECONNECT_MIN_S if d is None else min(d * 2, RECONNECT_MAX_S)
            self._retry_delay = d
            return d

    def start(self) -> None:
        s = self.settings
        if self.v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
            props.ReceiveMaximum = s.receive_maximum
            props.MaximumPacketSize = s.max_packet_bytes
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

    def unsubscribe(self, filters: Sequence[str]) -> int:
        """Drop filters an earlier layout left in the session (not held ones are harmless).
        Returns the generation it was sent in: done once ``unsubscribed_generation`` reaches
        it; a reconnect before that means sending it again."""
        with self._lock:
            generation = self._unsubscribing = self.generation
            self._pending_unsubacks = {}
        if not filters:
            with self._lock:
                self.unsubscribed_generation = generation
            return generation
        for part in chunks(filters):
            _, mid = self.client.unsubscribe(list(part))
            if mid is not None:
                with self._lock:
                    self._pending_unsubacks[mid] = generation
        return generation

    # paho callbacks (network thread): no I/O but the socket, never raise

    def _subscribe(self, client: mqtt.Client, generation: int) -> None:
        # Subscribing again is harmless when the session kept the subscription, and needed when
        # the broker lost it. A member with no tenants has nothing to wait for.
        if not self.filters:
            with self._lock:
                self.subscribed_generation = generation
            return
        for part in chunks(self.filters):
            if self.v5:
                options = SubscribeOptions(
                    qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND
                )
                _, mid = client.subscribe([(f, options) for f in part])
            else:
                _, mid = client.subscribe([(f, 1) for f in part])
            if mid is not None:
                with self._lock:
                    self._pending_subacks[mid] = generation

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            # The broker closes the connection next: the disconnect says when we try again.
            log.error("mqtt connect refused", extra={"broker": self.broker, "reason": str(reason)})
            return
        present = bool(flags.session_present)
        with self._lock:
            self._retry_delay = None  # paho starts again from the minimum delay
            self.generation += 1
            generation = self.generation
            self.connected = True
            previous, self.session_present = self.session_present, present
            self._pending_subacks.clear()
            self._pending_unsubacks.clear()
            self._connected_at = time.monotonic()
        if not present and previous is not None:
            self.sessions_lost += 1
            log.error(
                "broker has no session for us after a reconnect: messages queued for us while"
                " we were away are lost",
                extra={"client_id": self.settings.client_id},
            )
        self._subscribe(client, generation)
        log.info(
            "mqtt connected",
            extra={
                "broker": self.broker,
                "session_present": present,
                "subscriptions": len(self.filters),
            },
        )
        if self._on_connected:
            self._on_connected(Connected(generation, present, time.time_ns() // 1_000_000))
        if self._on_state:
            self._on_state(True)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        codes = [int(getattr(r, "value", r)) for r in reasons]
        refused = sum(1 for c in codes if c >= _REFUSED)
        with self._lock:
            generation = self._pending_subacks.pop(mid, None)
            if refused and generation is not None:
                self._refused_generation = generation  # until the next connection
            done = not self._pending_subacks
            if done and generation == self.generation and self._refused_generation != generation:
                self.subscribed_generation = generation
        if refused:
            log.error(
                "broker refused subscriptions: readings on those topics reach nobody",
                extra={"refused": refused, "of": len(codes), "codes": sorted(set(codes))},
            )

    def _on_unsubscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        with self._lock:
            generation = self._pending_unsubacks.pop(mid, None)
            if generation == self.generation and not self._pending_unsubacks:
                self.unsubscribed_generation = generation

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this from its ``except OSError`` around the attempt and passes no reason:
        # the exception being handled is the reason.
        exc = sys.exc_info()[1]
        with self._lock:
            self._failed_attempts += 1
            self.failed_connects += 1
            attempt = self.failed_connects
            first = self.generation == 0 and attempt == 1
        retry_in = self._next_retry_s()
        if first:  # paho's first-connection loop waits once, then its reconnect loop again
            retry_in += self._next_retry_s()
        log.warning(
            "mqtt connect failed",
            extra={
                "broker": self.broker,
                "reason": _reason(exc),
                "attempt": attempt,
                "retry_in_s": retry_in,
            },
        )

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            self.connected = False
        code = int(getattr(reason, "value", 0))
        if code == SESSION_TAKEN_OVER:
            self.takeovers += 1
            log.error(
                "another client connected with our client id and took our session: bind client"
                " ids to user names on the broker (use_username_as_clientid)",
                extra={
                    "client_id": self.settings.client_id,
                    "broker": self.broker,
                    "retry_in_s": self._next_retry_s(),
                },
            )
        elif code == 0:  # we asked for it
            log.info("mqtt disconnected", extra={"broker": self.broker, "reason": str(reason)})
        else:
            # Mosquitto 2.0 closes a taken-over connection without saying why. The sign of it:
            # the connection is dropped soon after it was made, and the next attempt succeeds
            # at once (a restarting broker refuses attempts in between), again and again.
            self.disconnects += 1
            now = time.monotonic()
            with self._lock:
                failed, self._failed_attempts = self._failed_attempts, 0
                short = now - self._connected_at < SHORT_S
            if failed:
                self._recent_drops.clear()
            elif short:
                self._recent_drops = [t for t in self._recent_drops if now - t < FLAPPING_S] + [now]
            log.warning(
                "mqtt disconnected",
                extra={
                    "broker": self.broker,
                    "reason": str(reason),
                    "retry_in_s": self._next_retry_s(),
                },
            )
            if len(self._recent_drops) >= FLAPPING:
                self.takeovers += 1
                self._recent_drops.clear()
                log.error(CONNECTION_FLAPPING, extra={"client_id": self.settings.client_id})
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
                retain=bool(msg.retain),
            )
        )


def _reason(exc: BaseException | None) -> str:
    """Why an attempt failed, in words an operator can act on (the class says timeout or
    refused when the message alone does not)."""
    if exc is None:
        return "unknown"
    text = str(exc) or "no detail"
    return f"{type(exc).__name__}: {text}"
