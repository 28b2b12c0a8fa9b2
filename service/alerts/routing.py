"""From a contact setting to the channel that serves it; the dispatcher's composition step.

The webhook and e-mail channels are per endpoint (a URL and its secrets, a mailbox); one MQTT
connection serves every recipient's topic, so it is made once and shared.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.alerts.channels.base import Channel
from service.alerts.channels.mqtt import MqttChannel
from service.alerts.channels.smtp import SmtpChannel, SmtpServer
from service.alerts.channels.webhook import WebhookChannel
from service.alerts.contacts import ChannelContact, EmailContact, MqttContact, WebhookContact
from service.alerts.ssrf import Network
from service.settings import ServiceSettings


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
            contact.url, contact.secrets, timeout_s=contact.timeout_s, allowed=allowed
        )
    if isinstance(contact, EmailContact):
        if smtp is None:
            raise NotConfigured("an e-mail contact, and no SMTP server: set PARKFLOW_SMTP_HOST")
        return SmtpChannel(smtp, contact.address)
    assert isinstance(contact, MqttContact)
    if mqtt is None:
        raise NotConfigured("an MQTT contact, and no broker: set PARKFLOW_ALERTS_MQTT_HOST")
    return mqtt
