"""The MQTT topic of a meter's readings (docs/wire-contract.md): ``ip/{park}/{tenant}/{meter}/readings``.

Shared by the ingestor (which parses topics), the broker ACL (which grants them), the
simulator and the tests (which publish to them).
"""

from __future__ import annotations

TOPIC_PREFIX = "ip"
TOPIC_SUFFIX = "readings"
ALL_READINGS = f"{TOPIC_PREFIX}/+/+/+/{TOPIC_SUFFIX}"


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
