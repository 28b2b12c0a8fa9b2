"""Publishing a scenario over MQTT v5, as the park's gateways would: the only I/O of the simulator.

Backfill sends each meter's history as JSON arrays of up to 1000 readings with QoS 1 and many
messages in flight, and waits until the broker has acknowledged every one (PUBACK): only then
is the backlog the broker's responsibility. Live mode then sends each meter's new readings
every ``interval_s`` of wall time, optionally with simulated time running ``speed`` times
faster; readings are never stamped ahead of the wall clock (the ingestor would refuse them as
``future_ts``), so acceleration replays the hours a backfill held back and then runs in real
time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from paho.mqtt.enums import MQTTProtocolVersion

from service.simulate.flows import generate
from service.simulate.messages import Message, plan_messages
from service.simulate.mqtt_client import NO_MATCHING_SUBSCRIBERS, REFUSED, QoS1Publisher
from service.simulate.scenario import Scenario

NO_SUBSCRIBERS = NO_MATCHING_SUBSCRIBERS  # PUBACK 0x10: taken, but nobody subscribed


@dataclass(frozen=True, slots=True)
class PublishReport:
    messages: int
    readings: int
    bytes: int
    seconds: float
    refused: int  # PUBACK 0x80 and up (not authorised, quota, ...)
    no_subscribers: int  # PUBACK 0x10: is an ingestor subscribed?

    def line(self) -> str:
        rate = self.readings / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"{self.messages} messages, {self.readings} readings, {self.bytes / 1e6:.1f} MB"
            f" in {self.seconds:.1f} s ({rate:,.0f} readings/s)"
        )
        if self.refused:
            text += f"; {self.refused} refused by the broker"
        if self.no_subscribers:
            text += f"; {self.no_subscribers} had no subscriber (is an ingestor running?)"
        return text


class Publisher:
    """One MQTT client for the whole park (a real park has one per gateway); v5 by default,
    3.1.1 for brokers that speak only that (the demo's embedded one)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        max_inflight: int = 200,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    ) -> None:
        self.host, self.port = host, port
        self._codes: Counter[int] = Counter()
        self._mqtt = QoS1Publisher[None](
            host,
            port,
            self._on_answer,
            client_id=client_id or f"parkflow-simulate-{uuid.uuid4().hex[:8]}",
            window=max_inflight,
            protocol=protocol,
            username=username or None,
            password=password,
        )
        self.client = self._mqtt.client

    def _on_answer(self, token: None, mid: int, code: int, at: float) -> None:
        self._codes[code] += 1

    def connect(self, timeout: float = 15.0) -> Publisher:
        self._mqtt.connect(timeout)
        return self

    def close(self) -> None:
        self._mqtt.close()

    def __enter__(self) -> Publisher:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, messages: Sequence[Message], timeout: float = 600.0) -> PublishReport:
        """Publish with QoS 1 and return once the broker acknowledged every message."""
        started = time.perf_counter()
        with self._mqtt.lock:
            codes_before = Counter(self._codes)
        for m in messages:
            self._mqtt.publish(m.topic, m.payload, None)
        left = self._mqtt.wait_answered(timeout)
        if left:
            raise TimeoutError(f"{left} of {len(messages)} messages not acknowledged in {timeout}s")
        with self._mqtt.lock:
            codes = self._codes - codes_before
        return PublishReport(
            messages=len(messages),
            readings=sum(m.readings for m in messages),
            bytes=sum(len(m.payload) for m in messages),
            seconds=time.perf_counter() - started,
            refused=sum(n for c, n in codes.items() if c >= REFUSED),
            no_subscribers=codes.get(NO_SUBSCRIBERS, 0),
        )


def live(
    scenario: Scenario,
    publisher: Publisher,
    start_ms: int,
    registers: Mapping[str, float],
    *,
    interval_s: float = 60.0,
    speed: float = 1.0,
    stop: threading.Event,
    wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    report: Callable[[str], None] = print,
) -> int:
    """Send each meter's readings every ``interval_s`` of wall time until ``stop`` is set;
    returns the readings sent. Simulated time starts at ``start_ms`` (the backfill's end)."""
    if interval_s <= 0 or speed <= 0:
        raise ValueError("interval and speed must be positive")
    step_ms = max(1000, round(interval_s * speed * 1000))
    wall0 = wall_ms()
    sim = start_ms
    regs = dict(registers)
    sent = 0
    while not stop.is_set():
        now = wall_ms()
        target = min(start_ms + int((now - wall0) * speed), now)
        target -= target % step_ms
        if target > sim:
            g = generate(
                scenario.park,
                scenario.profiles,
                sim,
                target,
                noise_seed=scenario.noise_seed,
                step_ms=step_ms,
                registers=regs,
            )
            regs.update(g.registers)
            plan = plan_messages(g.series, end_ms=target)
            result = publisher.send(plan.messages, timeout=max(30.0, interval_s * 5))
            sent += plan.readings_sent
            report(f"live {time.strftime('%H:%M:%S')}: up to {_iso(target)}, {result.line()}")
            sim = target
        stop.wait(interval_s)
    return sent


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))
