"""Delivery metrics by channel, from the outcomes a dispatcher records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import generate_latest

from service.alerts.backoff import BackoffPolicy
from service.alerts.channels import Gone, MemoryChannel, RetryLater
from service.alerts.delivery import Attempts, deliver
from service.alerts.metrics import AlertMetrics
from tests.service.alerts.build import note

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def value(m: AlertMetrics, name: str, channel: str) -> float | None:
    return m.registry.get_sample_value(name, {"channel": channel})


def test_outcomes_are_counted_by_channel() -> None:
    m = AlertMetrics()
    ch = MemoryChannel([RetryLater("500"), Gone("410")])
    policy = BackoffPolicy()
    for _ in range(3):
        m.record("webhook", deliver(note(), ch, policy, NOW, Attempts()))
    assert value(m, "parkflow_alerts_sent_total", "webhook") == 1
    assert value(m, "parkflow_alerts_failed_total", "webhook") == 2
    assert value(m, "parkflow_alerts_retried_total", "webhook") == 1
    assert value(m, "parkflow_alerts_endpoints_disabled_total", "webhook") == 1
    assert value(m, "parkflow_alerts_sent_total", "email") == 0  # present before any e-mail
    # a batch: its notifications sent, or one attempt failed (one retry, one endpoint)
    m.record("webhook", deliver(note(), MemoryChannel(), policy, NOW, Attempts()), 40)
    assert value(m, "parkflow_alerts_sent_total", "webhook") == 41
    refused = deliver(note(), MemoryChannel([RetryLater("503")]), policy, NOW, Attempts())
    m.record("webhook", refused, 40)
    assert value(m, "parkflow_alerts_failed_total", "webhook") == 3
    assert value(m, "parkflow_alerts_retried_total", "webhook") == 2


def test_pending_and_the_oldest_age() -> None:
    m = AlertMetrics()
    m.set_pending({"email": (4, NOW - timedelta(minutes=7))}, NOW)
    assert value(m, "parkflow_alerts_pending", "email") == 4
    assert value(m, "parkflow_alerts_oldest_pending_age_seconds", "email") == 420
    m.set_pending({}, NOW)  # all sent
    assert value(m, "parkflow_alerts_pending", "email") == 0
    assert value(m, "parkflow_alerts_oldest_pending_age_seconds", "email") == 0
    assert b'parkflow_alerts_pending{channel="mqtt"} 0.0' in generate_latest(m.registry)
