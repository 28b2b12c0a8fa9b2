"""MQTT: each tenant's alerts on ``ip/{park}/{tenant}/alerts``, QoS 1, the JSON document the
webhooks send (docs/alerts.md).

Accepted only once the broker's PUBACK says it took the message: a tenant's gateway or app
with a persistent session gets it even if it was offline, and the broker's ACL lets only that
tenant read the topic. Paho is met through the shared publisher core
(``service.simulate.mqtt_client``); its refusals and silences become ``RetryLater`` here.
A message published while the connection is down may still go out when it returns, after the
attempt was given up: the retry then sends a second copy with the same id, which is what the
id is for.
"""

from __future__ import annotations

import threading
from typing import Self

import orjson

from parkflow.topics import alerts_topic, operator_alerts_topic
from service.alerts.channels.base import (
    Accepted,
    Delivery,
    Notification,
    Recipient,
    RetryLater,
    payload,
)
from service.simulate.mqtt_client import REFUSED, QoS1Publisher


def topic(n: Notification) -> str:
    return topic_of(n.recipient)


def topic_of(r: Recipient) -> str:
    if r.tenant is not None:
        return alerts_topic(r.park, r.tenant)
    assert r.operator is not None
    return operator_alerts_topic(r.park, r.operator)


def encode(n: Notification) -> bytes:
    return orjson.dumps(payload(n))


class _Answer:
    __slots__ = ("code", "done")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.code = -1


class MqttChannel:
    """One connection to the broker for every recipient's topic."""

    name = "mqtt"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str = "parkflow-alerts",
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.timeout_s = timeout_s
        self._publisher: QoS1Publisher[_Answer] = QoS1Publisher(
            host,
            port,
            self._on_answer,
            client_id=client_id,
            username=username,
            password=password,
            reconnect_delay=(1.0, 30.0),
        )

    @staticmethod
    def _on_answer(token: _Answer, mid: int, code: int, at: float) -> None:
        token.code = code
        token.done.set()

    def connect(self, timeout: float = 10.0) -> Self:
        """Connect (paho keeps reconnecting in the background afterwards)."""
        self._publisher.connect(timeout, retry=True)
        return self

    def close(self) -> None:
        self._publisher.close()

    def send(self, n: Notification) -> Delivery:
        answer = _Answer()
        try:
            self._publisher.publish(topic(n), encode(n), answer)
        except (ConnectionError, OSError, ValueError) as exc:
            return RetryLater(f"MQTT publish failed: {exc}")
        if not answer.done.wait(self.timeout_s):
            return RetryLater(f"no PUBACK from the broker within {self.timeout_s:g} s")
        if answer.code >= REFUSED:
            return RetryLater(f"the broker refused the message: reason code 0x{answer.code:02x}")
        return Accepted(f"PUBACK 0x{answer.code:02x}")
