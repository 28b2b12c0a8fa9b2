"""Delivery channels: one seam (``Channel.send -> Delivery``) and its implementations.

``base`` holds the values; ``webhook`` (httpx, Standard Webhooks signatures), ``smtp``
(smtplib) and ``mqtt`` (paho, through the shared QoS 1 publisher) each meet one library and map
its errors to a ``Delivery``; ``memory`` is for unit tests.
"""

from service.alerts.channels.base import (
    LANGUAGES,
    SEVERITIES,
    Accepted,
    Channel,
    Delivery,
    Gone,
    Language,
    Notification,
    Recipient,
    RetryLater,
    Severity,
    payload,
    severity_at_least,
)
from service.alerts.channels.memory import MemoryChannel

__all__ = [
    "LANGUAGES",
    "SEVERITIES",
    "Accepted",
    "Channel",
    "Delivery",
    "Gone",
    "Language",
    "MemoryChannel",
    "Notification",
    "Recipient",
    "RetryLater",
    "Severity",
    "payload",
    "severity_at_least",
]
