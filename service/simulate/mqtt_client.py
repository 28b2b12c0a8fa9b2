"""A QoS 1 MQTT publisher that knows the broker's answer to every message it sent.

The one home of what the simulator's gateways (``service.simulate.publish``), the test suite's
Jepsen-style checker (``tests/support/checker.py``) and the ingest benchmark's publisher
processes (``bench/ingest``) have in common: a paho client (MQTT v5 unless told otherwise) that
connects, publishes with QoS 1 and a bounded number of messages in flight, and hands the reason
code of each message's PUBACK to the caller, with the token the caller published it under. A
reason code below ``REFUSED`` (0x80) means the broker took responsibility for the message;
``NO_MATCHING_SUBSCRIBERS`` (0x10) that it took it but nobody was subscribed.

Two ways to run it:

- in the background (``connect()``): paho's network thread reads the PUBACKs; ``publish`` may
  be called from any thread;
- driven by the caller (``connect(background=False)``, then ``loop``), for a publisher process
  that wants no second thread: nothing is read from the socket except in ``loop``,
  ``wait_for_room`` and ``wait_answered``.

The in-flight window: by default paho holds back the messages beyond it and sends them as
PUBACKs free room, so ``publish`` never blocks; but then paho scans every in-flight message on
each PUBACK, which costs a fast publisher with a large window most of its CPU. With
``blocking=True`` paho's limit is off and ``publish`` waits until the window has room instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Literal, Self, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

REFUSED = 0x80  # PUBACK reason codes from here up: the broker did not take the message
NO_MATCHING_SUBSCRIBERS = 0x10  # taken, but nobody subscribed: it went nowhere

T = TypeVar("T")

# (token, mid, PUBACK reason code, time.time() when the PUBACK arrived); called with the
# publisher's ``lock`` held, from whichever thread read the PUBACK or published the message.
OnAnswer = Callable[[T, int, int, float], None]
CleanStart = bool | Literal[3]


class ConnectTimeout(ConnectionError, TimeoutError):
    """No accepted CONNACK in time (either kind of error, for callers catching either)."""


def connect_and_wait(
    client: mqtt.Client,
    host: str,
    port: int,
    *,
    timeout: float = 10.0,
    keepalive: int = 60,
    **kw: Any,
) -> None:
    """Connect a client driven by manual ``loop()`` calls and wait for its CONNACK.

    Raises ``TimeoutError`` without an answer, ``RuntimeError`` when the broker refuses. The
    client's own ``on_connect`` (if any) is still called."""
    answers: list[Any] = []
    previous: Any = client.on_connect  # a VERSION2 callback, like ours

    def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        answers.append(reason)
        if previous is not None:
            previous(c, u, flags, reason, props)

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=keepalive, **kw)
        deadline = time.monotonic() + timeout
        while not answers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no CONNACK from {host}:{port}")
            client.loop(0.05)
    finally:
        client.on_connect = previous
    if answers[0].is_failure:
        raise RuntimeError(f"connection refused: {answers[0]}")


class QoS1Publisher(Generic[T]):
    """Publishes QoS 1 messages and reports each one's PUBACK to ``on_answer``.

    ``window``: messages in flight at most (published, not yet answered). ``reconnect_delay``:
    (min, max) seconds between paho's reconnection attempts in the background."""

    def __init__(
        self,
        host: str,
        port: int,
        on_answer: OnAnswer[T],
        *,
        client_id: str,
        window: int = 200,
        blocking: bool = False,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 30,
        clean_start: CleanStart = mqtt.MQTT_CLEAN_START_FIRST_ONLY,
        reconnect_delay: tuple[float, float] | None = None,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.host, self.port = host, port
        self.window = window
        self.blocking = blocking
        self.keepalive = keepalive
        self.clean_start = clean_start
        self._on_answer = on_answer
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(0 if blocking else window)
        self.client.max_queued_messages_set(0)  # paho keeps whatever we give it: no drops
        if reconnect_delay is not None:
            low, high = reconnect_delay
            self.client.reconnect_delay_set(min_delay=low, max_delay=high)  # type: ignore[arg-type]
        # Guards what on_answer writes: callers take it to read that consistently.
        self.lock = threading.Lock()
        self._answered = threading.Condition(self.lock)
        self._pending: dict[int, T] = {}  # mid -> token, published and not yet answered
        self._early: dict[int, tuple[int, float]] = {}  # PUBACKs that beat publish() returning
        self._background = False
        self._connected = threading.Event()
        self.client.on_publish = self._on_publish
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    # connection

    def connect(
        self, timeout: float = 10.0, *, background: bool = True, retry: bool = False
    ) -> Self:
        """Connect and wait for the broker to accept. In the background, ``retry`` lets paho's
        thread keep trying until ``timeout`` (a broker not up yet); without it a refused TCP
        connection raises at once (``OSError``). ``ConnectTimeout`` when not accepted in time."""
        if not background:
            connect_and_wait(
                self.client,
                self.host,
                self.port,
                timeout=timeout,
                keepalive=self.keepalive,
                clean_start=self.clean_start,
            )
            return self
        self._background = True
        if retry:
            self.client.connect_async(
                self.host, self.port, keepalive=self.keepalive, clean_start=self.clean_start
            )
        else:
            self.client.connect(
                self.host, self.port, keepalive=self.keepalive, clean_start=self.clean_start
            )
        self.client.loop_start()
        if not self._connected.wait(timeout):
            self.close()
            raise ConnectTimeout(f"no MQTT connection to {self.host}:{self.port} in {timeout}s")
        return self

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            if self._background:
                self.client.loop_stop()

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            self._connected.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._connected.clear()

    # publishing

    def loop(self, timeout: float) -> None:
        """Driven by the caller: let paho read and write for up to ``timeout`` seconds."""
        self.client.loop(timeout)

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def wait_for_room(self) -> None:
        """Until fewer than ``window`` messages are in flight (only ``blocking`` publishers
        ever have that many: paho holds the others back)."""
        if len(self._pending) < self.window:
            return
        if not self._background:
            while len(self._pending) >= self.window:
                self.client.loop(0.001)
            return
        with self._answered:
            while len(self._pending) >= self.window:
                self._answered.wait(1.0)

    def publish(self, topic: str, payload: bytes, token: T) -> int:
        """Publish with QoS 1; ``on_answer`` gets ``token`` with the PUBACK. Returns the mid.

        Waits for room in the window when ``blocking``. A message published while the
        connection is down is sent when it is back; any other refusal of paho raises
        ``ConnectionError`` (and the message is not tracked)."""
        if self.blocking:
            self.wait_for_room()
        # Not under self.lock: paho calls on_publish holding its own mutex, which publish()
        # takes too, so a PUBACK that arrives before publish() returns is parked in _early
        # and delivered here.
        info = self.client.publish(topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise ConnectionError(f"publish failed: {mqtt.error_string(info.rc)}")
        with self.lock:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._pending[info.mid] = token
            else:
                self._on_answer(token, info.mid, *early)
                self._answered.notify_all()
        return info.mid

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        code = int(getattr(reason, "value", reason or 0))
        at = time.time()
        with self.lock:
            if mid not in self._pending:
                self._early[mid] = (code, at)
                return
            self._on_answer(self._pending.pop(mid), mid, code, at)
            if self._background:  # nobody else waits on a caller-driven publisher
                self._answered.notify_all()

    def wait_answered(self, timeout: float) -> int:
        """Wait (up to ``timeout`` s) until every message published so far is answered;
        returns how many are still not."""
        deadline = time.monotonic() + timeout
        if not self._background:
            while self._pending and time.monotonic() < deadline:
                self.client.loop(0.01)
            return len(self._pending)
        with self._answered:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._answered.wait(left)
            return len(self._pending)
