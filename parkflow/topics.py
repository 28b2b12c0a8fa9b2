"""The MQTT topic of a meter's readings (docs/wire-contract.md): ``ip/{park}/{tenant}/{meter}/readings``,
and of a tenant's alerts (docs/alerts.md): ``ip/{park}/{tenant}/alerts``.

Shared by the ingestor (which parses topics), the broker ACL (which grants them), the
simulator and the tests (which publish to them), and the alerts' MQTT channel.
"""

from __future__ import annotations

TOPIC_PREFIX = "ip"
TOPIC_SUFFIX = "readings"
ALL_READINGS = f"{TOPIC_PREFIX}/+/+/+/{TOPIC_SUFFIX}"
ALERTS_SUFFIX = "alerts"
ALL_TENANT_ALERTS = f"{TOPIC_PREFIX}/+/+/{ALERTS_SUFFIX}"
ALL_OPERATOR_ALERTS = f"{TOPIC_PREFIX}/+/operators/+/{ALERTS_SUFFIX}"


def topic_for(park: str, tenant: str, meter: str) -> str:
    return f"{TOPIC_PREFIX}/{park}/{tenant}/{meter}/{TOPIC_SUFFIX}"


def tenant_topics(park: str, tenant: str) -> str:
    """The filter matching every meter of one tenant."""
    return f"{TOPIC_PREFIX}/{park}/{tenant}/+/{TOPIC_SUFFIX}"


def split_topic(topic: str) -> tuple[str, str, str] | None:
    """(park, tenant, meter), or None when the topic has not that shape."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != TOPIC_PREFIX or parts[4] != TOPIC_SUFFIX:
        return None
    return parts[1], parts[2], parts[3]


def alerts_topic(park: str, tenant: str) -> str:
    """Where a tenant's alerts are published (QoS 1); only that tenant may read it."""
    return f"{TOPIC_PREFIX}/{park}/{tenant}/{ALERTS_SUFFIX}"


def operator_alerts_topic(park: str, operator: str) -> str:
    """An operator's alerts: five levels, so no tenant's ``ip/{park}/{tenant}/alerts`` grant
    and no readings topic can match it."""
    return f"{TOPIC_PREFIX}/{park}/operators/{operator}/{ALERTS_SUFFIX}"
