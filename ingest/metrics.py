"""Prometheus metrics of one ingestor, in a registry of its own so several can share a process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        p = "parkflow_ingest_"
        self.received = Counter(p + "messages_received", "MQTT messages received", registry=r)
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
        self.lag = Gauge(
            p + "lag_seconds", "Age of the oldest received message not yet acked", registry=r
        )
        self.reading_age = Gauge(
            p + "reading_age_seconds", "Now minus the newest stored reading's timestamp", registry=r
        )
        self.connected = Gauge(p + "connected", "1 when connected to the broker", registry=r)
        self.ready = Gauge(p + "ready", "1 when connected and the store accepts writes", registry=r)
