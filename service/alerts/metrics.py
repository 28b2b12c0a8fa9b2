"""Prometheus metrics of alert delivery, by channel, in a registry of their own.

``record`` counts each outcome ``deliver`` returns; the pending count and the age of the
oldest pending notification come from the outbox, which only the dispatcher reads, so it
sets them (``set_pending``) after each pass. An oldest age that keeps growing is the one
figure that says delivery is stuck, whatever the counters say.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from service.alerts.delivery import Disabled, Outcome, Retry, Sent

CHANNELS = ("webhook", "email", "mqtt")


class AlertMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        p = "parkflow_alerts_"
        by = ["channel"]
        self.sent = Counter(p + "sent", "Notifications a channel accepted", by, registry=r)
        self.failed = Counter(
            p + "failed", "Delivery attempts that failed (retried or disabled)", by, registry=r
        )
        self.retried = Counter(p + "retried", "Retries scheduled", by, registry=r)
        self.disabled = Counter(p + "endpoints_disabled", "Endpoints disabled", by, registry=r)
        self.pending = Gauge(p + "pending", "Notifications not yet sent", by, registry=r)
        self.oldest_pending = Gauge(
            p + "oldest_pending_age_seconds",
            "Age of the oldest notification not yet sent (0: none)",
            by,
            registry=r,
        )
        for ch in CHANNELS:  # every series exists from the start, at zero
            for metric in (self.sent, self.failed, self.retried, self.disabled):
                metric.labels(ch)
            self.pending.labels(ch).set(0)
            self.oldest_pending.labels(ch).set(0)

    def record(self, channel: str, outcome: Outcome, notifications: int = 1) -> None:
        """One attempt's outcome: ``notifications`` sent (a batch's), or one failed attempt
        (a batch refused is one attempt, one retry, one endpoint disabled)."""
        if isinstance(outcome, Sent):
            self.sent.labels(channel).inc(notifications)
            return
        self.failed.labels(channel).inc()
        if isinstance(outcome, Retry):
            self.retried.labels(channel).inc()
        elif isinstance(outcome, Disabled):
            self.disabled.labels(channel).inc()

    def set_pending(
        self, pending: Mapping[str, tuple[int, datetime | None]], now: datetime
    ) -> None:
        """``pending``: channel -> (how many, when the oldest was created); channels left out
        have none."""
        for ch in set(CHANNELS) | set(pending):
            count, oldest = pending.get(ch, (0, None))
            self.pending.labels(ch).set(count)
            age = (now - oldest).total_seconds() if oldest is not None else 0.0
            self.oldest_pending.labels(ch).set(max(0.0, age))
