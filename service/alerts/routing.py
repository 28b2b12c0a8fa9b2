"""From a contact setting to the channel that serves it; the dispatcher's composition step.

The webhook and e-mail channels are per endpoint (a URL and its secrets, a mailbox); one MQTT
connection serves every recipient's topic, so it is made once and shared.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from service.alerts.channels.base import Channel
from service.alerts.channels.mqtt import MqttChannel
from service.alerts.channels.smtp import SmtpChannel, SmtpServer
from service.alerts.channels.webhook import WebhookChannel
from service.alerts.contacts import (
    ChannelContact,
    Contacts,
    EmailContact,
    MqttContact,
    WebhookContact,
)
from service.alerts.ssrf import Network
from service.settings import ServiceSettings

log = logging.getLogger("parkflow.alerts.dispatch")


def smtp_server(s: ServiceSettings) -> SmtpServer | None:
    if s.smtp_host is None:
        return None
    return SmtpServer(
        host=s.smtp_host,
        sender=s.smtp_sender,
        port=s.smtp_port,
        starttls=s.smtp_starttls,
        username=s.smtp_username,
        password=s.smtp_password,
        timeout_s=s.smtp_timeout_s,
    )


def mqtt_channel(s: ServiceSettings) -> MqttChannel | None:
    if s.alerts_mqtt_host is None:
        return None
    return MqttChannel(
        s.alerts_mqtt_host,
        s.alerts_mqtt_port,
        client_id=s.alerts_mqtt_username,
        username=s.alerts_mqtt_username,
        password=s.alerts_mqtt_password,
    )


class NotConfigured(ValueError):
    """A contact asks for a channel whose server the service has no settings for."""


def channel_for(
    contact: ChannelContact,
    *,
    allowed: Sequence[Network] = (),
    smtp: SmtpServer | None = None,
    mqtt: MqttChannel | None = None,
) -> Channel:
    if isinstance(contact, WebhookContact):
        return WebhookChannel(
            contact.url,
            contact.secrets,
            timeout_s=contact.timeout_s,
            allowed=allowed,
            batch=contact.batch,
        )
    if isinstance(contact, EmailContact):
        if smtp is None:
            raise NotConfigured("an e-mail contact, and no SMTP server: set PARKFLOW_SMTP_HOST")
        return SmtpChannel(smtp, contact.address)
    assert isinstance(contact, MqttContact)
    if mqtt is None:
        raise NotConfigured("an MQTT contact, and no broker: set PARKFLOW_ALERTS_MQTT_HOST")
    return mqtt


class ContactChannels:
    """The dispatcher's ``Channels``: the channel for an endpoint of the contacts, made once
    and kept (a webhook's HTTP connections, the one MQTT connection), or None when no
    contact names the endpoint any more or its server has no settings."""

    def __init__(
        self,
        contacts: Contacts,
        *,
        smtp: SmtpServer | None = None,
        mqtt: MqttChannel | None = None,
    ) -> None:
        self.contacts = contacts
        self.smtp = smtp
        self.mqtt = mqtt
        self._made: dict[tuple[str, str], Channel] = {}
        self._lock = threading.Lock()
        self._networks = contacts.networks  # parsed once, not per endpoint
        everyone = [t.channels for t in contacts.tenants] + [o.channels for o in contacts.operators]
        self._webhooks = {
            c.url: c for chans in everyone for c in chans if isinstance(c, WebhookContact)
        }

    def __call__(self, channel: str, endpoint: str) -> Channel | None:
        key = (channel, endpoint)
        with self._lock:
            made = self._made.get(key)
            if made is None:
                made = self._make(channel, endpoint)
                if made is not None:
                    self._made[key] = made
            return made

    def _make(self, channel: str, endpoint: str) -> Channel | None:
        if channel == "webhook":
            hook = self._webhooks.get(endpoint)
            if hook is None:
                return None
            return channel_for(hook, allowed=self._networks)
        if channel == "email":
            return None if self.smtp is None else SmtpChannel(self.smtp, endpoint)
        if channel == "mqtt" and self.mqtt is not None:
            try:
                self.mqtt.connect()
            except Exception as exc:  # paho's and the socket's: tried again next pass
                log.warning("alerts broker unreachable, MQTT notifications wait: %s", exc)
                return None
            return self.mqtt
        return None

    def close(self) -> None:
        with self._lock:
            for ch in self._made.values():
                close = getattr(ch, "close", None)
                if close is not None:
                    close()
            self._made.clear()
