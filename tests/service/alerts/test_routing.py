"""Contacts become channels: a webhook per URL, a mailbox per address, one MQTT connection."""

from __future__ import annotations

import pytest

from service.alerts.channels.mqtt import MqttChannel
from service.alerts.channels.smtp import SmtpChannel
from service.alerts.channels.webhook import WebhookChannel
from service.alerts.contacts import EmailContact, MqttContact, WebhookContact
from service.alerts.routing import NotConfigured, channel_for, mqtt_channel, smtp_server
from service.settings import ServiceSettings
from tests.service.alerts.build import SECRET


def test_each_contact_gets_its_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARKFLOW_SMTP_HOST", "mail.park.example.com")
    monkeypatch.setenv("PARKFLOW_SMTP_STARTTLS", "false")
    monkeypatch.setenv("PARKFLOW_SMTP_USERNAME", "alerts")
    monkeypatch.setenv("PARKFLOW_ALERTS_MQTT_HOST", "127.0.0.1")
    s = ServiceSettings()
    smtp = smtp_server(s)
    assert smtp is not None and not smtp.starttls and smtp.username == "alerts"
    mqtt = mqtt_channel(s)
    assert isinstance(mqtt, MqttChannel)
    hook = WebhookContact(kind="webhook", url="https://hooks.example.com/x", secrets=[SECRET])
    w = channel_for(hook)
    assert isinstance(w, WebhookChannel) and w.url == "https://hooks.example.com/x"
    w.close()
    e = channel_for(EmailContact(kind="email", address="a@b.example.com"), smtp=smtp)
    assert isinstance(e, SmtpChannel) and e.to == "a@b.example.com"
    assert channel_for(MqttContact(kind="mqtt"), mqtt=mqtt) is mqtt


def test_a_channel_without_its_server_is_a_clear_error() -> None:
    with pytest.raises(NotConfigured, match="PARKFLOW_SMTP_HOST"):
        channel_for(EmailContact(kind="email", address="a@b.example.com"))
    with pytest.raises(NotConfigured, match="PARKFLOW_ALERTS_MQTT_HOST"):
        channel_for(MqttContact(kind="mqtt"))
    assert smtp_server(ServiceSettings()) is None
