"""Prometheus metrics of one ingestor, in a registry of its own so several can share a process."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class IngestMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        p = "parkflow_ingest_"
        self.acked = Counter(p + "messages_acked", "MQTT messages acknowledged", registry=r)
        self.stored = Counter(p + "readings_stored", "Readings durably written", registry=r)
        self.quarantined = Counter(
            p + "quarantined", "Messages or readings quarantined", ["reason"], registry=r
        )
        self.write_errors = Counter(p + "write_errors", "Failed store writes", ["kind"], registry=r)
        self.write_seconds = Histogram(
            p + "write_seconds",
            "Store write latency",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.batch_size = Histogram(
            p + "batch_readings",
            "Readings and rejections per store write",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000),
            registry=r,
        )
        self.pending = Gauge(p + "pending_messages", "Received, not yet acked", registry=r)
        self.pending_bytes = Gauge(
            p + "pending_bytes", "Payload bytes received, not yet acked", registry=r
        )
        self.retained_skipped = Counter(
            p + "retained_skipped",
            "Retained messages replayed by the broker on subscribe, acked and not stored",
            registry=r,
        )
        self.quarantine_suppressed = Counter(
            p + "quarantine_suppressed",
            "Rejections beyond a tenant's quarantine quota: counted in a summary record, not kept",
            ["reason"],
            registry=r,
        )
        self.quarantine_unstored = Counter(
            p + "quarantine_unstored",
            "Quarantine records the store refused even without their payload (logged instead)",
            registry=r,
        )
        self.sessions_lost = Counter(
            p + "sessions_lost",
            "Connections that found no session on the broker although we had one",
            registry=r,
        )
        self.session_takeovers = Counter(
            p + "session_takeovers",
            "Times another client took our session (said by the broker, or seen as a connection"
            " closed again and again right after connecting)",
            registry=r,
        )
        self.disconnects = Counter(
            p + "disconnects", "Connections to the broker lost unexpectedly", registry=r
        )
        self.lag = Gauge(
            p + "lag_seconds", "Age of the oldest received message not yet acked", registry=r
        )
        self.reading_age = Gauge(
            p + "reading_age_seconds", "Now minus the newest stored reading's timestamp", registry=r
        )
        self.connected = Gauge(p + "connected", "1 when connected to the broker", registry=r)
        self.subscribed = Gauge(
            p + "subscribed",
            "1 when the broker granted every subscription of the current connection",
            registry=r,
        )
        self.ready = Gauge(p + "ready", "1 when connected and the store accepts writes", registry=r)

    def count_received(self, messages: Callable[[], int], qos0: Callable[[], int]) -> None:
        """Received messages are counted by the receiving thread in plain integers (a
        Prometheus counter takes a lock per increment, on the hottest path); these read them."""
        self.registry.register(_Received(messages, qos0))


class _Received(Collector):
    def __init__(self, messages: Callable[[], int], qos0: Callable[[], int]) -> None:
        self._messages, self._qos0 = messages, qos0

    def collect(self) -> Iterator[CounterMetricFamily]:
        p = "parkflow_ingest_"
        yield CounterMetricFamily(
            p + "messages_received", "MQTT messages received", value=self._messages()
        )
        yield CounterMetricFamily(
            p + "qos0_messages",
            "QoS 0 messages received (best effort: lost if the ingestor dies before its write)",
            value=self._qos0(),
        )
